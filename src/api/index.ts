// The package entry: `import { load } from 'tessera'`.
//
//   const t = await load('models/SmolLM2-135M-Instruct');
//   for await (const c of t.generate('Once upon a time', { maxTokens: 32 })) process.stdout.write(c.text);
//   const r = await t.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }] });
//   t.dispose();

import type { LoadOptions } from '../models/load.js';
import { Tessera, type TesseraOptions } from './tessera.js';

export { Tessera, DEFAULT_REPLY_TOKENS, type TesseraOptions, type ChatRenderer } from './tessera.js';
export { ChatCompletions, type ChatCompletion, type ChatCompletionChunk, type ChatCompletionUsage, type ChatLogprobs } from './chat.js';
export { Completions, DEFAULT_COMPLETION_TOKENS, type Completion, type CompletionChoice, type CompletionLogprobs } from './completions.js';
export { PromptCache } from './prompt-cache.js';
export {
  ApiError, REQUEST_LIMITS, validateChatRequest, validateCompletionRequest,
  type ChatCompletionRequest, type ChatMessage, type ChatRole, type CompletionRequest, type ValidatedChatRequest, type ValidatedCompletionRequest,
} from './validate.js';
export { loadModel, describeModel, type LoadOptions, type LoadProgress, type LoadedModel, type ModelInfo } from '../models/load.js';
export type { LanguageModel, ModelCache, ForwardOptions } from '../models/types.js';
export type { Tokenizer } from '../tokenizer/types.js';
export type { LlamaConfig } from '../models/config.js';
export {
  generate, generateText, evaluateLogits, ContextOverflowError,
  type GenerateOptions, type GenerationChunk, type GenerationResult, type GenerationTimings, type FinishReason, type TokenLogprob,
} from '../generation/generate.js';
export {
  createSampler, processDistribution, validateSamplingOptions,
  type Sampler, type SamplingOptions, type Distribution,
} from '../generation/sampler.js';
export { StopMatcher, StreamDecoder } from '../generation/stop.js';
export { DraftModel, type DraftModelOptions } from '../generation/draft-model.js';
export { PROMPT_LOOKUP, type Drafter, type Draft, type DraftRequest } from '../generation/drafter.js';
export { combineSpeculativeStats, type SpeculativeStats } from '../generation/speculative.js';
export type { SpeculateOptions } from '../generation/scheduler.js';

/** Loads a checkpoint (Hugging Face folder or .gguf file) and returns a ready Tessera instance.
 *  Options: threads, contextLength, quantize ('q8_0'), cacheDType, onProgress, signal (see LoadOptions),
 *  plus name / chatTemplate / renderChat (see TesseraOptions). Call `dispose()` when done. */
export function load(path: string, opts: LoadOptions & TesseraOptions = {}): Promise<Tessera> {
  return Tessera.load(path, opts);
}
