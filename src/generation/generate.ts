// Generation: a SequenceState (sequence.ts) decides everything about one sequence — sampling,
// eos / stop strings / token limit, streamed text, timings — and the model's Scheduler
// (scheduler.ts) feeds it, batched with every other generation running on the same model.
//
//   prompt ids ──prefill chunks──▶ logits ──seq.sample──▶ token ──seq.accept──▶ chunk
//                                    ▲                                 │
//                                    └──── next batched step ◀─────────┘   until eos | max tokens | stop string | abort
//
// Shape legend: V = vocabulary size.

import type { LanguageModel } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { Scheduler } from './scheduler.js';
import { SequenceState, checkIds, type GenerateOptions, type GenerationChunk, type GenerationResult } from './sequence.js';

export {
  ContextOverflowError, PromptTooLongError, type FinishReason, type GenerateOptions, type GenerationChunk, type GenerationResult, type GenerationTimings, type TokenLogprob,
} from './sequence.js';

/** Streams generated text. Yields one chunk per generated token (plus a last one if held text remains);
 *  returns the GenerationResult. Breaking out of the loop stops generation (and frees its cache).
 *  Concurrent calls on one model are decoded together, in the same forward steps. */
export async function* generate(model: LanguageModel, tokenizer: Tokenizer, prompt: string | readonly number[],
  opts: GenerateOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult, void> {
  const seq = new SequenceState(tokenizer, prompt, opts, model.vocabSize); // validates options and prompt
  return yield* Scheduler.of(model).submit(seq, {
    cache: opts.cache, signal: opts.signal, prefillChunk: opts.prefillChunk ?? 128, onPrefillProgress: opts.onPrefillProgress,
    speculate: opts.speculate,
  });
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
