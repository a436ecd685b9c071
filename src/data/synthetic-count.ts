// Counting and aggregation over a list of words:
//   most-frequent  a list of words from `distinctWords` nouns in which one planted word occurs
//                  `margin` times more than any other; the question asks which word is the most
//                  frequent (RULER's "common words extraction", single answer)
//   count          a list of uniformly drawn words; the question asks how many times one of them
//                  occurs (the answer is a decimal number)
// The input is sized to at most `length` tokens as measured by `countTokens`.

import { preTokenize } from './byte-level.js';
import { Rng } from './rng.js';
import type { CountTokens, TextTask } from './synthetic-task.js';
import { NOUNS } from './synthetic-words.js';

export type CountingVariant = 'most-frequent' | 'count';

export interface CountingOptions {
  seed: number;
  /** Largest token count of `input`. */
  length: number;
  variant?: CountingVariant;
  /** Different words in the list (default 20, at most the vocabulary's size). */
  distinctWords?: number;
  /** The words the list draws from (default NOUNS; e.g. NAMES for a list of first names). */
  vocabulary?: readonly string[];
  /** most-frequent: how many more times the planted word occurs than the runner-up (default 2). */
  margin?: number;
  /** Token counter (default: the number of Llama-3 pre-tokens). */
  countTokens?: CountTokens;
}

const defaultCount: CountTokens = (s) => preTokenize(s).length;
const HEADER = 'Here is a list of words:\n';

/** most-frequent lists sized to `length` tokens (about length − 30 one-token words, the rest is the
 *  header and question): the margin that puts the planted word `fraction` of one word's share
 *  (list / distinctWords) ahead of the runner-up, at least 2. */
export function marginForFraction(fraction: number, length: number, distinctWords: number): number {
  return Math.max(2, Math.ceil((fraction * (length - 30)) / distinctWords));
}

export function countingTask(opts: CountingOptions): TextTask {
  const variant = opts.variant ?? 'most-frequent';
  const count = opts.countTokens ?? defaultCount;
  const m = opts.distinctWords ?? 20;
  const margin = opts.margin ?? 2;
  const vocab = opts.vocabulary ?? NOUNS;
  if (!Number.isInteger(m) || m < 2 || m > vocab.length) throw new RangeError(`countingTask: distinctWords ${m} must be in [2, ${vocab.length}]`);
  if (!Number.isInteger(margin) || margin < 1) throw new RangeError(`countingTask: margin ${margin} must be an integer ≥ 1`);
  if (variant !== 'most-frequent' && variant !== 'count') throw new RangeError(`countingTask: unknown variant ${JSON.stringify(variant)}`);

  // Everything random is drawn afresh from the seed for a given list size n, so shrinking n to
  // fit the token budget stays deterministic.
  const build = (n: number) => {
    const rng = new Rng(opts.seed);
    const words = rng.distinct(m, vocab.length).map((i) => vocab[i]);
    let list: string[], answer: string, question: string;
    if (variant === 'most-frequent') {
      const planted = words[0];
      const tally = new Map<string, number>();
      const others: string[] = [];
      // Others share the list uniformly; the planted word then gets max + margin occurrences.
      const nOthers = Math.max(1, Math.floor(((n - margin) * (m - 1)) / m));
      for (let i = 0; i < nOthers; i++) {
        const w = words[1 + rng.int(m - 1)];
        others.push(w); tally.set(w, (tally.get(w) ?? 0) + 1);
      }
      const top = Math.max(...tally.values()) + margin;
      list = rng.shuffle([...others, ...new Array<string>(top).fill(planted)]);
      answer = planted;
      question = 'Question: Which word appears most often in the list?\nAnswer:';
    } else {
      list = Array.from({ length: Math.max(1, n) }, () => words[rng.int(m)]);
      const asked = words[rng.int(m)];
      answer = String(list.filter((w) => w === asked).length);
      question = `Question: How many times does the word "${asked}" appear in the list?\nAnswer:`;
    }
    return { input: `${HEADER}${list.join(' ')}\n${question}`, answer, listLength: list.length };
  };

  const perWord = vocab.slice(0, m).reduce((s, w) => s + count(' ' + w), 0) / m;
  const overhead = count(HEADER) + count('\nQuestion: How many times does the word "word" appear in the list?\nAnswer:');
  let n = Math.floor((opts.length - overhead) / perWord);
  if (n < margin + 2) throw new RangeError(`countingTask: length ${opts.length} is too short for a list of words and the question`);
  let built = build(n), tokens = count(built.input);
  while (tokens > opts.length && n > 1) {
    n -= Math.max(1, Math.ceil((tokens - opts.length) / perWord));
    built = build(n); tokens = count(built.input);
  }
  if (tokens > opts.length) throw new RangeError(`countingTask: length ${opts.length} is too short`);
  const answer = built.answer;
  const score = variant === 'most-frequent'
    ? (p: string) => ((p.match(/\p{L}+/u)?.[0] ?? '').toLowerCase() === answer.toLowerCase() ? 1 : 0)
    : (p: string) => (p.match(/\d+/)?.[0] === answer ? 1 : 0);
  return { input: built.input, target: ' ' + answer, answers: [answer], score, meta: { variant, words: built.listLength, tokens } };
}
