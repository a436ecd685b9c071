// Sizing a generated prompt to a token budget: the generators build their input from an item count
// (words in a list, filler sentences …); this finds the largest count whose input fits in `length`
// tokens as measured by the model's own tokenizer, in a few measurements (each one encodes the whole
// prompt, so a linear search would be quadratic at long lengths).

import type { CountTokens } from '../data/synthetic-task.js';

export interface Fitted<T> { built: T; n: number; tokens: number }

/** Largest n in [lo, hi] with count(build(n).input) ≤ length, assuming the count grows with n.
 *  `guess` is the first n tried. Throws if even `lo` does not fit. */
export function fitToLength<T extends { input: string }>(build: (n: number) => T, count: CountTokens, length: number,
  lo: number, hi: number, guess: number, what: string): Fitted<T> {
  const measure = (n: number): Fitted<T> => { const built = build(n); return { built, n, tokens: count(built.input) }; };
  let good = measure(lo);
  if (good.tokens > length) throw new RangeError(`${what}: length ${length} is too short (the smallest prompt already has ${good.tokens} tokens)`);
  let bad = hi + 1;                               // smallest n known not to fit (hi + 1: none known)
  let probe = Math.min(hi, Math.max(lo + 1, Math.round(guess)));
  // Secant steps (tokens are nearly linear in n), then bisection on the bracket [good.n, bad).
  for (let step = 0; step < 6 && probe > good.n && probe < bad; step++) {
    const m = measure(probe);
    const perItem = Math.max((m.tokens - good.tokens) / (m.n - good.n), 1e-6);
    if (m.tokens <= length) good = m; else bad = m.n;
    // At most doubling per step: counts that grow in steps (fwe) can make perItem look tiny.
    probe = Math.min(bad - 1, 2 * good.n + 16, good.n + Math.max(1, Math.floor((length - good.tokens) / perItem)));
    if (probe === good.n) break;
  }
  while (bad - good.n > 1) {
    const mid = good.n + ((bad - good.n) >> 1);
    const m = measure(mid);
    if (m.tokens <= length) good = m; else bad = mid;
  }
  return good;
}
