// Tessera: one loaded model + tokenizer behind a small API (generate, complete, logits, chat).
//
// Every generation goes through the model's continuous-batching scheduler, so concurrent calls are
// decoded together. The instance keeps the caches of recently finished generations (its prompt
// cache, prompt-cache.ts, while the model has sequence slots to spare): a request that starts with
// the same tokens (the next turn of a chat) starts from that prefix by reference and only prefills
// what is new.

import { basename } from 'node:path';
import { loadModel, type LoadOptions, type LoadedModel, type ModelInfo } from '../models/load.js';
import type { ModelConfig } from '../models/load.js';
import type { LanguageModel, ModelCache } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import {
  ContextOverflowError, PromptTooLongError, evaluateLogits,
  type GenerateOptions, type GenerationChunk, type GenerationResult,
} from '../generation/generate.js';
import { Scheduler } from '../generation/scheduler.js';
import { SequenceState, checkGenerateOptions, checkIds } from '../generation/sequence.js';
import { ChatTemplateOutputLimitError, DEFAULT_MAX_OUTPUT_CHARS, renderChatTemplate } from '../tokenizer/chat-template.js';
import { ChatCompletions } from './chat.js';
import { Completions } from './completions.js';
import { PromptCache } from './prompt-cache.js';
import { ApiError } from './validate.js';
import { samplingDefaults, withSamplingDefaults } from './generation-defaults.js';
import type { SamplingOptions } from '../generation/sampler.js';
import { formatAttentionSpec, parseAttentionSpec } from '../attention/spec.js';
import type { ChatRole } from './validate.js';

/** Renders chat messages into a prompt string (the checkpoint's Jinja chat template by default). */
export type ChatRenderer = (messages: { role: ChatRole; content: string }[], opts: { addGenerationPrompt: boolean }) => string | Promise<string>;

export interface TesseraOptions {
  /** Model name reported by chat completions (default: the checkpoint's file or folder name). */
  name?: string;
  /** Overrides the checkpoint's chat template (a Jinja source string). */
  chatTemplate?: string;
  /** Overrides chat rendering altogether. */
  renderChat?: ChatRenderer;
  /** The attention backend the model was loaded with, as a spec ('dense', 'magicpig:K=10,L=150'); set
   *  by `load`. Requests naming another are refused (the backend is fixed at load). */
  attentionSpec?: string;
  /** Finished generations' caches kept for prefix reuse (default 1: the last conversation; 0 = off).
   *  Idle ones give their memory back whenever a request needs it (PromptCache). */
  promptCache?: number;
}

/** Longest chat reply when the request does not say (a model that never ends its turn must not write
 *  until the context is full); a checkpoint's generation_config.json max_new_tokens overrides it. */
export const DEFAULT_REPLY_TOKENS = 512;

export class Tessera {
  readonly model: LanguageModel;
  readonly tokenizer: Tokenizer;
  readonly config?: ModelConfig;
  readonly info?: ModelInfo;
  readonly generationConfig?: Record<string, unknown>;
  /** Sampling fields a request leaves out take these values: generation_config.json's temperature,
   *  top_p, top_k, min_p and repetition_penalty (as vLLM), else the sampler's defaults. */
  readonly samplingDefaults: SamplingOptions;
  readonly name: string;
  /** OpenAI-shaped chat completions: `tessera.chat.completions.create({messages, …})`. */
  readonly chat: { completions: ChatCompletions };
  /** OpenAI-shaped (legacy) text completions: `tessera.completions.create({prompt, …})`. */
  readonly completions: Completions;
  private readonly opts: TesseraOptions;
  /** Recently finished generations' caches, for prefix reuse. */
  private readonly prompts: PromptCache;
  private readonly reclaim: () => boolean;
  private disposed = false;
  private longest?: number;

  /** Wraps an already loaded model (see `load` to read a checkpoint). */
  constructor(loaded: Pick<LoadedModel, 'model' | 'tokenizer'> & Partial<LoadedModel>, opts: TesseraOptions = {}) {
    this.model = loaded.model;
    this.tokenizer = loaded.tokenizer;
    this.config = loaded.config;
    this.info = loaded.info;
    this.generationConfig = loaded.generationConfig;
    this.samplingDefaults = samplingDefaults(loaded.generationConfig);
    this.name = opts.name ?? (loaded.info ? basename(loaded.info.path) : 'tessera');
    this.opts = opts;
    this.chat = { completions: new ChatCompletions(this) };
    this.completions = new Completions(this);
    // a prompt cache needs a sequence slot to spare (a one-sequence model keeps none)
    this.prompts = new PromptCache(this.model.parallel > 1 ? opts.promptCache ?? 1 : 0);
    this.reclaim = () => this.prompts.evictOne();
    Scheduler.of(this.model).reclaimers.add(this.reclaim);
  }

  /** Reads a Hugging Face folder (config.json + *.safetensors + tokenizer.json) or a .gguf file. */
  static async load(path: string, opts: LoadOptions & TesseraOptions = {}): Promise<Tessera> {
    const { name, chatTemplate, renderChat, promptCache, ...loadOpts } = opts;
    const a = loadOpts.attention;
    const attentionSpec = a === undefined ? 'dense' : typeof a === 'string' ? formatAttentionSpec(parseAttentionSpec(a)) : 'kind' in a ? formatAttentionSpec(a) : undefined;
    return new Tessera(await loadModel(path, loadOpts), { name: name ?? basename(path.replace(/[\\/]+$/, '')), chatTemplate, renderChat, promptCache, attentionSpec });
  }

  /** Refuses a request's attention spec unless it is the backend this model runs (fixed at load). */
  checkAttention(spec: string | undefined): void {
    if (spec === undefined) return;
    let asked: string;
    try { asked = formatAttentionSpec(parseAttentionSpec(spec)); } catch (e) {
      throw new ApiError(`Invalid value for 'attention': ${(e as Error).message}.`, 'attention', 'invalid_value');
    }
    const runs = this.opts.attentionSpec;
    if (asked !== runs) {
      throw new ApiError(`'attention' ${JSON.stringify(asked)} cannot be chosen per request: this model was loaded with ${runs === undefined ? 'a custom attention backend' : JSON.stringify(runs)} `
        + '(the backend and its per-sequence state are fixed when the model is loaded). Omit the field, or start the server with --attention for that backend.', 'attention', 'unsupported_value');
    }
  }

  /** Tokens the model accepts in one sequence (prompt + generated). */
  get contextLength(): number { return this.model.contextLength; }

  /** The reply length chat uses when none is asked for: generation_config.json's max_new_tokens, else
   *  DEFAULT_REPLY_TOKENS, and never more than the room the prompt leaves in the context (at least 1). */
  defaultReplyTokens(promptTokens: number): number {
    const g = this.generationConfig?.max_new_tokens;
    const n = typeof g === 'number' && Number.isSafeInteger(g) && g >= 1 ? g : DEFAULT_REPLY_TOKENS;
    return Math.max(1, Math.min(n, this.contextLength - promptTokens));
  }

  /** Characters of the longest token text in the vocabulary. No token covers more characters of a
   *  prompt than its own text has (byte-level and SentencePiece alphabets map one character to one
   *  byte or space), so a prompt of more than contextLength × this many characters cannot fit — unless
   *  the tokenizer's normalizer deletes characters or the vocabulary cannot encode some (dropped). */
  private longestToken(): number {
    if (this.longest === undefined) {
      let n = 1;
      for (let id = 0; id < this.tokenizer.vocabSize; id++) n = Math.max(n, this.tokenizer.idToToken(id)?.length ?? 0);
      this.longest = n;
    }
    return this.longest;
  }

  /** Most characters a text that fits the context can have (contextLength × the longest token's
   *  characters): a longer one certainly exceeds it, known before tokenizing. */
  get promptCharLimit(): number { return this.contextLength * this.longestToken(); }

  /** Refuses a text prompt known to exceed the context from its length alone, before tokenizing it. */
  private checkPromptLength(chars: number, maxTokens: number): void {
    const longest = this.longestToken();
    if (chars > this.contextLength * longest) throw new PromptTooLongError(chars, longest, maxTokens, this.contextLength);
  }

  /** Text → ids; `addSpecialTokens` (default true) adds BOS as the tokenizer is configured to. */
  tokenize(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { addSpecialTokens: opts.addSpecialTokens ?? true });
  }

  /** Ids → text (special tokens skipped unless asked). */
  detokenize(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, { skipSpecialTokens: opts.skipSpecialTokens ?? true });
  }

  /** Renders messages with the chat template, ending with the assistant's generation prompt. */
  async applyChatTemplate(messages: { role: ChatRole; content: string }[], opts: { addGenerationPrompt?: boolean } = {}): Promise<string> {
    const addGenerationPrompt = opts.addGenerationPrompt ?? true;
    if (this.opts.renderChat) return this.opts.renderChat(messages, { addGenerationPrompt });
    const template = this.opts.chatTemplate ?? this.tokenizer.chatTemplate;
    if (!template) {
      throw new Error(`${this.name} has no chat template (a base model?): pass a chatTemplate, or use complete()/generate() with a plain prompt`);
    }
    const bos = this.tokenizer.bosTokenId;
    const eos = this.tokenizer.eosTokenIds[0];
    // Rendering stops once the text is longer than any prompt that fits the context could be, so a
    // template that doubles a string costs at most that much memory.
    const fits = this.contextLength * this.longestToken();
    try {
      return renderChatTemplate(template, {
        messages, addGenerationPrompt,
        bosToken: bos === null ? '' : this.tokenizer.idToToken(bos) ?? '',
        eosToken: eos === undefined ? '' : this.tokenizer.idToToken(eos) ?? '',
        ...(fits < DEFAULT_MAX_OUTPUT_CHARS ? { maxOutputChars: fits } : {}),
      });
    } catch (e) {
      if (e instanceof ChatTemplateOutputLimitError && e.limit === fits) throw new PromptTooLongError(e.chars, this.longestToken(), 0, this.contextLength);
      throw e;
    }
  }

  /** A prompt's ids, checked before any work: text is refused from its length alone when it cannot fit,
   *  then tokenized (with BOS per `addSpecialTokens`); ids are checked against the vocabulary; and
   *  prompt + maxTokens must fit the context (ContextOverflowError) unless truncating from the start. */
  promptIds(prompt: string | readonly number[], maxTokens?: number, opts: Pick<GenerateOptions, 'truncate' | 'addSpecialTokens'> = {}): number[] {
    if (typeof prompt !== 'string') checkIds(prompt, this.model.vocabSize, 'prompt');
    if (typeof prompt === 'string' && opts.truncate !== 'start') this.checkPromptLength(prompt.length, maxTokens ?? 0);
    const ids = typeof prompt === 'string' ? this.tokenize(prompt, { addSpecialTokens: opts.addSpecialTokens }) : [...prompt];
    if (maxTokens !== undefined && Number.isInteger(maxTokens) && ids.length + maxTokens > this.contextLength && opts.truncate !== 'start') {
      throw new ContextOverflowError(ids.length, maxTokens, this.contextLength);
    }
    return ids;
  }

  /** Streams a completion of `prompt` (text is tokenized with BOS; ids are used as given).
   *  Yields chunks {text, tokens} and returns the GenerationResult. Concurrent calls run together;
   *  `break`ing out of the loop cancels this one (its memory is freed within one step). */
  async *generate(prompt: string | readonly number[], asked: Omit<GenerateOptions, 'cache'> = {}): AsyncGenerator<GenerationChunk, GenerationResult, void> {
    if (this.disposed) throw new Error('this Tessera instance was disposed');
    const opts = withSamplingDefaults(asked, this.samplingDefaults);
    checkGenerateOptions(opts);
    const ids = this.promptIds(prompt, opts.maxTokens, opts);
    // Start from the prompt cache's longest common prefix (never the last token: its logits are needed).
    const hit = opts.truncate === 'start' ? undefined : this.prompts.lookup(ids);
    const keep = hit?.length ?? 0;
    const seq = new SequenceState(this.tokenizer, ids.slice(keep), { ...opts, context: ids.slice(0, keep) }, this.model.vocabSize);
    const generated: number[] = [];
    let cachedTokens = keep;   // 0 if the scheduler had it prefill the prefix after all (admit)
    let it: AsyncGenerator<GenerationChunk, GenerationResult, void>;
    try {
      it = Scheduler.of(this.model).submit(seq, {
        signal: opts.signal, prefillChunk: opts.prefillChunk, onPrefillProgress: opts.onPrefillProgress, speculate: opts.speculate,
        prefix: hit !== undefined ? { cache: hit.cache, length: keep, release: (used) => { if (!used) cachedTokens = 0; hit.release(); }, adopt: hit.adopt } : undefined,
        keepCache: this.prompts.maxEntries > 0 && opts.truncate !== 'start'
          // the cache holds the prompt, then the generated tokens that were fed back (all but the last)
          ? (cache) => this.prompts.keep(cache, [...ids, ...generated].slice(0, cache.length))
          : undefined,
      });
    } catch (e) { hit?.release(); throw e; }
    try {
      for (;;) {
        const step = await it.next();
        if (step.done) return { ...step.value, promptTokens: step.value.promptTokens + keep, cachedTokens };
        generated.push(...step.value.tokens);
        yield step.value;
      }
    } finally {
      await it.return(undefined as never);           // broken off: cancel the request at once
      hit?.release();
    }
  }

  /** Runs a completion to the end (non-streaming). */
  async complete(prompt: string | readonly number[], opts: Omit<GenerateOptions, 'cache'> = {}): Promise<GenerationResult> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Logits of every position (n, V) row-major for `tokens` (in a fresh cache; for evaluation). */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    if (this.disposed) throw new Error('this Tessera instance was disposed');
    for (;;) {
      try {
        return evaluateLogits(this.model, tokens);
      } catch (e) {
        // every sequence slot taken: kept prompts give theirs back first (as they do for generation)
        if (e instanceof RangeError && /sequence slots/.test(e.message) && this.prompts.evictOne()) continue;
        throw e;
      }
    }
  }

  /** Frees the model's memory and threads. The instance is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    Scheduler.of(this.model).reclaimers.delete(this.reclaim);
    this.prompts.clear();
    this.model.dispose();
  }
}
