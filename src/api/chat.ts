// `chat.completions.create`: OpenAI's chat completion objects on top of Tessera.generate.
// Non-streaming → one 'chat.completion'; streaming → 'chat.completion.chunk's: the first delta carries
// the role, content deltas follow, the last chunk carries finish_reason (then a usage chunk if asked).

import { randomUUID } from 'node:crypto';
import { ContextOverflowError, PromptTooLongError, type GenerationResult } from '../generation/generate.js';
import { ApiError, validateChatRequest, type ChatCompletionRequest } from './validate.js';
import { ChatTemplateError } from '../tokenizer/chat-template.js';
import type { Tessera } from './tessera.js';

export interface ChatCompletionUsage { prompt_tokens: number; completion_tokens: number; total_tokens: number }

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; finish_reason: 'stop' | 'length'; logprobs: null }[];
  usage: ChatCompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: { index: 0; delta: { role?: 'assistant'; content?: string }; finish_reason: 'stop' | 'length' | null; logprobs: null }[];
  /** Only on the extra last chunk of `stream_options: {include_usage: true}` (whose choices are empty). */
  usage?: ChatCompletionUsage;
}

function abortError(signal: AbortSignal | undefined): Error {
  const r: unknown = signal?.reason;
  return r instanceof Error ? r : new DOMException('The chat completion was aborted', 'AbortError');
}

function usage(r: GenerationResult): ChatCompletionUsage {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.tokens.length, total_tokens: r.promptTokens + r.tokens.length };
}

/** OpenAI-shaped chat completions over one Tessera instance. */
export class ChatCompletions {
  constructor(private readonly tessera: Tessera) {}

  /** Runs a chat completion. Invalid requests reject with an ApiError naming the param; a prompt that
   *  does not fit the context rejects with code 'context_length_exceeded'; an aborted request rejects
   *  with the signal's reason (an AbortError). With `stream: true` it resolves to an async iterable of
   *  chunks. */
  create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  create(request: ChatCompletionRequest & { stream?: false | null }): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async create(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    const req = validateChatRequest(request);
    const signal = request.signal;
    const t = this.tessera;
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
    const opts = { ...req.sampling, maxTokens, stop: req.stop, signal };
    const id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = req.model ?? t.name;
    const finish = (r: GenerationResult) => (r.finishReason === 'length' ? 'length' as const : 'stop' as const);

    if (!req.stream) {
      const r = await t.complete(prompt, opts).catch(rethrow);
      if (r.finishReason === 'abort') throw abortError(signal);
      return {
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: finish(r), logprobs: null }],
        usage: usage(r),
      };
    }
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish_reason: 'stop' | 'length' | null): ChatCompletionChunk =>
      ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason, logprobs: null }] });
    const includeUsage = req.includeUsage;
    async function* stream(): AsyncGenerator<ChatCompletionChunk, void, void> {
      yield chunk({ role: 'assistant', content: '' }, null);
      const it = t.generate(prompt, opts);
      let r: GenerationResult;
      try {
        for (;;) {
          const step = await it.next().catch(rethrow);
          if (step.done) { r = step.value; break; }
          if (step.value.text) yield chunk({ content: step.value.text }, null);
        }
      } finally {
        await it.return(undefined as never);   // a caller that breaks off cancels the generation at once
      }
      if (r.finishReason === 'abort') throw abortError(signal);
      yield chunk({}, finish(r));
      if (includeUsage) yield { id, object: 'chat.completion.chunk', created, model, choices: [], usage: usage(r) };
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

/** Generation errors that are the request's fault become ApiErrors. */
function rethrow(e: unknown): never {
  if (e instanceof ContextOverflowError) throw new ApiError(e.message, 'messages', 'context_length_exceeded');
  if (e instanceof RangeError) throw new ApiError(e.message, null, 'invalid_value');
  throw e;
}
