// Common-words extraction (RULER "cwe", Hsieh et al. 2024): a numbered list of words in which
// `numCommon` words occur `freqCommon` times each and every other word `freqUncommon` times; the
// question asks for the `numCommon` most common words. An aggregation task: the answer depends on
// counting over the whole context, where attention is not sparse (PAPERS.md §1), so a backend that
// keeps only the highest-scoring keys loses information that sampling keeps.
// Prompt text is RULER's template. The list grows (more uncommon words) until `length` tokens.

import { deriveSeed, Rng } from '../data/rng.js';
import { matchAllFraction, type CountTokens, type TextTask } from '../data/synthetic-task.js';
import { fitToLength } from './fill.js';
import { wordPool } from './words.js';

export interface CommonWordsOptions {
  seed: number;
  /** Largest token count of `input`. */
  length: number;
  countTokens: CountTokens;
  /** Words asked for (RULER: 10). */
  numCommon?: number;
  /** Occurrences of each common word (RULER: 30); lowered to fit short lengths, never below freqUncommon + 2. */
  freqCommon?: number;
  /** Occurrences of each other word (RULER: 3; 1 when the length is too short for 3). */
  freqUncommon?: number;
}

export function commonWordsTask(o: CommonWordsOptions): TextTask {
  const numCommon = o.numCommon ?? 10;
  let freqUncommon = o.freqUncommon ?? 3;
  if (!Number.isInteger(numCommon) || numCommon < 1) throw new RangeError(`cwe: numCommon ${numCommon} must be an integer ≥ 1`);
  if (!Number.isInteger(freqUncommon) || freqUncommon < 1) throw new RangeError(`cwe: freqUncommon ${freqUncommon} must be an integer ≥ 1`);
  const header = 'Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones that appear most often.\n';
  const question = `\nQuestion: What are the ${numCommon} most common words in the above list? Answer: The top ${numCommon} words that appear most often in the list are:`;
  // Tokens per list item, measured on a sample, decide how many occurrences fit.
  const sample = Array.from({ length: 50 }, (_, i) => `${i + 101}. ${['apple', 'violin', 'harbor', 'kettle', 'tulip'][i % 5]}`).join(' ');
  const perItem = o.countTokens(sample) / 50;
  const items = Math.floor((o.length - o.countTokens(header + question)) / perItem);
  let freqCommon = Math.min(o.freqCommon ?? 30, Math.floor(items / 2 / numCommon));
  if (freqCommon < freqUncommon + 2 && o.freqUncommon === undefined) {
    // Short contexts: other words occur once and the common ones may fill up to 3/4 of the list.
    freqUncommon = 1;
    freqCommon = Math.min(o.freqCommon ?? 30, Math.floor((items * 3) / 4 / numCommon));
  }
  if (freqCommon < freqUncommon + 2) throw new RangeError(`cwe: length ${o.length} is too short for ${numCommon} common words (each would occur only ${freqCommon} times)`);

  const build = (nUncommon: number) => {
    // The pool is drawn from one stream (so a longer list extends a shorter one: the token count
    // grows with nUncommon), the order from another.
    const words = wordPool(new Rng(deriveSeed(o.seed, 1)), numCommon + nUncommon);
    const rng = new Rng(deriveSeed(o.seed, 2, nUncommon));
    const common = words.slice(0, numCommon);
    const list: string[] = [];
    for (const w of common) for (let i = 0; i < freqCommon; i++) list.push(w);
    for (const w of words.slice(numCommon)) for (let i = 0; i < freqUncommon; i++) list.push(w);
    rng.shuffle(list);
    const input = header + list.map((w, i) => `${i + 1}. ${w}`).join(' ') + question;
    return { input, common, listLength: list.length };
  };
  const guess = Math.max(0, Math.floor((items - numCommon * freqCommon) / freqUncommon));
  const { built, tokens } = fitToLength(build, o.countTokens, o.length, 0, 200000, guess, 'cwe');
  const answers = built.common;
  return {
    input: built.input, target: ' ' + answers.join(', '), answers,
    score: (p) => matchAllFraction(answers, p),
    meta: { task: 'cwe', numCommon, freqCommon, freqUncommon, words: built.listLength, tokens },
  };
}
