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
import { parseAttentionAlternatives, type AttentionKind, type AttentionSpec } from '../attention/spec.js';
import { MAX_DRAFT_ATTENTIONS } from '../models/types.js';
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
  if (last < 0) throw new Error('draw: the distribution is empty (no token has a positive weight)');
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

/** What a sequence did with speculation, or many together: the metrics as vLLM and llama.cpp define
 *  them (PAPERS.md §2). A "draft" is one verification step that scored ≥ 1 draft token. */
export interface SpeculativeStats {
  /** Drafts verified (verification steps). */
  steps: number;
  /** Draft tokens proposed, and accepted. */
  drafted: number;
  accepted: number;
  /** Drafts with a rejected token (the others were accepted whole). */
  rejected: number;
  /** accepted / drafted. */
  acceptanceRate: number;
  /** Mean acceptance length: 1 + accepted / drafts (tokens emitted per verification step: the
   *  accepted drafts and the correction or bonus token). */
  meanAcceptedLength: number;
  /** Per-position acceptance: drafts whose token j was accepted / drafts (so it never rises with j,
   *  and a short draft counts as a miss at the positions it did not propose). */
  perPosition: number[];
  /** The counts behind perPosition: drafts whose token j was accepted. */
  acceptedAt: number[];
  /** A drafter of several draft budgets (γ 'auto' chose one per step): per budget, the drafts made
   *  with it, their tokens, and those accepted. */
  byBudget?: Record<string, { steps: number; drafted: number; accepted: number }>;
}

/** Accumulates SpeculativeStats over a sequence's verification steps. */
export class SpeculativeMeter {
  private steps = 0;
  private drafted = 0;
  private accepted = 0;
  private rejected = 0;
  private readonly took: number[] = [];
  private byBudget: SpeculativeStats['byBudget'];

  /** One verification: `drafted` draft tokens scored, the first `accepted` of them kept; `budget`
   *  names the draft budget it was made with, for a drafter of several. */
  record(drafted: number, accepted: number, budget?: string): void {
    this.steps++;
    this.drafted += drafted;
    this.accepted += accepted;
    if (accepted < drafted) this.rejected++;
    for (let j = 0; j < accepted; j++) this.took[j] = (this.took[j] ?? 0) + 1;
    if (budget !== undefined) addBudget(this.byBudget ??= {}, budget, { steps: 1, drafted, accepted });
  }

  get stats(): SpeculativeStats {
    return speculativeStats(this.steps, this.drafted, this.accepted, this.rejected, this.took, this.byBudget);
  }
}

function addBudget(into: NonNullable<SpeculativeStats['byBudget']>, budget: string, x: { steps: number; drafted: number; accepted: number }): void {
  const b = into[budget] ??= { steps: 0, drafted: 0, accepted: 0 };
  b.steps += x.steps; b.drafted += x.drafted; b.accepted += x.accepted;
}

function speculativeStats(steps: number, drafted: number, accepted: number, rejected: number, acceptedAt: readonly number[],
                          byBudget?: SpeculativeStats['byBudget']): SpeculativeStats {
  return {
    steps, drafted, accepted, rejected,
    acceptanceRate: drafted > 0 ? accepted / drafted : 0,
    meanAcceptedLength: steps > 0 ? 1 + accepted / steps : 0,
    perPosition: acceptedAt.map((n) => n / steps),
    acceptedAt: [...acceptedAt],
    ...(byBudget !== undefined ? { byBudget: structuredClone(byBudget) } : {}),
  };
}

/** The aggregate over many sequences (a benchmark's): counts summed, rates recomputed from them. */
export function combineSpeculativeStats(all: readonly SpeculativeStats[]): SpeculativeStats {
  let steps = 0, drafted = 0, accepted = 0, rejected = 0, byBudget: SpeculativeStats['byBudget'];
  const at: number[] = [];
  for (const s of all) {
    steps += s.steps; drafted += s.drafted; accepted += s.accepted; rejected += s.rejected;
    s.acceptedAt.forEach((n, j) => { at[j] = (at[j] ?? 0) + n; });
    for (const [name, x] of Object.entries(s.byBudget ?? {})) addBudget(byBudget ??= {}, name, x);
  }
  return speculativeStats(steps, drafted, accepted, rejected, at, byBudget);
}

/** Drafts `--speculate` names: prompt lookup, or self-speculation through one of these attentions. */
const SELF_DRAFT_KINDS: readonly AttentionKind[] = ['streaming', 'snapkv', 'magicpig', 'topk', 'quest', 'oracle-sampling'];

/** A parsed `--speculate` value: the draft (prompt lookup; self-speculation, with the draft attention
 *  to load the model with; or a draft model to load from a path, with an attention spec of its own)
 *  and γ. */
export interface SpeculateSpec {
  draft: 'prompt-lookup' | 'self' | { model: string; attention?: string };
  gamma: number | 'auto';
  /** Self-speculation: the model's draft attention; several (one parameter listing values a/b/c)
   *  are draft budgets the cost model chooses among, per sequence and step (gamma auto). */
  attention?: AttentionSpec[];
}

const SPEC_HINT = 'use auto, or draft=prompt-lookup | streaming:window=256 (window=64/256/1024: budgets the cost model chooses among) | snapkv:budget=512 | magicpig:dense=0 | model:PATH, then [,gamma=N|auto] (a draft model also [,attention=SPEC], last)';

/** `--speculate draft=prompt-lookup,gamma=4` (or just `prompt-lookup`); a self-speculation draft
 *  attention `draft=streaming:sinks=4,window=256,gamma=3` (the attention's own parameters follow its
 *  name; the model is then loaded with it as `draftAttention`), or several draft budgets of one
 *  kind, `draft=streaming:sinks=4,window=64/256/1024` (gamma auto: the cost model chooses the
 *  budget with γ); or a draft model
 *  `draft=model:PATH[,gamma=N][,attention=SPEC]` — attention last, since its SPEC has commas.
 *  `gamma=auto` lets the cost model choose γ, and `auto` alone is prompt lookup with gamma=auto. */
export function parseSpeculateSpec(spec: string): SpeculateSpec {
  let draft: string | undefined, gamma: number | 'auto' = 4, attention: string | undefined, gammaGiven = false;
  const at = spec.search(/(^|,)\s*attention=/);
  if (at >= 0) {
    attention = spec.slice(spec.indexOf('attention=', at) + 'attention='.length).trim();
    spec = spec.slice(0, at);
    if (attention === '') throw new RangeError(`--speculate: attention= needs an attention spec (e.g. streaming:sinks=4,window=256); ${SPEC_HINT}`);
  }
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = part.indexOf('=');
    const [key, value] = eq >= 0 ? [part.slice(0, eq), part.slice(eq + 1)] : ['draft', part];
    if (key === 'draft') draft = value;
    else if (key === 'gamma') {
      gammaGiven = true;
      gamma = value === 'auto' ? 'auto' : Number(value);
      if (gamma !== 'auto' && (!Number.isInteger(gamma) || gamma < 1 || gamma > 64)) throw new RangeError(`--speculate: gamma must be an integer in [1, 64] or auto, got "${value}"`);
    } else if (draft !== undefined && draft.includes(':') && !draft.startsWith('model:')) draft += `,${part}`;   // a parameter of the draft attention
    else throw new RangeError(`--speculate: unknown key "${key}"; ${SPEC_HINT}`);
  }
  if (draft === 'auto') { draft = 'prompt-lookup'; gamma = 'auto'; }
  if (attention !== undefined && !(draft ?? '').startsWith('model:')) throw new RangeError('--speculate: attention= applies to a draft model (draft=model:PATH); a self-speculation draft names its attention itself (draft=streaming:window=256)');
  if (draft === 'prompt-lookup') return { draft, gamma };
  if (draft !== undefined && draft.startsWith('model:')) {
    const model = draft.slice('model:'.length);
    if (model === '') throw new RangeError(`--speculate: draft=model: needs the draft model's path (a Hugging Face folder or .gguf file); ${SPEC_HINT}`);
    return { draft: attention === undefined ? { model } : { model, attention }, gamma };
  }
  const kind = draft?.split(':')[0] ?? '';
  if (!(SELF_DRAFT_KINDS as readonly string[]).includes(kind)) {
    throw new RangeError(`--speculate: unknown draft "${draft ?? ''}"; use prompt-lookup, model:PATH, or self-speculation through a sparse attention: ${SELF_DRAFT_KINDS.join(', ')} (e.g. draft=streaming:sinks=4,window=256, draft=snapkv:budget=512, draft=magicpig:dense=0)`);
  }
  const budgets = parseAttentionAlternatives(draft!);
  for (const b of budgets) attentionBackend(b);                                  // their parameters are checked now
  if (budgets.length > 1) {
    if (budgets.length > MAX_DRAFT_ATTENTIONS) throw new RangeError(`--speculate: ${budgets.length} draft budgets in "${draft!}"; list at most ${MAX_DRAFT_ATTENTIONS}`);
    if (gammaGiven && gamma !== 'auto') throw new RangeError(`--speculate: several draft budgets ("${draft!}") are chosen among by the cost model, which needs gamma=auto (got gamma=${gamma})`);
    gamma = 'auto';
  }
  return { draft: 'self', gamma, attention: budgets };
}
