// The choices of one OpenAI-shaped request (n per prompt), generated together: each is a
// Tessera.generate on the shared scheduler, so they are decoded in the same batched steps. Their
// chunks arrive interleaved, tagged with the choice index; the first failure cancels the others, and
// so does a consumer that stops reading.
//
// A request seed makes every choice reproducible: choice i samples with seed + i, so choice 0 of a
// seeded request gives the same tokens as a request with n = 1 and that seed, alone or in a batch.

import { ContextOverflowError, type GenerateOptions, type GenerationChunk, type GenerationResult, type TokenLogprob } from '../generation/generate.js';
import { ApiError } from './validate.js';
import type { Tessera } from './tessera.js';

export type ChoiceEvent = { index: number; chunk: GenerationChunk } | { index: number; result: GenerationResult };

/** Runs `n` choices of every prompt (choice index = prompt · n + i) and streams their events; errors
 *  that are the request's fault become ApiErrors (a context overflow names `promptParam`). */
export async function* runChoices(t: Tessera, prompts: readonly (readonly number[])[], n: number,
  opts: Omit<GenerateOptions, 'cache'>, promptParam: 'prompt' | 'messages', observe?: (e: ChoiceEvent) => void): AsyncGenerator<ChoiceEvent, void, void> {
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const its = prompts.flatMap((p) => Array.from({ length: n }, (_, i) =>
    t.generate(p, { ...opts, signal, ...(opts.seed !== undefined ? { seed: opts.seed + i } : {}) })));
  type Next = { index: number; step: IteratorResult<GenerationChunk, GenerationResult> };
  const pending = new Map<number, Promise<Next>>();
  const pull = (index: number) => pending.set(index, its[index]!.next().then((step) => ({ index, step })));
  its.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, step } = await Promise.race(pending.values());
      pending.delete(index);
      const e: ChoiceEvent = step.done ? { index, result: step.value } : { index, chunk: step.value };
      if (!step.done) pull(index);
      observe?.(e);
      yield e;
    }
  } catch (e) {
    throw requestError(e, promptParam);
  } finally {
    stop.abort();                                          // the others end with 'abort' within a step
    await Promise.allSettled(pending.values());
    await Promise.allSettled(its.map((it) => it.return(undefined as never)));
  }
}

/** Generation errors that are the request's fault become ApiErrors (status 400); `param` names the
 *  prompt field ('prompt' or 'messages') for a context overflow. */
export function requestError(e: unknown, param: string): unknown {
  if (e instanceof ApiError) return e;
  if (e instanceof ContextOverflowError) return new ApiError(e.message, param, 'context_length_exceeded');
  if (e instanceof RangeError || e instanceof TypeError) {
    // the engine's messages start with what they are about: 'prompt[3] = …', 'speculate: …'
    const about = /^(prompt|speculate)\b/.exec(e.message)?.[1];
    return new ApiError(e.message, about === 'prompt' ? param : about ?? null, 'invalid_value');
  }
  return e;
}

/** A token's text as OpenAI's logprobs show it (special tokens included) and its UTF-8 bytes. */
export function tokenText(t: Tessera, id: number): { token: string; bytes: number[] } {
  const token = t.tokenizer.decode([id], { skipSpecialTokens: false });
  return { token, bytes: [...Buffer.from(token, 'utf8')] };
}

/** Chat's `logprobs.content` entries for some generated tokens. */
export function chatLogprobs(t: Tessera, lps: readonly TokenLogprob[]): ChatTokenLogprob[] {
  return lps.map((lp) => ({
    ...tokenText(t, lp.token), logprob: lp.logprob,
    top_logprobs: lp.top.map((a) => ({ ...tokenText(t, a.token), logprob: a.logprob })),
  }));
}

export interface ChatTokenLogprob {
  token: string; logprob: number; bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}
