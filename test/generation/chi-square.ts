// Pearson's chi-square goodness-of-fit, shared by the losslessness tests of speculative decoding.
import assert from 'node:assert/strict';

/** Upper 1e-4 quantile of chi-square with df degrees of freedom (Wilson–Hilferty). */
export const chi2Critical = (df: number) => df * (1 - 2 / (9 * df) + 3.719 * Math.sqrt(2 / (9 * df))) ** 3;

/** The statistic of `counts` (n draws) against probabilities p; a token of probability 0 must
 *  never have been drawn. */
export function chiSquare(counts: number[], p: ArrayLike<number>, n: number): { stat: number; df: number } {
  let stat = 0, df = -1;
  for (let v = 0; v < counts.length; v++) {
    if (p[v]! === 0) { assert.equal(counts[v], 0, `token ${v} has probability 0 but was emitted ${counts[v]} times`); continue; }
    stat += (counts[v]! - n * p[v]!) ** 2 / (n * p[v]!);
    df++;
  }
  return { stat, df };
}
