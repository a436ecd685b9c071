// Frequent-words extraction (RULER "fwe"): a "coded text" of random lower-case words whose counts
// follow Zipf's law, count_r = ⌊N · r^−α / ζ(α)⌋ for rank r (RULER: α = 2, 6-letter words, a
// vocabulary of 2000); the most frequent "word" is noise ("....", which the question says to
// ignore) and the answer is the words of ranks 2, 3 and 4. Aggregation again, with a skewed but
// long-tailed attention pattern. Prompt text is RULER's template.

import { deriveSeed, Rng } from '../data/rng.js';
import { matchAllFraction, type CountTokens, type TextTask } from '../data/synthetic-task.js';
import { fitToLength } from './fill.js';
import { codedWords } from './words.js';

export interface FrequentWordsOptions {
  seed: number;
  length: number;
  countTokens: CountTokens;
  /** Zipf exponent (RULER: 2). */
  alpha?: number;
  /** Letters per coded word (RULER: 6). */
  wordLength?: number;
  /** Vocabulary size (RULER: 2000). */
  vocabSize?: number;
}

const NOISE = '....';

/** ζ(α) = Σ r^−α, summed far enough for α > 1.1. */
function zeta(alpha: number): number {
  let s = 0;
  for (let r = 1; r <= 1_000_000; r++) s += r ** -alpha;
  return s;
}

export function frequentWordsTask(o: FrequentWordsOptions): TextTask {
  const alpha = o.alpha ?? 2, letters = o.wordLength ?? 6, V = o.vocabSize ?? 2000;
  if (!(alpha > 1.1 && alpha < 10)) throw new RangeError(`fwe: alpha ${alpha} must be in (1.1, 10)`);
  if (!Number.isInteger(V) || V < 5) throw new RangeError(`fwe: vocabSize ${V} must be an integer ≥ 5`);
  const z = zeta(alpha);
  const header = 'Read the following coded text and track the frequency of each coded word. Find the three most frequently appeared coded words. ';
  const question = "\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently appeared words in the above coded text? Answer: According to the coded text above, the three most frequently appeared words are:";
  const counts = (n: number) => Array.from({ length: V }, (_, r) => Math.floor((n * (r + 1) ** -alpha) / z));

  const build = (n: number) => {
    const rng = new Rng(deriveSeed(o.seed, 1));
    const vocab = codedWords(rng, V, letters);
    vocab[0] = NOISE;
    const c = counts(n);
    const text: string[] = [];
    vocab.forEach((w, r) => { for (let i = 0; i < c[r]; i++) text.push(w); });
    new Rng(deriveSeed(o.seed, 2, n)).shuffle(text);
    return { input: header + text.join(' ') + question, answers: vocab.slice(1, 4), words: text.length, c };
  };
  const probe = build(1000);
  const overhead = o.countTokens(header + question);
  const guess = Math.floor((1000 * (o.length - overhead)) / Math.max(1, o.countTokens(probe.input) - overhead));
  const { built, tokens } = fitToLength(build, o.countTokens, o.length, 20, 10_000_000, guess, 'fwe');
  if (!(built.c[3] > built.c[4] && built.c[3] > 0)) {
    throw new RangeError(`fwe: length ${o.length} is too short: the 3rd and 4th answer ranks would tie (counts ${built.c.slice(0, 5).join(', ')})`);
  }
  const answers = built.answers;
  return {
    input: built.input, target: ' ' + answers.join(', '), answers,
    score: (p) => matchAllFraction(answers, p),
    meta: { task: 'fwe', alpha, words: built.words, topCounts: built.c.slice(0, 5).join(','), tokens },
  };
}
