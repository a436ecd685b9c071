// One generated sequence's bookkeeping, apart from the model: options and prompt checks, the context
// fit (ContextOverflowError, truncate 'start'), the sampler with its seed and the penalties history,
// eos / stop strings / max tokens, UTF-8-safe streaming text, and timing marks. Plain generation
// (generate.ts), a batching scheduler and speculative decoding all drive the model themselves and
// hand each sampled token to this object, so a sequence ends the same way whoever runs it. It never
// touches the model or its cache.
//
// Life of a sequence:  new SequenceState(…) → fitContext(cached, contextLength) → startPrefill()
//   → endPrefill() → sample(logits) / accept(token) … until accept says done → finish(reason).
// Shape legend: V = logits length (the model's vocabulary).

import type { ModelCache } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { createSampler, type Sampler, type SamplingOptions } from './sampler.js';
import { StopMatcher, StreamDecoder } from './stop.js';
import type { SpeculativeStats } from './speculative.js';
import type { SpeculateOptions } from './scheduler.js';

export type FinishReason = 'stop' | 'length' | 'eos' | 'abort';

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default: whatever room the context has left). Integer ≥ 1. */
  maxTokens?: number;
  /** Generation ends before the first occurrence of this string or of any of these (the stop string
   *  is not returned). */
  stop?: string | readonly string[];
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
  /** Speculative decoding: draft up to `gamma` tokens per step and verify them in one step
   *  (lossless: the same output distribution, and the same tokens when greedy). */
  speculate?: SpeculateOptions;
  /** Report each generated token's log-probability and this many alternatives (0–20) in the chunks
   *  (`chunk.logprobs`); not with `speculate` (a verified run's tokens are not sampled one by one). */
  logprobs?: number;
}

/** A generated token's log-probability under the model (log-softmax of its logits, before penalties,
 *  temperature and truncation, as vLLM reports them) and the most likely alternatives. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  /** The `logprobs` most likely tokens at this position, most likely first. */
  top: { token: number; logprob: number }[];
}

export interface GenerationChunk {
  /** Text that became final with this step (may be '' while a character or stop prefix is pending). */
  text: string;
  /** Tokens generated in this step (one, or none for the closing chunk that flushes held text). */
  tokens: number[];
  /** One entry per token when the generation asked for `logprobs`. */
  logprobs?: TokenLogprob[];
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
  /** Speculative decoding's acceptance (when the generation speculated). */
  speculative?: SpeculativeStats;
}

/** prompt + maxTokens does not fit the model's context. */
export class ContextOverflowError extends RangeError {
  constructor(readonly promptTokens: number, readonly maxTokens: number, readonly contextLength: number) {
    super(`prompt (${promptTokens} tokens) + max tokens (${maxTokens}) = ${promptTokens + maxTokens} exceeds the context length of ${contextLength} tokens: shorten the prompt, lower max tokens, load the model with a larger context, or ask for truncation`);
    this.name = 'ContextOverflowError';
  }
}

/** A text prompt that certainly exceeds the context, found from its length before it is tokenized
 *  (a 30 MB prompt is refused at once instead of after seconds and gigabytes of tokenizing). */
export class PromptTooLongError extends ContextOverflowError {
  constructor(readonly promptChars: number, readonly longestToken: number, maxTokens: number, contextLength: number) {
    const atLeast = Math.ceil(promptChars / longestToken);
    super(atLeast, maxTokens, contextLength);
    this.message = `the prompt of ${promptChars} characters is at least ${atLeast} tokens (no token of this vocabulary covers more than ${longestToken} characters), `
      + `more than the context length of ${contextLength} tokens: shorten the prompt or load the model with a larger context`;
    this.name = 'PromptTooLongError';
  }
}

/** What accept() did with a token. */
export interface Accepted {
  /** Text and tokens to stream now (empty when the token was an eos id). */
  chunk: GenerationChunk;
  /** Set when the sequence must end: pass it to finish(). */
  done?: FinishReason;
}

/** What acceptMany() did with a run of tokens. */
export interface AcceptedRun extends Accepted {
  /** Tokens of the run processed, the one that ended the sequence included; the rest were not. */
  consumed: number;
}

/** Performance.now() marks of one sequence (NaN until they happen). */
export interface SequenceMarks {
  prefillStart: number;
  prefillEnd: number;
  firstToken: number;
  /** When each generated token was accepted (tokens[i] at tokenTimes[i]). */
  tokenTimes: number[];
}

/** Checks a prompt of ids against the vocabulary. */
export function checkIds(ids: readonly number[], vocab: number, what: string): void {
  if (!Array.isArray(ids) && !(ArrayBuffer.isView(ids) && !(ids instanceof DataView))) {
    throw new TypeError(`${what} must be an array of token ids, got ${ids === null ? 'null' : typeof ids} ${String(ids).slice(0, 40)}`);
  }
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocab) {
      throw new RangeError(`${what}[${i}] = ${String(t)} is not a token id (expected an integer in [0, ${vocab - 1}])`);
    }
  }
}

/** Refuses option values that would otherwise be ignored silently (a misspelt truncate mode, a signal
 *  that is not an AbortSignal and so could never abort). */
export function checkGenerateOptions(opts: Pick<GenerateOptions, 'truncate' | 'signal'>): void {
  if (opts.truncate !== undefined && opts.truncate !== 'error' && opts.truncate !== 'start') {
    throw new RangeError(`truncate = ${JSON.stringify(opts.truncate)} is invalid: expected 'error' (the default) or 'start' (drop the oldest prompt tokens)`);
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw new TypeError('signal must be an AbortSignal (e.g. new AbortController().signal or AbortSignal.timeout(ms))');
  }
}

/** Refuses logits (V) holding NaN or ±Infinity: sampling them would pick token 0 (or any token) as if
 *  the model had chosen it. Finite weights cannot give these unless activations overflow float32, so
 *  this is the model's fault, not the request's (a plain Error, not a RangeError). */
function checkFiniteLogits(logits: Float32Array, seen: number): void {
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] - logits[i] !== 0) {
      throw new Error(`generate: the model's logit for token ${i} after ${seen} tokens is ${logits[i]}: its activations overflow `
        + 'float32 (weights too large or damaged), so any token it picked would be garbage; check the checkpoint (re-download or re-export it)');
    }
  }
}

/** Most alternatives per token `logprobs` may ask for (OpenAI's top_logprobs limit). */
export const MAX_TOP_LOGPROBS = 20;

/** log Σ exp(logits) (V) and the k most likely tokens' log-probabilities, most likely first (ties:
 *  lower id first). O(V·k), k ≤ 20. */
function logSoftmaxTop(logits: Float32Array, k: number): { lse: number; top: { token: number; logprob: number }[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const ids: number[] = [];                                        // kept sorted, best first
  for (let i = 0; i < logits.length && k > 0; i++) {
    const x = logits[i]!;
    if (ids.length === k && x <= logits[ids[k - 1]!]!) continue;
    let j = ids.length;
    while (j > 0 && logits[ids[j - 1]!]! < x) j--;
    ids.splice(j, 0, i);
    if (ids.length > k) ids.pop();
  }
  return { lse, top: ids.map((token) => ({ token, logprob: logits[token]! - lse })) };
}

export class SequenceState {
  readonly sampler: Sampler;
  /** Generated ids (eos excluded). */
  readonly tokens: number[] = [];
  /** Emitted text so far (the concatenation of the chunks returned). */
  text = '';
  readonly marks: SequenceMarks = { prefillStart: NaN, prefillEnd: NaN, firstToken: NaN, tokenTimes: [] };
  private ids: number[];
  private maxTokens = 0;
  private fitted = false;
  private finished = false;
  private readonly stops: StopMatcher;
  private readonly eos: ReadonlySet<number>;
  private readonly decoder: StreamDecoder;
  /** Context + prompt + generated tokens, for the penalties. */
  private history: number[] = [];
  /** Ids a sampler may return: checkpoints may pad the embedding past the tokenizer (Qwen2: 151936
   *  rows, 151665 tokens), and ids with no text are never sampled. */
  private readonly textVocab: number;
  /** The log-probabilities of the logits the last sample() drew from, until accept() takes them. */
  private pendingLogprob: TokenLogprob | undefined;

  /** Validates `opts` (sampling options, prefillChunk, maxTokens, stop strings) and the prompt against the model's
   *  vocabulary (`vocabSize`, the logits length); a string prompt is encoded with the tokenizer. */
  constructor(private readonly tokenizer: Tokenizer, prompt: string | readonly number[], private readonly opts: GenerateOptions,
              vocabSize: number) {
    this.sampler = createSampler(opts); // validates the sampling options first
    const chunk = opts.prefillChunk;
    if (chunk !== undefined && (!Number.isInteger(chunk) || chunk < 1)) throw new RangeError(`prefillChunk = ${String(chunk)} is invalid: expected an integer ≥ 1`);
    if (opts.maxTokens !== undefined && (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1)) {
      throw new RangeError(`maxTokens = ${String(opts.maxTokens)} is invalid: expected an integer ≥ 1`);
    }
    checkGenerateOptions(opts);
    if (opts.logprobs !== undefined) {
      if (!Number.isInteger(opts.logprobs) || opts.logprobs < 0 || opts.logprobs > MAX_TOP_LOGPROBS) {
        throw new RangeError(`logprobs = ${String(opts.logprobs)} is invalid: expected an integer in [0, ${MAX_TOP_LOGPROBS}] (alternatives per token)`);
      }
      if (opts.speculate !== undefined) throw new RangeError('logprobs cannot be combined with speculate: a verified run of drafted tokens is not sampled token by token; drop one of them');
    }
    this.stops = new StopMatcher(opts.stop ?? []);
    if (typeof prompt !== 'string') checkIds(prompt, vocabSize, 'prompt');
    this.ids = typeof prompt === 'string'
      ? tokenizer.encode(prompt, { addSpecialTokens: opts.addSpecialTokens ?? true })
      : [...prompt];
    checkIds(this.ids, vocabSize, 'prompt');
    if (this.ids.length === 0) throw new RangeError('the prompt is empty: give at least one token (e.g. the BOS token)');
    this.eos = new Set(opts.ignoreEos ? [] : (opts.eosTokenIds ?? tokenizer.eosTokenIds));
    this.decoder = new StreamDecoder((t) => tokenizer.decode(t, { skipSpecialTokens: true }));
    this.textVocab = Math.min(tokenizer.vocabSize, vocabSize);
  }

  /** The prompt ids to feed (after fitContext: truncated as asked). */
  get prompt(): readonly number[] { return this.ids; }
  /** Most tokens this sequence may generate (after fitContext). */
  get tokenLimit(): number { return this.maxTokens; }
  /** Tokens it may still emit: its max tokens less those emitted. */
  get remaining(): number { return this.maxTokens - this.tokens.length; }
  get seed(): number { return this.sampler.seed; }
  /** Context + prompt + generated tokens so far (what a draft is looked up in). */
  get context(): readonly number[] { return this.history; }
  get aborted(): boolean { return this.opts.signal?.aborted === true; }
  get isFinished(): boolean { return this.finished; }
  /** Whether `token` ends the sequence as an eos id (a draft stops there). */
  isEos(token: number): boolean { return this.eos.has(token); }

  /** Fits prompt + maxTokens into a cache that holds `cached` positions already and ends at
   *  `contextLength`: throws ContextOverflowError, or with truncate 'start' drops the oldest prompt
   *  tokens (keeping a leading BOS). Default maxTokens: the room left. Returns the prompt to feed. */
  fitContext(cached: number, contextLength: number): readonly number[] {
    if (this.fitted) throw new Error('SequenceState.fitContext: already called; a sequence is placed once');
    let ids = this.ids;
    let maxTokens = this.opts.maxTokens ?? contextLength - cached - ids.length;
    if (cached + ids.length + maxTokens > contextLength) {
      if (this.opts.truncate === 'start') {
        const room = contextLength - cached - maxTokens;
        const keepBos = ids[0] === this.tokenizer.bosTokenId ? 1 : 0;
        if (room < 1 + keepBos) throw new ContextOverflowError(ids.length, maxTokens, contextLength - cached);
        ids = [...ids.slice(0, keepBos), ...ids.slice(ids.length - (room - keepBos))];
      } else {
        throw new ContextOverflowError(ids.length, Math.max(maxTokens, 0), contextLength - cached);
      }
    }
    if (maxTokens < 1) throw new ContextOverflowError(ids.length, 1, contextLength - cached);
    this.ids = ids;
    this.maxTokens = Math.floor(maxTokens);
    this.history = [...(this.opts.context ?? []), ...ids];
    this.fitted = true;
    return ids;
  }

  startPrefill(): void { this.marks.prefillStart = performance.now(); }
  endPrefill(): void { this.marks.prefillEnd = performance.now(); }

  /** Draws the next token from `logits` (V) with the history as penalties context. Ids past the
   *  tokenizer's vocabulary are set to −∞ in `logits` itself. `draft`: tokens accepted
   *  speculatively after the history (speculative decoding samples position i after draft[0..i)). */
  sample(logits: Float32Array, draft: readonly number[] = []): number {
    this.checkLive('sample');
    checkFiniteLogits(logits, this.history.length + draft.length);
    this.mask(logits);
    const token = this.sampler.sample(logits, draft.length === 0 ? this.history : [...this.history, ...draft]);
    if (this.opts.logprobs !== undefined) {
      const { lse, top } = logSoftmaxTop(logits, this.opts.logprobs);
      this.pendingLogprob = { token, logprob: logits[token]! - lse, top };
    }
    return token;
  }

  /** The processed distribution `sample` draws from, dense (V): what speculative decoding compares
   *  draft and target with. Masks `logits` like sample(). */
  distribution(logits: Float32Array, draft: readonly number[] = []): Float64Array {
    this.checkLive('distribution');
    checkFiniteLogits(logits, this.history.length + draft.length);
    this.mask(logits);
    return this.sampler.probabilities(logits, draft.length === 0 ? this.history : [...this.history, ...draft]);
  }

  /** Takes one sampled token: eos ends the sequence (the id is not kept), otherwise it is kept and
   *  its text streamed; a completed stop string or the token limit ends the sequence. */
  accept(token: number): Accepted {
    this.checkLive('accept');
    if (this.eos.has(token)) return { chunk: { text: '', tokens: [] }, done: 'eos' };
    const now = performance.now();
    if (this.tokens.length === 0) this.marks.firstToken = now;
    this.marks.tokenTimes.push(now);
    this.tokens.push(token);
    this.history.push(token);
    const s = this.stops.push(this.decoder.push(token));
    this.text += s.text;
    const chunk: GenerationChunk = { text: s.text, tokens: [token] };
    const lp = this.pendingLogprob;
    this.pendingLogprob = undefined;
    if (lp !== undefined && lp.token === token) chunk.logprobs = [lp];
    if (s.stopped) return { chunk, done: 'stop' };
    if (this.tokens.length >= this.maxTokens) return { chunk, done: 'length' };
    return { chunk };
  }

  /** accept() over a run of tokens (e.g. the tokens a speculative step accepted), stopping at the
   *  first that ends the sequence: one chunk with their text and kept tokens, and how many of the
   *  run were consumed (the caller drops the rest, and their cache rows). */
  acceptMany(run: readonly number[]): AcceptedRun {
    const chunk: GenerationChunk = { text: '', tokens: [] };
    for (let i = 0; i < run.length; i++) {
      const a = this.accept(run[i]!);
      chunk.text += a.chunk.text;
      chunk.tokens.push(...a.chunk.tokens);
      if (a.done !== undefined) return { chunk, done: a.done, consumed: i + 1 };
    }
    return { chunk, consumed: run.length };
  }

  /** Ends the sequence. After eos or the token limit, the held text (an incomplete character, a
   *  stop-string prefix) is flushed into the last chunk, which may complete a stop string (the
   *  reason is then 'stop'); after a stop string or an abort nothing more is emitted. */
  finish(reason: FinishReason): { chunk?: GenerationChunk; result: GenerationResult } {
    this.checkLive('finish');
    this.finished = true;
    let chunk: GenerationChunk | undefined;
    if (reason === 'eos' || reason === 'length') {
      const s = this.stops.push(this.decoder.flush());
      let tail = s.text;
      if (s.stopped) reason = 'stop';
      else tail += this.stops.flush();
      this.text += tail;
      if (tail.length > 0) chunk = { text: tail, tokens: [] };
    }
    return { chunk, result: this.result(reason) };
  }

  private result(finishReason: FinishReason): GenerationResult {
    const now = performance.now(), { prefillStart, prefillEnd } = this.marks;
    const decoding = !Number.isNaN(prefillEnd);
    const prefillMs = (decoding ? prefillEnd : now) - prefillStart;
    const decodeMs = decoding ? now - prefillEnd : 0;
    const n = this.tokens.length;
    return {
      text: this.text, tokens: this.tokens, finishReason, promptTokens: this.ids.length, cachedTokens: 0, seed: this.sampler.seed,
      timings: {
        prefillMs, decodeMs,
        prefillTokensPerSecond: decoding && prefillMs > 0 ? this.ids.length / (prefillMs / 1000) : 0,
        decodeTokensPerSecond: decodeMs > 0 && n > 1 ? (n - 1) / (decodeMs / 1000) : 0,
      },
    };
  }

  private mask(logits: Float32Array): void {
    if (this.textVocab < logits.length) logits.fill(-Infinity, this.textVocab);
  }

  private checkLive(fn: string): void {
    if (!this.fitted) throw new Error(`SequenceState.${fn}: call fitContext() first (it sets the token limit)`);
    if (this.finished) throw new Error(`SequenceState.${fn}: the sequence has finished`);
  }
}
