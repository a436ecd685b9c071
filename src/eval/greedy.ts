// Greedy answering for evaluation, with control over which prompt tokens take the decode path.
// Backends are dense during prefill (a forward of n > 1 tokens) and sparse when a forward carries
// one token (PAPERS.md §1: "prefill is dense; sparsity applies to decoding only"). So:
//   decodeLast = 0   the whole prompt is prefilled densely (as the paper evaluates); the first
//                    answer token comes from dense attention and sparsity acts from the second on;
//   decodeLast = k   the last k prompt tokens are fed one at a time, so sparse attention also
//                    decides the first answer token (a single-token answer is otherwise never
//                    produced by the sparse path).
// Prefill chunks (and the model's pieces of them) never have a single token: that would silently
// take the sparse path.

import type { LanguageModel } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';

export interface GreedyOptions {
  maxTokens: number;
  decodeLast?: number;
  /** The answer ends before the first of these strings. */
  stop?: readonly string[];
  /** The model's internal prefill chunk (LoadOptions.prefillChunk; default 64). */
  modelChunk?: number;
}

export interface GreedyResult { text: string; tokens: number[]; decodeMs: number; decodeSteps: number }

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export function greedyAnswer(model: LanguageModel, tokenizer: Tokenizer, prompt: readonly number[], o: GreedyOptions): GreedyResult {
  const k = Math.min(o.decodeLast ?? 0, prompt.length - 1), mc = o.modelChunk ?? 64, chunk = 4 * mc;
  const stop = o.stop ?? [], eos = new Set(tokenizer.eosTokenIds);
  const cache = model.createCache();
  try { return answer(); } finally { cache.release(); }

  function answer(): GreedyResult {
    const pre = prompt.length - k;
    let logits!: Float32Array;
    for (let i = 0; i < pre;) {
      // The model splits a forward into pieces of mc tokens: no piece (and no chunk) may be 1 token.
      let n = Math.min(chunk, pre - i);
      if (pre - i - n === 1) n -= 1;
      if (n % mc === 1 && n > 1) n -= 2;
      logits = model.forward(prompt.slice(i, i + n), cache, { logits: 'last' }); // (V)
      i += n;
    }
    const t0 = performance.now();
    let steps = 0;
    for (let i = pre; i < prompt.length; i++, steps++) logits = model.forward([prompt[i]], cache, { logits: 'last' });
    const tokens: number[] = [];
    let text = '';
    for (;;) {
      const t = argmax(logits);
      if (eos.has(t)) break;
      tokens.push(t);
      text = tokenizer.decode(tokens, { skipSpecialTokens: true });
      const cut = Math.min(...stop.map((s) => { const j = text.indexOf(s); return j < 0 ? Infinity : j; }));
      if (cut !== Infinity) { text = text.slice(0, cut); break; }
      if (tokens.length >= o.maxTokens || cache.length >= cache.capacity) break;
      logits = model.forward([t], cache, { logits: 'last' });
      steps++;
    }
    return { text, tokens, decodeMs: performance.now() - t0, decodeSteps: steps };
  }
}
