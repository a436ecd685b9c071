// Self-speculation drafts (MagicDec, PAPERS.md §2): the target model drafts for itself with the same
// weights, attending through its draft attention (a sparse one — StreamingLLM, SnapKV, MagicPIG;
// the model is loaded with `draftAttention`) over its own K/V rows. Each of up to γ mini-steps is one
// forward step batched over every drafting sequence: it feeds the sequence's next token (then each
// draft token) as a draft row, whose approximate K/V land at the positions that follow, and draws the
// next draft token from the sequence's processed distribution q of the draft logits (so q is known
// for the lossless acceptance test). The caches are then cut back to where they were, and the
// verification step recomputes those rows exactly (store precedes attend in every layer), so the
// draft needs no memory of its own and always sees the exact K/V of accepted tokens.
// A sequence's draft stops early at an eos token or at its own γ.

import { OutOfKVMemoryError } from '../attention/kv-pages.js';
import type { LanguageModel, ModelCache } from '../models/types.js';
import type { SequenceState } from './sequence.js';
import type { Drafter } from './drafter.js';
import { draw } from './speculative.js';

export interface SelfDraftRow {
  cache: ModelCache;
  seq: SequenceState;
  /** The token the sequence feeds next (its draft follows it). */
  next: number;
  /** Most draft tokens for this sequence (≥ 1). */
  gamma: number;
  /** The model's draft attention to draft through (default 0). */
  attention?: number;
}

export interface SelfDraft {
  tokens: number[];
  /** q[i]: the dense processed draft distribution tokens[i] was drawn from. */
  q: Float64Array[];
}

/** Drafts for every row in shared mini-steps; each cache is left at the length it had. Running out
 *  of KV pages ends the drafting early (what was drafted is kept). */
export function selfDrafts(model: LanguageModel, rows: readonly SelfDraftRow[]): SelfDraft[] {
  const drafts: SelfDraft[] = rows.map(() => ({ tokens: [], q: [] }));
  const start = rows.map((r) => r.cache.length), feed = rows.map((r) => r.next);
  const live = rows.map((r) => r.gamma > 0);
  try {
    for (;;) {
      const idx = rows.flatMap((_, i) => (live[i] ? [i] : []));
      if (idx.length === 0) break;
      const logits = model.forwardBatch(idx.map((i) => ({ cache: rows[i]!.cache, tokens: [feed[i]!], logits: 'last' as const, draft: rows[i]!.attention ?? 0 })));
      idx.forEach((i, j) => {
        const r = rows[i]!, d = drafts[i]!;
        const q = r.seq.distribution(logits[j]!, d.tokens);
        const t = draw(q, 1, r.seq.sampler.uniform());
        d.tokens.push(t);
        d.q.push(q);
        feed[i] = t;
        if (d.tokens.length >= r.gamma || r.seq.isEos(t)) live[i] = false;
      });
    }
  } catch (e) {
    if (!(e instanceof OutOfKVMemoryError)) throw e;
  } finally {
    rows.forEach((r, i) => { if (!r.cache.released) r.cache.truncate(start[i]!); });
  }
  return drafts;
}

/** The model as its own drafter (the scheduler's 'self' draft): the context ends with the token each
 *  sequence feeds next, and nothing is kept between calls. `attentions`: the model's draft attentions
 *  it drafts through, its budgets (default all of them). */
export function selfDrafter(model: LanguageModel, attentions?: readonly number[]): Drafter {
  const all = model.draftAttentions ?? [];
  const use = attentions ?? all.map((_, i) => i);
  if (use.length === 0 || use.some((a) => !Number.isInteger(a) || a < 0 || a >= all.length)) {
    throw new RangeError(`selfDrafter: draft attentions [${use.join(', ')}] are not among the model's ${all.length}`);
  }
  return {
    name: use.length === 1 && attentions !== undefined ? `self (${all[use[0]!]!})` : 'self',
    budgets: use.map((a) => all[a]!),
    propose: (requests) => selfDrafts(model, requests.map((r) => {
      const b = r.budget ?? 0;
      if (!Number.isInteger(b) || b < 0 || b >= use.length) throw new RangeError(`self draft: budget ${String(r.budget)} is not one of its ${use.length}`);
      return { cache: r.cache, seq: r.seq, next: r.seq.context.at(-1)!, gamma: r.gamma, attention: use[b]! };
    })),
    forget: () => {},
  };
}
