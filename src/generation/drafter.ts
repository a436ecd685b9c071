// Where speculative decoding's drafts come from (PAPERS.md §2). A Drafter proposes up to γ tokens
// for each speculating sequence; the scheduler verifies them in its next batched target step
// (speculative.ts: verifyDraft) and rolls the target's cache back to what was accepted.
//
// The scheduler calls propose() once per step with every decoding sequence that uses the drafter,
// so a drafter that runs a model (a small draft model, or the target itself with a sparse draft
// attention) drafts all of them in shared batched forward steps. A drafter keeps whatever it needs
// per sequence (a draft cache) keyed by the SequenceState, re-syncs it with `seq.context` on every
// call (the target may have rejected part of the last draft), and frees it in forget().
//
// Shape legend: γ = draft length, V = vocabulary size.

import type { ModelCache } from '../models/types.js';
import type { SequenceState } from './sequence.js';
import { promptLookupDraft } from './speculative.js';

/** One sequence asking for a draft in this step. */
export interface DraftRequest {
  /** The sequence: `seq.context` is prompt + output and ends with the token the target is fed next;
   *  `seq.distribution` gives the processed distribution a draft token must be drawn from for q. */
  readonly seq: SequenceState;
  /** The target's cache: it holds every context position but the last. A drafter that writes into
   *  it (self-speculation) must leave it at that length. */
  readonly cache: ModelCache;
  /** Most tokens to propose (≥ 1): the sequence's γ, cut to its token limit and cache room. */
  readonly gamma: number;
  /** Which of the drafter's `budgets` to draft with (default 0). */
  readonly budget?: number;
}

/** Up to γ proposed tokens; `q[i]` (V), when given, is the processed draft distribution token i was
 *  drawn from (lossless sampling needs it). Without q the draft is deterministic (q one-hot). */
export interface Draft {
  tokens: number[];
  q?: Float64Array[];
}

export interface Drafter {
  /** Names the drafter in errors and benchmark tables. */
  readonly name: string;
  /** Draft budgets the drafter can draft with (e.g. StreamingLLM windows), named for tables and
   *  timings; `gamma: 'auto'` chooses one per sequence and step with γ (speculation-cost.ts).
   *  Absent: one. */
  readonly budgets?: readonly string[];
  /** Vocabulary the drafter proposes from, when it has one of its own (a draft model): a target with
   *  another vocabulary is refused. */
  readonly vocabSize?: number;
  /** One draft per request, in order. */
  propose(requests: readonly DraftRequest[]): Draft[];
  /** The sequence ended: free what the drafter keeps for it. */
  forget(seq: SequenceState): void;
}

/** Prompt lookup (speculative.ts): n-gram matches in the context, no model, nothing kept. */
export const PROMPT_LOOKUP: Drafter = {
  name: 'prompt-lookup',
  propose: (requests) => requests.map((r) => ({ tokens: promptLookupDraft(r.seq.context, r.gamma) })),
  forget: () => {},
};
