// The model-facing contract used by generation, the API, evaluation and (later) speculative decoding.
// A model is `forward(tokens, cache) → logits`; sampling, stopping and streaming live outside it.

export interface ModelCache {
  /** Number of positions already stored (the next token gets position `length`). */
  readonly length: number;
  /** Maximum number of positions the cache can hold. */
  readonly capacity: number;
  /** Whether release() was called (a released cache can no longer be used). */
  readonly released: boolean;
  /** Forgets every position >= n (rollback for speculative decoding, reuse of a shared prefix). */
  truncate(n: number): void;
  /** A new cache that starts with this one's first n positions (default: all), shared by reference
   *  where the model can (the prompt cache of multi-turn chat and the server). */
  fork(n?: number): ModelCache;
  /** Gives the cache's memory back to the model. Idempotent. */
  release(): void;
  /** Keeps the first n positions and puts every per-sequence state (sparse attention's selections,
   *  tables, random streams) where fork(n) would start a new cache: this cache then serves another
   *  sequence that shares those n positions (the scheduler's "start in a kept prompt's own slot").
   *  Unlike truncate, which rolls one sequence back and keeps its state, even at n = length. Optional:
   *  a cache without it is never handed to another sequence. */
  restart?(n: number): void;
}

/** Most draft attentions one model holds (each adds its per-sequence state to every layer arena). */
export const MAX_DRAFT_ATTENTIONS = 8;

/** One sequence's part of a batched forward step: its cache, its new tokens (one when decoding, a
 *  chunk when prefilling), which logits to return and the attention phase. */
export interface BatchItem {
  cache: ModelCache;
  tokens: ArrayLike<number>;
  /** 'last' (default): the last token's (vocab); 'all': (n, vocab) row-major; 'none': nothing. */
  logits?: 'last' | 'all' | 'none';
  phase?: 'prefill' | 'decode';
  /** Attend through one of the model's draft attentions (self-speculative decoding; a model loaded
   *  with `draftAttention`): `true` or 0 the first, i the i-th of a list. The rows are stored at
   *  their positions like any others, for the verification step to overwrite with exact ones.
   *  Decode rows only. */
  draft?: boolean | number;
}

export interface ForwardOptions {
  /** Which rows of logits to return: only the last token's (default) or every token's. */
  logits?: 'last' | 'all';
  /** 'prefill' for prompt tokens, 'decode' for generated ones (sparse attention backends attend
   *  exactly during prefill). Default: 'prefill' when more than one token is given, else 'decode'. */
  phase?: 'prefill' | 'decode';
}

export interface LanguageModel {
  readonly vocabSize: number;
  /** Longest context this model instance accepts (cache capacity by default). */
  readonly contextLength: number;
  /** Most caches (sequences) alive at once; createCache throws past it until one is released. */
  readonly parallel: number;
  /** The draft attentions batch items may ask for with `draft` (a model loaded with
   *  `draftAttention`), named by their specs; empty or absent: none. */
  readonly draftAttentions?: readonly string[];
  /** Occupancy of the KV page pool, for models whose KV memory is paged (for monitoring): pages in
   *  all, in use, and most in use at once so far. */
  readonly kvPages?: { readonly pages: number; readonly used: number; readonly peak: number };
  /** A fresh, empty cache for one sequence, owned by the caller: creating one never touches
   *  another. Release it when done (caches dropped unreleased are reclaimed when collected). */
  createCache(capacity?: number): ModelCache;
  /** Appends `tokens` at positions cache.length … cache.length + n − 1 and returns their logits:
   *  (vocab) for 'last', (n, vocab) row-major for 'all'. The returned array may be reused by the next
   *  call: copy it if you keep it. */
  forward(tokens: ArrayLike<number>, cache: ModelCache, opts?: ForwardOptions): Float32Array;
  /** Runs every item's tokens in shared steps (the weights are read once per step for all of them)
   *  and returns each item's logits as asked; a sequence's logits do not depend on what else is in
   *  the batch. The returned arrays may be reused by the next call. */
  forwardBatch(batch: readonly BatchItem[]): Float32Array[];
  /** Frees memory and worker threads held by the model. */
  dispose(): void;
}
