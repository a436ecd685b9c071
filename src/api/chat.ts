// `chat.completions.create`: OpenAI's chat completion objects on top of Tessera.generate.
// Non-streaming → one 'chat.completion'; streaming → 'chat.completion.chunk's: per choice, the first
// delta carries the role, content deltas follow, the last chunk carries finish_reason (then one usage
// chunk if asked). Choices (n) are generated together (choices.ts).

import { randomUUID } from 'node:crypto';
import { PromptTooLongError, type GenerationChunk, type GenerationResult } from '../generation/generate.js';
import { chatLogprobs, runChoices, type ChatTokenLogprob } from './choices.js';
import { ApiError, validateChatRequest, type ChatCompletionRequest } from './validate.js';
import { ChatTemplateError } from '../tokenizer/chat-template.js';
import type { Tessera } from './tessera.js';

export interface ChatCompletionUsage {
  prompt_tokens: number; completion_tokens: number; total_tokens: number;
  /** Prompt tokens whose keys/values came from the prompt cache (OpenAI's field). */
  prompt_tokens_details?: { cached_tokens: number };
}

export type FinishReasonApi = 'stop' | 'length';
export interface ChatLogprobs { content: ChatTokenLogprob[]; refusal: null }

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: number; message: { role: 'assistant'; content: string }; finish_reason: FinishReasonApi; logprobs: ChatLogprobs | null }[];
  usage: ChatCompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: number; delta: { role?: 'assistant'; content?: string }; finish_reason: FinishReasonApi | null; logprobs: ChatLogprobs | null }[];
  /** Only on the extra last chunk of `stream_options: {include_usage: true}` (whose choices are empty). */
  usage?: ChatCompletionUsage;
}

export function abortError(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  return r instanceof Error ? r : new DOMException('The completion was aborted', 'AbortError');
}

/** The usage of a request's choices: the prompt counted once per prompt, every choice's tokens. */
export function usageOf(results: readonly GenerationResult[], n: number): ChatCompletionUsage {
  let prompt = 0, cached = 0, completion = 0;
  results.forEach((r, i) => {
    if (i % n === 0) { prompt += r.promptTokens; cached += r.cachedTokens; }
    completion += r.tokens.length;
  });
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}

export const finishReason = (r: GenerationResult): FinishReasonApi => (r.finishReason === 'length' ? 'length' : 'stop');

/** OpenAI-shaped chat completions over one Tessera instance. */
export class ChatCompletions {
  constructor(private readonly tessera: Tessera) {}

  /** Runs a chat completion. Invalid requests reject with an ApiError naming the param; a prompt that
   *  does not fit the context rejects with code 'context_length_exceeded'; an aborted request rejects
   *  with the signal's reason (an AbortError). With `stream: true` it resolves to an async iterable of
   *  chunks. `n` choices are generated together (choice i with seed + i when a seed is given). */
  create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest & { stream?: false | null }): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const req = validateChatRequest(request);
    const signal = request.signal;
    const t = this.tessera;
    t.checkAttention(req.attention);
    const text = await t.applyChatTemplate(req.messages).catch((e: unknown) => {
      if (e instanceof PromptTooLongError) throw new ApiError(e.message, 'messages', 'context_length_exceeded');
      throw templateError(e, req.messages.length);
    });
    const prompt = t.tokenize(text, { addSpecialTokens: false });
    const context = t.contextLength;
    const maxTokens = req.maxTokens ?? t.defaultReplyTokens(prompt.length);
    const wanted = prompt.length + maxTokens;
    if (wanted > context) {
      throw new ApiError(`This model's maximum context length is ${context} tokens. However, you requested ${wanted} tokens `
        + `(${prompt.length} in the messages, ${maxTokens} in the completion). Please reduce the length of the messages or completion.`,
      'messages', 'context_length_exceeded');
    }
    request.admit?.(req.n);
    const opts = { ...req.sampling, maxTokens, stop: req.stop, signal, speculate: req.speculate, logprobs: req.logprobs, ignoreEos: req.ignoreEos };
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = req.model ?? t.name;
    const n = req.n;
    const lps = (c: GenerationChunk): ChatLogprobs | null => (req.logprobs === undefined ? null : { content: chatLogprobs(t, c.logprobs ?? []), refusal: null });

    if (!req.stream) {
      const results: GenerationResult[] = [];
      const logprobs: ChatTokenLogprob[][] = Array.from({ length: n }, () => []);
      for await (const e of runChoices(t, [prompt], n, opts, 'messages', request.onChoiceEvent)) {
        if ('result' in e) results[e.index] = e.result;
        else if (req.logprobs !== undefined) logprobs[e.index]!.push(...chatLogprobs(t, e.chunk.logprobs ?? []));
      }
      if (results.some((r) => r.finishReason === 'abort')) throw abortError(signal);
      return {
        id, object: 'chat.completion', created, model,
        choices: results.map((r, i) => ({
          index: i, message: { role: 'assistant', content: r.text }, finish_reason: finishReason(r),
          logprobs: req.logprobs === undefined ? null : { content: logprobs[i]!, refusal: null },
        })),
        usage: usageOf(results, n),
      };
    }
    const chunk = (index: number, delta: ChatCompletionChunk['choices'][0]['delta'], finish_reason: FinishReasonApi | null,
      logprobs: ChatLogprobs | null = null): ChatCompletionChunk =>
      ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index, delta, finish_reason, logprobs }] });
    const includeUsage = req.includeUsage;
    async function* stream(): AsyncGenerator<ChatCompletionChunk, void, void> {
      for (let i = 0; i < n; i++) yield chunk(i, { role: 'assistant', content: '' }, null);
      const results: GenerationResult[] = [];
      for await (const e of runChoices(t, [prompt], n, opts, 'messages', request.onChoiceEvent)) {
        if ('result' in e) {
          if (e.result.finishReason === 'abort') throw abortError(signal);
          results[e.index] = e.result;
          yield chunk(e.index, {}, finishReason(e.result));
        } else if (e.chunk.text || (e.chunk.logprobs?.length ?? 0) > 0) {
          yield chunk(e.index, { content: e.chunk.text }, null, lps(e.chunk));
        }
      }
      if (includeUsage) yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: usageOf(results, n) };
    }
    return stream();
  }
}

/** A template that raises or runs out of its work limit on these messages (a long conversation,
 *  roles in an order it refuses) is the request's fault: a 400 that says so. A template that does not
 *  parse is the model's, and stays a plain error. */
function templateError(e: unknown, messages: number): unknown {
  if (!(e instanceof ChatTemplateError) || /does not parse/.test(e.message)) return e;
  const size = /limit|steps/.test(e.message) ? ` A conversation of ${messages} messages is more than the template can render within its limits: send fewer or shorter messages.` : '';
  return new ApiError(`The chat template cannot render these messages: ${e.message}.${size}`, 'messages', 'invalid_value');
}
