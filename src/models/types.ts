// The model-facing contract used by generation, the API, evaluation and (later) speculative decoding.
// A model is `forward(tokens, cache) → logits`; sampling, stopping and streaming live outside it.

export interface ModelCache {
  /** Number of positions already stored (the next token gets position `length`). */
  readonly length: number;
  /** Maximum number of positions the cache can hold. */
  readonly capacity: number;
  /** Forgets every position >= n (rollback for speculative decoding, reuse of a shared prefix). */
  truncate(n: number): void;
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
  /** A fresh, empty cache. A model instance holds one KV store, so only the newest cache is usable:
   *  creating one makes earlier ones stale (forward/truncate on them throw), and resets the attention
   *  backends' per-prompt state. */
  createCache(capacity?: number): ModelCache;
  /** Appends `tokens` at positions cache.length … cache.length + n − 1 and returns their logits:
   *  (vocab) for 'last', (n, vocab) row-major for 'all'. The returned array may be reused by the next
   *  call: copy it if you keep it. */
  forward(tokens: ArrayLike<number>, cache: ModelCache, opts?: ForwardOptions): Float32Array;
  /** Frees memory and worker threads held by the model. */
  dispose(): void;
}
