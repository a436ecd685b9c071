// Variable tracking (RULER "vt"): chains of assignments "VAR ABCDE = 12345." then "VAR FGHIJ = VAR
// ABCDE." … hidden, in order, in noise sentences; the question asks for every variable that holds
// the first chain's value. Multi-hop tracing: each hop's key is found from the previous hop's name.
// Other chains (numChains > 1) start from other values and distract. Prompt text is RULER's template.

import { deriveSeed, Rng } from '../data/rng.js';
import { matchAllFraction, type CountTokens, type TextTask } from '../data/synthetic-task.js';
import { NOISE_SENTENCES } from '../data/synthetic-needle.js';
import { fitToLength } from './fill.js';

export interface VariableTrackingOptions {
  seed: number;
  length: number;
  countTokens: CountTokens;
  /** Chains in the text; the first is asked for (RULER: 1). */
  numChains?: number;
  /** Assignments after the first in each chain (RULER: 4, i.e. 5 variables). */
  numHops?: number;
}

export function variableTrackingTask(o: VariableTrackingOptions): TextTask {
  const numChains = o.numChains ?? 1, numHops = o.numHops ?? 4;
  if (!Number.isInteger(numChains) || numChains < 1) throw new RangeError(`vt: numChains ${numChains} must be an integer ≥ 1`);
  if (!Number.isInteger(numHops) || numHops < 1) throw new RangeError(`vt: numHops ${numHops} must be an integer ≥ 1`);
  const rng = new Rng(deriveSeed(o.seed, 3));
  const names = new Set<string>();
  while (names.size < numChains * (numHops + 1)) {
    let s = '';
    for (let i = 0; i < 5; i++) s += String.fromCharCode(65 + rng.int(26));
    names.add(s);
  }
  const vars = [...names];
  const values = new Set<number>();
  while (values.size < numChains) values.add(rng.range(10000, 99999));
  const chains = [...values].map((value, c) => {
    const v = vars.slice(c * (numHops + 1), (c + 1) * (numHops + 1));
    return { value, vars: v, statements: [`VAR ${v[0]} = ${value}.`, ...v.slice(1).map((x, j) => `VAR ${x} = VAR ${v[j]}.`)] };
  });
  const value = chains[0].value, answers = chains[0].vars;
  const header = 'Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n';
  const question = `\nQuestion: Find all variables that are assigned the value ${value} in the text above. Answer: According to the chain(s) of variable assignment in the text above, ${numHops + 1} variables are assigned the value ${value}, they are:`;
  const statements = chains.flatMap((c) => c.statements.map((s, hop) => ({ s, hop, chain: c })));
  // Each chain's statements keep their order; chains interleave at random places in the noise.
  const build = (nNoise: number) => {
    const r = new Rng(deriveSeed(o.seed, 4, nNoise));
    const noise = Array.from({ length: nNoise }, (_, i) => NOISE_SENTENCES[i % NOISE_SENTENCES.length]);
    const at = statements.map(() => r.int(nNoise + 1));
    // Within a chain, positions sorted so hop j comes before hop j + 1.
    for (const c of chains) {
      const idx = statements.map((s, i) => (s.chain === c ? i : -1)).filter((i) => i >= 0);
      const sorted = idx.map((i) => at[i]).sort((a, b) => a - b);
      idx.forEach((i, k) => { at[i] = sorted[k]; });
    }
    const order = statements.map((_, i) => i).sort((a, b) => at[a] - at[b] || a - b);
    const parts = [...noise];
    for (const i of [...order].reverse()) parts.splice(at[i], 0, statements[i].s);
    return { input: header + parts.join(' ') + question };
  };
  const perNoise = o.countTokens(' ' + NOISE_SENTENCES.join(' ')) / NOISE_SENTENCES.length;
  const guess = Math.floor((o.length - o.countTokens(build(0).input)) / perNoise);
  const { built, n, tokens } = fitToLength(build, o.countTokens, o.length, 0, 10_000_000, guess, 'vt');
  return {
    input: built.input, target: ' ' + answers.join(' '), answers,
    score: (p) => matchAllFraction(answers, p),
    meta: { task: 'vt', numChains, numHops, noiseSentences: n, tokens },
  };
}
