// `completions.create`: OpenAI's (legacy) text completion objects on top of Tessera.generate.
// A prompt is text (tokenized with BOS as the tokenizer is configured) or token ids, one or several;
// each gets `n` choices, generated together (choices.ts). Non-streaming → one 'text_completion';
// streaming → 'text_completion' chunks of one choice each, a chunk with finish_reason closing each
// choice, then one usage chunk if asked.

import { randomUUID } from 'node:crypto';
import type { GenerationResult, TokenLogprob } from '../generation/generate.js';
import { abortError, finishReason, usageOf, type ChatCompletionUsage, type FinishReasonApi } from './chat.js';
import { requestError, runChoices, tokenText } from './choices.js';
import { validateCompletionRequest, type CompletionRequest } from './validate.js';
import type { Tessera } from './tessera.js';

/** Tokens a text completion generates when the request does not say (OpenAI's default). */
export const DEFAULT_COMPLETION_TOKENS = 16;

/** OpenAI's completion logprobs: parallel arrays over the generated tokens. `text_offset` counts
 *  characters from the start of the choice's generated text. */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

export interface CompletionChoice { index: number; text: string; finish_reason: FinishReasonApi | null; logprobs: CompletionLogprobs | null }

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  /** On the whole completion; in a stream only on the extra last chunk (whose choices are empty). */
  usage?: ChatCompletionUsage;
}

/** Appends tokens' logprobs to `into`; `offset` is the characters of text before them. Returns the
 *  offset after them. */
function appendLogprobs(t: Tessera, into: CompletionLogprobs, lps: readonly TokenLogprob[], offset: number): number {
  for (const lp of lps) {
    const { token } = tokenText(t, lp.token);
    into.tokens.push(token);
    into.token_logprobs.push(lp.logprob);
    into.top_logprobs.push(Object.fromEntries(lp.top.map((a) => [tokenText(t, a.token).token, a.logprob])));
    into.text_offset.push(offset);
    offset += token.length;
  }
  return offset;
}

const emptyLogprobs = (): CompletionLogprobs => ({ tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] });

export class Completions {
  constructor(private readonly tessera: Tessera) {}

  /** Runs a text completion; errors as chat.completions.create (ApiError naming the param, a context
   *  overflow naming both numbers, the signal's reason when aborted). */
  create(request: CompletionRequest & { stream: true }): Promise<AsyncIterable<Completion>>;
  create(request: CompletionRequest & { stream?: false | null }): Promise<Completion>;
  create(request: CompletionRequest): Promise<Completion | AsyncIterable<Completion>>;
  async create(request: CompletionRequest): Promise<Completion | AsyncIterable<Completion>> {
    const req = validateCompletionRequest(request);
    const signal = request.signal;
    const t = this.tessera;
    t.checkAttention(req.attention);
    const maxTokens = req.maxTokens ?? DEFAULT_COMPLETION_TOKENS;
    let prompts: number[][];
    try {
      prompts = req.prompts.map((p) => t.promptIds(p, maxTokens));
    } catch (e) {
      throw requestError(e, 'prompt');
    }
    request.admit?.(prompts.length * req.n);
    const opts = { ...req.sampling, maxTokens, stop: req.stop, signal, speculate: req.speculate, logprobs: req.logprobs, ignoreEos: req.ignoreEos };
    const id = `cmpl-${randomUUID().replaceAll('-', '')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = req.model ?? t.name;
    const n = req.n;
    const wantLogprobs = req.logprobs !== undefined;

    if (!req.stream) {
      const results: GenerationResult[] = [];
      const logprobs = Array.from({ length: prompts.length * n }, emptyLogprobs);
      const chars: number[] = Array(prompts.length * n).fill(0);
      for await (const e of runChoices(t, prompts, n, opts, 'prompt', request.onChoiceEvent)) {
        if ('result' in e) { results[e.index] = e.result; continue; }
        if (wantLogprobs) chars[e.index] = appendLogprobs(t, logprobs[e.index]!, e.chunk.logprobs ?? [], chars[e.index]!);
      }
      if (results.some((r) => r.finishReason === 'abort')) throw abortError(signal);
      return {
        id, object: 'text_completion', created, model,
        choices: results.map((r, i) => ({ index: i, text: r.text, finish_reason: finishReason(r), logprobs: wantLogprobs ? logprobs[i]! : null })),
        usage: usageOf(results, n),
      };
    }
    const chunk = (choice: CompletionChoice): Completion => ({ id, object: 'text_completion', created, model, choices: [choice] });
    const includeUsage = req.includeUsage;
    async function* stream(): AsyncGenerator<Completion, void, void> {
      const results: GenerationResult[] = [];
      const chars: number[] = Array(prompts.length * n).fill(0);
      for await (const e of runChoices(t, prompts, n, opts, 'prompt', request.onChoiceEvent)) {
        if ('result' in e) {
          if (e.result.finishReason === 'abort') throw abortError(signal);
          results[e.index] = e.result;
          yield chunk({ index: e.index, text: '', finish_reason: finishReason(e.result), logprobs: null });
        } else if (e.chunk.text || (e.chunk.logprobs?.length ?? 0) > 0) {
          let logprobs: CompletionLogprobs | null = null;
          if (wantLogprobs) {
            logprobs = emptyLogprobs();
            chars[e.index] = appendLogprobs(t, logprobs, e.chunk.logprobs ?? [], chars[e.index]!);
          }
          yield chunk({ index: e.index, text: e.chunk.text, finish_reason: null, logprobs });
        }
      }
      if (includeUsage) yield { id, object: 'text_completion', created, model, choices: [], usage: usageOf(results, n) };
    }
    return stream();
  }
}
