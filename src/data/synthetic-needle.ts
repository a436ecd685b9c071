// Needle retrieval in a haystack (after RULER, Hsieh et al. 2024, "NIAH" tasks): sentences
// "The special magic number for <key> is <value>." hidden in filler text, a question at the end.
//   single      one needle, asked for
//   multikey    numNeedles needles with different keys; one is asked for (the others distract)
//   multivalue  numValues needles with the same key; all values are asked for, in text order
//   multiquery  numQueries needles with different keys, all asked for, in the order asked
// Keys are "<adjective>-<noun>", values numbers of valueDigits digits (no leading zero). The
// haystack is natural text cut into sentences (joined by single spaces, starting at a random
// sentence, wrapping around) or, by default, RULER's repeated "noise" sentences.
// The input is sized to at most `length` tokens as measured by `countTokens`.

import { preTokenize } from './byte-level.js';
import { Rng } from './rng.js';
import { matchAllFraction, type CountTokens, type TextTask } from './synthetic-task.js';
import { ADJECTIVES, NAMES, NOUNS } from './synthetic-words.js';

export type NeedleVariant = 'single' | 'multikey' | 'multivalue' | 'multiquery';

/** RULER's noise haystack. */
export const NOISE_SENTENCES: readonly string[] = [
  'The grass is green.', 'The sky is blue.', 'The sun is yellow.', 'Here we go.', 'There and back again.',
];

export interface NeedleOptions {
  seed: number;
  /** Largest token count of `input`. */
  length: number;
  variant?: NeedleVariant;
  /** Natural text for the haystack (default: NOISE_SENTENCES repeated). */
  haystack?: string;
  /** Depth in [0, 1] of the (first) asked needle; default random. */
  depth?: number;
  /** multikey: needles in all (default 4). */
  numNeedles?: number;
  /** multivalue: values of the asked key (default 4). */
  numValues?: number;
  /** multiquery: keys asked (default 2). */
  numQueries?: number;
  /** Digits of each value (default 7, as RULER). */
  valueDigits?: number;
  /** Kind of value (RULER's value types): numbers of valueDigits digits (default), or words (first
   *  names, one of NAMES, distinct within a haystack): "The special magic word for KEY is Alice." */
  valueType?: 'number' | 'word';
  /** Token counter (default: the number of Llama-3 pre-tokens, a lower bound of BPE tokens). */
  countTokens?: CountTokens;
}

const defaultCount: CountTokens = (s) => preTokenize(s).length;

/** "The special magic number for KEY is VALUE." (or "… magic word …"). */
export function needleSentence(valueType: 'number' | 'word', key: string, value: string): string {
  return `The special magic ${valueType} for ${key} is ${value}.`;
}

/** The single/multikey question about `key`, ending where the value is to be generated. */
export function needleQuestion(valueType: 'number' | 'word', key: string): string {
  return `Question: What is the special magic ${valueType} for ${key}?\nAnswer: The special magic ${valueType} for ${key} is`;
}

/** The needles of a haystack (needleSentence's key and value), in text order. */
export function findNeedles(text: string, valueType: 'number' | 'word'): { key: string; value: string }[] {
  const re = new RegExp(`The special magic ${valueType} for ([a-z]+-[a-z]+) is (\\w+)\\.`, 'g');
  return [...text.matchAll(re)].map((m) => ({ key: m[1]!, value: m[2]! }));
}

export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/[^.!?]*[.!?]+["'”’)\]]*/g)) {
    const s = m[0].replace(/\s+/g, ' ').trim();
    if (s.length > 0) out.push(s);
  }
  return out;
}

export function needleTask(opts: NeedleOptions): TextTask {
  const variant = opts.variant ?? 'single';
  const count = opts.countTokens ?? defaultCount;
  const digits = opts.valueDigits ?? 7;
  if (!Number.isInteger(digits) || digits < 1 || digits > 15) throw new RangeError(`needleTask: valueDigits ${digits} must be in [1, 15]`);
  const rng = new Rng(opts.seed);

  const numKeys = variant === 'multikey' ? opts.numNeedles ?? 4 : variant === 'multiquery' ? opts.numQueries ?? 2 : 1;
  const numValues = variant === 'multivalue' ? opts.numValues ?? 4 : 1;
  if (!(numKeys >= 1 && numValues >= 1)) throw new RangeError(`needleTask: needle counts must be ≥ 1`);
  const keys = rng.distinct(numKeys, ADJECTIVES.length * NOUNS.length)
    .map((k) => `${ADJECTIVES[Math.floor(k / NOUNS.length)]}-${NOUNS[k % NOUNS.length]}`);
  const valueType = opts.valueType ?? 'number';
  if (valueType !== 'number' && valueType !== 'word') throw new RangeError(`needleTask: valueType ${JSON.stringify(valueType)} must be "number" or "word"`);
  if (valueType === 'word' && numKeys * numValues > NAMES.length) throw new RangeError(`needleTask: ${numKeys * numValues} word values need more than the ${NAMES.length} names`);
  const names = valueType === 'word' ? rng.distinct(numKeys * numValues, NAMES.length) : [];
  let made = 0;
  const value = () => (valueType === 'word' ? NAMES[names[made++]] : String(rng.range(10 ** (digits - 1), 10 ** digits - 1)));
  // Needles: (key index, value), each with a depth; the first is the asked one at opts.depth.
  const needles: { key: number; value: string; depth: number }[] = [];
  for (let k = 0; k < numKeys; k++) for (let v = 0; v < numValues; v++) needles.push({ key: k, value: value(), depth: rng.float() });
  if (opts.depth !== undefined) {
    if (!(opts.depth >= 0 && opts.depth <= 1)) throw new RangeError(`needleTask: depth ${opts.depth} must be in [0, 1]`);
    needles[0].depth = opts.depth;
  }
  const sentence = (n: { key: number; value: string }) => needleSentence(valueType, keys[n.key], n.value);

  let question: string, answers: string[];
  if (variant === 'single' || variant === 'multikey') {
    answers = [needles[0].value];
    question = needleQuestion(valueType, keys[0]);
  } else if (variant === 'multivalue') {
    answers = []; // in text order, known once the filler is
    question = `Question: What are all the special magic ${valueType}s for ${keys[0]}?\nAnswer: The special magic ${valueType}s for ${keys[0]} are`;
  } else if (variant === 'multiquery') {
    answers = needles.map((n) => n.value);
    const asked = keys.join(' and ');
    question = `Question: What are the special magic ${valueType}s for ${asked}?\nAnswer: The special magic ${valueType}s for ${asked} are`;
  } else {
    throw new RangeError(`needleTask: unknown variant ${JSON.stringify(variant satisfies never)}`);
  }

  const source = opts.haystack === undefined ? [...NOISE_SENTENCES] : splitSentences(opts.haystack);
  if (source.length === 0) throw new RangeError('needleTask: the haystack has no sentences');
  const start = rng.int(source.length);
  const overhead = count(needles.map(sentence).join(' ')) + count('\n' + question) + needles.length;
  if (overhead > opts.length) throw new RangeError(`needleTask: length ${opts.length} is too short for the needles and question (${overhead} tokens)`);

  // Filler sentences within the budget, then drop from the end until the measured input fits.
  const filler: string[] = [];
  for (let used = overhead, i = 0; ; i++) {
    const s = source[(start + i) % source.length];
    const c = count(' ' + s);
    if (used + c > opts.length) {
      // The last sentence is cut at a word so the input comes close to `length`.
      const words = s.split(' ');
      const k = Math.floor((words.length * (opts.length - used)) / c);
      if (k > 0) filler.push(words.slice(0, k).join(' '));
      break;
    }
    filler.push(s); used += c;
  }
  // Needle i goes after round(depth_i · #filler) filler sentences; needles at one place keep their order.
  const textOrder = () => {
    const at = needles.map((n) => Math.round(n.depth * filler.length));
    return needles.map((_, i) => i).sort((a, b) => at[a] - at[b] || a - b).map((i) => ({ i, at: at[i] }));
  };
  const build = () => {
    const parts = [...filler];
    for (const { i, at } of textOrder().reverse()) parts.splice(at, 0, sentence(needles[i])); // deepest first
    return parts.join(' ') + '\n' + question;
  };
  let input = build(), tokens = count(input);
  while (tokens > opts.length && filler.length > 0) { filler.pop(); input = build(); tokens = count(input); }
  if (variant === 'multivalue') answers = textOrder().map(({ i }) => needles[i].value);
  const target = ' ' + answers.join(', ');
  return {
    input, target, answers,
    score: (prediction) => matchAllFraction(answers, prediction),
    meta: { variant, depth: needles[0].depth, needles: needles.length, fillerSentences: filler.length, tokens },
  };
}
