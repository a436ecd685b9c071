// The generation loop: the one place where model, sampler and tokenizer meet (llama2.c's generate()).
//
//   prompt ids ──chunked prefill──▶ logits ──sampler──▶ token ──forward──▶ logits … until
//   eos | max tokens | stop string | abort
//
// Shape legend: V = vocabulary size, n = tokens in a forward chunk.
// The model's logits buffer may be reused by its next forward call, so it is sampled synchronously
// right after forward (no await in between) and never kept.

import type { LanguageModel, ModelCache } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { createSampler, type SamplingOptions } from './sampler.js';
import { StopMatcher, StreamDecoder } from './stop.js';

export type FinishReason = 'stop' | 'length' | 'eos' | 'abort';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default: whatever room the context has left). Integer ≥ 1. */
  maxTokens?: number;
  /** Generation ends before the first occurrence of any of these (the stop string is not returned). */
  stop?: readonly string[];
  /** Checked between prefill chunks and between tokens; on abort the result has finishReason 'abort'. */
  signal?: AbortSignal;
  /** Prompt tokens per forward call during prefill (default 128). */
  prefillChunk?: number;
  /** Continue in this cache: the prompt is appended after the cache.length positions it holds.
   *  Default: a fresh cache. At the end the cache holds every fed token (all but the last sampled one). */
  cache?: ModelCache;
  /** The tokens `cache` already holds, if known: repetition penalties then see them as history too. */
  context?: readonly number[];
  /** Called after each prefill chunk with (tokens done, prompt tokens). */
  onPrefillProgress?: (done: number, total: number) => void;
  /** Ids that end generation (default: tokenizer.eosTokenIds). */
  eosTokenIds?: readonly number[];
  /** Keep generating past eos ids (for benchmarks). */
  ignoreEos?: boolean;
  /** When prompt + maxTokens does not fit the context: 'error' (default) throws ContextOverflowError;
   *  'start' drops the oldest prompt tokens (keeping a leading BOS). */
  truncate?: 'error' | 'start';
  /** Encode a string prompt with special tokens (BOS) per the tokenizer's default (default true). */
  addSpecialTokens?: boolean;
}

export interface GenerationChunk {
  /** Text that became final with this step (may be '' while a character or stop prefix is pending). */
  text: string;
  /** Tokens generated in this step (one, or none for the closing chunk that flushes held text). */
  tokens: number[];
}

export interface GenerationTimings {
  prefillMs: number;
  decodeMs: number;
  /** Prompt tokens per second during prefill. */
  prefillTokensPerSecond: number;
  /** Generated tokens per second (tokens after the first / decode time). */
  decodeTokensPerSecond: number;
}

export interface GenerationResult {
  /** All emitted text (equals the concatenation of the streamed chunks' text). */
  text: string;
  /** Generated ids (the eos id that ended generation is not included). */
  tokens: number[];
  finishReason: FinishReason;
  /** Prompt tokens (after any truncation), including those already in a reused cache. */
  promptTokens: number;
  /** Of those, tokens whose keys/values were reused from the cache instead of recomputed. */
  cachedTokens: number;
  /** The seed the sampler used (pass it back to reproduce a sampled run). */
  seed: number;
  timings: GenerationTimings;
}

/** prompt + maxTokens does not fit the model's context. */
export class ContextOverflowError extends RangeError {
  constructor(readonly promptTokens: number, readonly maxTokens: number, readonly contextLength: number) {
    super(`prompt (${promptTokens} tokens) + max tokens (${maxTokens}) = ${promptTokens + maxTokens} exceeds the context length of ${contextLength} tokens: shorten the prompt, lower max tokens, load the model with a larger context, or ask for truncation`);
    this.name = 'ContextOverflowError';
  }
}

/** Lets timers and I/O run (an AbortSignal.timeout can only fire if the loop yields to the event loop). */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Checks a prompt of ids against the vocabulary. */
function checkIds(ids: readonly number[], vocab: number, what: string): void {
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new RangeError(`${what}[${i}] = ${String(t)} is not a token id (expected an integer in [0, ${vocab - 1}])`);
    }
  }
}

/** Streams generated text. Yields one chunk per generated token (plus a last one if held text remains);
 *  returns the GenerationResult. Breaking out of the loop stops generation. */
export async function* generate(model: LanguageModel, tokenizer: Tokenizer, prompt: string | readonly number[],
  opts: GenerateOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult, void> {
  const sampler = createSampler(opts); // validates the sampling options first
  const chunkSize = opts.prefillChunk ?? 128;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`prefillChunk = ${String(chunkSize)} is invalid: expected an integer ≥ 1`);
  if (opts.maxTokens !== undefined && (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1)) {
    throw new RangeError(`maxTokens = ${String(opts.maxTokens)} is invalid: expected an integer ≥ 1`);
  }
  const stops = new StopMatcher(opts.stop ?? []);
  let ids = typeof prompt === 'string'
    ? tokenizer.encode(prompt, { addSpecialTokens: opts.addSpecialTokens ?? true })
    : [...prompt];
  checkIds(ids, model.vocabSize, 'prompt');
  if (ids.length === 0) throw new RangeError('the prompt is empty: give at least one token (e.g. the BOS token)');

  if (opts.cache === undefined) {
    // a cache of our own: released however the loop ends (finished, thrown, or broken off)
    const cache = model.createCache();
    try { return yield* generate(model, tokenizer, ids, { ...opts, cache, addSpecialTokens: false }); } finally { cache.release(); }
  }
  const cache = opts.cache;
  const start = cache.length;
  const contextLength = Math.min(model.contextLength, cache.capacity);
  let maxTokens = opts.maxTokens ?? contextLength - start - ids.length;
  if (start + ids.length + maxTokens > contextLength) {
    if (opts.truncate === 'start') {
      const room = contextLength - start - maxTokens;
      const keepBos = ids[0] === tokenizer.bosTokenId ? 1 : 0;
      if (room < 1 + keepBos) throw new ContextOverflowError(ids.length, maxTokens, contextLength - start);
      ids = [...ids.slice(0, keepBos), ...ids.slice(ids.length - (room - keepBos))];
    } else {
      throw new ContextOverflowError(ids.length, Math.max(maxTokens, 0), contextLength - start);
    }
  }
  if (maxTokens < 1) throw new ContextOverflowError(ids.length, 1, contextLength - start);
  maxTokens = Math.floor(maxTokens);

  const eos = new Set(opts.ignoreEos ? [] : (opts.eosTokenIds ?? tokenizer.eosTokenIds));
  const decoder = new StreamDecoder((t) => tokenizer.decode(t, { skipSpecialTokens: true }));
  const history = [...(opts.context ?? []), ...ids]; // context + prompt + generated, for penalties
  const tokens: number[] = [];
  let text = '';
  const t0 = performance.now();
  let tDecode = -1; // when prefill ended (-1: still prefilling)
  const result = (finishReason: FinishReason): GenerationResult => {
    const now = performance.now();
    const prefillMs = (tDecode < 0 ? now : tDecode) - t0;
    const decodeMs = tDecode < 0 ? 0 : now - tDecode;
    return {
      text, tokens, finishReason, promptTokens: ids.length, cachedTokens: 0, seed: sampler.seed,
      timings: {
        prefillMs, decodeMs,
        prefillTokensPerSecond: tDecode >= 0 && prefillMs > 0 ? ids.length / (prefillMs / 1000) : 0,
        decodeTokensPerSecond: decodeMs > 0 && tokens.length > 1 ? (tokens.length - 1) / (decodeMs / 1000) : 0,
      },
    };
  };
  const aborted = () => opts.signal?.aborted === true;

  // ---- prefill, in chunks so long prompts stay abortable and report progress
  let logits: Float32Array | undefined;
  for (let i = 0; i < ids.length; i += chunkSize) {
    if (i > 0) await yieldToEventLoop();
    if (aborted()) return result('abort');
    const chunk = ids.slice(i, i + chunkSize);
    logits = model.forward(chunk, cache, { logits: 'last', phase: 'prefill' }); // (V)
    opts.onPrefillProgress?.(Math.min(i + chunkSize, ids.length), ids.length);
  }
  tDecode = performance.now();

  // ---- decode
  // Checkpoints may pad the embedding past the tokenizer (Qwen2: 151936 rows, 151665 tokens): ids
  // with no text are never sampled.
  const textVocab = Math.min(tokenizer.vocabSize, model.vocabSize);
  for (;;) {
    if (aborted()) return result('abort');
    if (textVocab < logits!.length) logits!.fill(-Infinity, textVocab);
    const token = sampler.sample(logits!, history);
    if (eos.has(token)) return yield* finish('eos');
    tokens.push(token);
    history.push(token);
    const s = stops.push(decoder.push(token));
    text += s.text;
    if (s.stopped) {
      yield { text: s.text, tokens: [token] };
      return result('stop');
    }
    yield { text: s.text, tokens: [token] };
    if (tokens.length >= maxTokens) return yield* finish('length');
    await yieldToEventLoop();
    if (aborted()) return result('abort');
    logits = model.forward([token], cache, { logits: 'last', phase: 'decode' }); // (V)
  }

  /** Flushes held text (incomplete characters, stop-string prefixes) as a last chunk. */
  async function* finish(reason: FinishReason): AsyncGenerator<GenerationChunk, GenerationResult, void> {
    const s = stops.push(decoder.flush());
    let tail = s.text;
    if (!s.stopped) tail += stops.flush();
    text += tail;
    if (tail.length > 0) yield { text: tail, tokens: [] };
    return result(s.stopped ? 'stop' : reason);
  }
}

/** Runs `generate` to the end and returns its result (the non-streaming convenience). */
export async function generateText(model: LanguageModel, tokenizer: Tokenizer, prompt: string | readonly number[],
  opts: GenerateOptions = {}): Promise<GenerationResult> {
  const it = generate(model, tokenizer, prompt, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** Logits of every position of `tokens` (n) in a fresh cache: (n, V) row-major, row i = the
 *  distribution of token i+1. For perplexity, evaluation and checking speculative decoding. */
export function evaluateLogits(model: LanguageModel, tokens: readonly number[], opts: { chunk?: number } = {}): Float32Array {
  checkIds(tokens, model.vocabSize, 'tokens');
  if (tokens.length > model.contextLength) {
    throw new RangeError(`evaluateLogits: ${tokens.length} tokens exceed the context length of ${model.contextLength}`);
  }
  const V = model.vocabSize;
  const chunk = opts.chunk ?? 128;
  const out = new Float32Array(tokens.length * V); // (n, V)
  const cache = model.createCache(Math.max(tokens.length, 1));
  try {
    for (let i = 0; i < tokens.length; i += chunk) {
      const part = tokens.slice(i, i + chunk);
      out.set(model.forward(part, cache, { logits: 'all' }).subarray(0, part.length * V), i * V); // (n_chunk, V)
    }
  } finally { cache.release(); }
  return out;
}
