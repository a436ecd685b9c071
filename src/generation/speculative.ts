// Speculative decoding (PAPERS.md §2): a cheap draft proposes γ tokens, the target model scores the
// fed token and the γ drafts in one forward step over its full cache, and the run is accepted
// left to right by the rule that keeps the target's distribution exactly (Leviathan et al. 2023,
// Chen et al. 2023):
//   draft token d_i with draft probability q(d_i) is accepted with probability min(1, p(d_i) / q(d_i));
//   at the first rejection a token is drawn from norm(max(0, p − q)) and the run stops;
//   if every draft is accepted, one bonus token is drawn from p at the last row.
// p is the *processed* distribution the sequence's sampler draws from (penalties, temperature,
// top-k/top-p/min-p, given the history and the drafts accepted before it), so the output has the
// distribution of plain sampling; with temperature 0, p is one-hot and the output is plain greedy.
// Drafts that come with no distribution (prompt lookup, any deterministic draft) have q one-hot.
//
// Shape legend: γ = draft length, V = vocabulary size; rows (γ + 1, V) row-major.

import { attentionBackend } from '../attention/create.js';
import { parseAttentionSpec, type AttentionKind, type AttentionSpec } from '../attention/spec.js';
import type { SequenceState } from './sequence.js';

export interface Verified {
  /** Tokens to emit: the accepted drafts, then the correction or the bonus token. */
  tokens: number[];
  /** Drafts accepted (tokens.length − 1). */
  accepted: number;
}

/** Accepts a prefix of `draft` against the target's logits `rows` (one row per fed position: the
 *  row i scores the token after draft[0..i)). `q[i]`, when given, is the dense draft distribution
 *  draft[i] was drawn from; without it the draft is deterministic. */
export function verifyDraft(seq: SequenceState, rows: Float32Array, V: number, draft: readonly number[],
                            q?: readonly Float64Array[]): Verified {
  if (rows.length < (draft.length + 1) * V) throw new RangeError(`verifyDraft: ${rows.length / V} logits rows for a draft of ${draft.length}`);
  const tokens: number[] = [];
  for (let i = 0; i < draft.length; i++) {
    const p = seq.distribution(rows.subarray(i * V, (i + 1) * V), tokens);       // (V) processed target distribution
    const d = draft[i]!, qd = q ? q[i]![d]! : 1;
    if (qd > 0 && seq.sampler.uniform() < Math.min(1, p[d]! / qd)) { tokens.push(d); continue; }
    // rejected: draw from the residual norm(max(0, p − q))
    let total = 0;
    for (let v = 0; v < V; v++) {
      const r = Math.max(0, p[v]! - (q ? q[i]![v]! : v === d ? 1 : 0));
      p[v] = r;
      total += r;
    }
    tokens.push(draw(p, total, seq.sampler.uniform()));
    return { tokens, accepted: i };
  }
  const p = seq.distribution(rows.subarray(draft.length * V, (draft.length + 1) * V), tokens);
  tokens.push(draw(p, 1, seq.sampler.uniform()));
  return { tokens, accepted: draft.length };
}

/** Index drawn from unnormalised weights w (summing to `total`) with a uniform u in [0, 1). */
export function draw(w: Float64Array, total: number, u: number): number {
  const x = u * total;
  let cum = 0, last = -1;
  for (let v = 0; v < w.length; v++) {
    if (w[v]! <= 0) continue;
    cum += w[v]!;
    last = v;
    if (x < cum) return v;
  }
  if (last < 0) throw new Error('verifyDraft: the residual distribution is empty');
  return last;                                                   // rounding: cum ended a hair under total
}

/** Prompt lookup (as llama.cpp's and vLLM's n-gram drafts): the γ tokens that followed the most
 *  recent earlier occurrence of the context's last n tokens, trying n = maxN … minN. Nearly free, and
 *  strong where the output copies the prompt (long-context retrieval, code edits, summaries). */
export function promptLookupDraft(context: readonly number[], gamma: number, maxN = 3, minN = 1): number[] {
  const L = context.length;
  for (let n = Math.min(maxN, L - 1); n >= minN; n--) {
    for (let i = L - n - 1; i >= 0; i--) {
      let k = 0;
      while (k < n && context[i + k] === context[L - n + k]) k++;
      if (k === n) return context.slice(i + n, Math.min(L, i + n + gamma)) as number[];
    }
  }
  return [];
}

/** What a sequence did with speculation (PAPERS.md §2 metrics). */
export interface SpeculativeStats {
  /** Verification steps run (each scores a draft of ≥ 1 token). */
  steps: number;
  /** Draft tokens proposed, and accepted. */
  drafted: number;
  accepted: number;
  /** accepted / drafted. */
  acceptanceRate: number;
  /** Tokens emitted per verification step (accepted drafts + the correction or bonus). */
  meanAcceptedLength: number;
  /** Acceptance rate of the draft's i-th token, over the steps that proposed one there. */
  perPosition: number[];
}

/** Accumulates SpeculativeStats over a sequence's verification steps. */
export class SpeculativeMeter {
  private steps = 0;
  private drafted = 0;
  private accepted = 0;
  private emitted = 0;
  private readonly tried: number[] = [];
  private readonly took: number[] = [];

  record(drafted: number, accepted: number, emitted: number): void {
    this.steps++;
    this.drafted += drafted;
    this.accepted += accepted;
    this.emitted += emitted;
    for (let i = 0; i < drafted; i++) {
      this.tried[i] = (this.tried[i] ?? 0) + 1;
      if (i < accepted) this.took[i] = (this.took[i] ?? 0) + 1;
    }
  }

  get stats(): SpeculativeStats {
    return {
      steps: this.steps, drafted: this.drafted, accepted: this.accepted,
      acceptanceRate: this.drafted > 0 ? this.accepted / this.drafted : 0,
      meanAcceptedLength: this.steps > 0 ? this.emitted / this.steps : 0,
      perPosition: this.tried.map((t, i) => (this.took[i] ?? 0) / t),
    };
  }
}

/** Drafts `--speculate` names: prompt lookup, or self-speculation through one of these attentions. */
const SELF_DRAFT_KINDS: readonly AttentionKind[] = ['streaming', 'snapkv', 'magicpig', 'topk', 'quest', 'oracle-sampling'];

/** `--speculate draft=prompt-lookup,gamma=4` (or just `prompt-lookup`), or a self-speculation draft
 *  attention `draft=streaming:sinks=4,window=256,gamma=3` (the attention's own parameters follow its
 *  name; the model is then loaded with it as `draftAttention`) → the generate option, and the draft
 *  attention to load. */
export function parseSpeculateSpec(spec: string): { draft: 'prompt-lookup' | 'self'; gamma: number; attention?: AttentionSpec } {
  let draft: string | undefined, gamma = 4;
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const [key, value] = part.includes('=') ? [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)] : ['draft', part];
    if (key === 'draft') draft = value;
    else if (key === 'gamma') {
      gamma = Number(value);
      if (!Number.isInteger(gamma) || gamma < 1 || gamma > 64) throw new RangeError(`--speculate: gamma must be an integer in [1, 64], got "${value}"`);
    } else if (draft !== undefined && draft.includes(':')) draft += `,${part}`;         // a parameter of the draft attention
    else throw new RangeError(`--speculate: unknown key "${key}"; use draft=prompt-lookup[,gamma=N] or draft=streaming:window=256[,gamma=N]`);
  }
  if (draft === 'auto') throw new RangeError('--speculate: auto (gamma from the cost model) is not built yet; use draft=prompt-lookup[,gamma=N]');
  if (draft === 'prompt-lookup') return { draft, gamma };
  const kind = draft?.split(':')[0] ?? '';
  if (!(SELF_DRAFT_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(`--speculate: unknown draft "${draft ?? ''}"; use prompt-lookup, or self-speculation through a sparse attention: ${SELF_DRAFT_KINDS.join(', ')} (e.g. draft=streaming:sinks=4,window=256, draft=snapkv:budget=512, draft=magicpig:dense=0)`);
  }
  const attention = parseAttentionSpec(draft!);
  attentionBackend(attention);                                                   // its parameters are checked now
  return { draft: 'self', gamma, attention };
}
