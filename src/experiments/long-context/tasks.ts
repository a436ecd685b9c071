// The synthetic long-context tasks of the long-context model, as token ids, and its tokenizer.
//   needle-single     one "special magic number" in RULER's noise haystack, asked at the end
//   needle-multikey   four needles with different keys, one asked (the others distract)
//   needle-multiquery two needles asked at once ("… for A and B?" → " v1, v2")
//   most-frequent     a list of `distinctWords` nouns, one planted `margin` times more often than
//                     the runner-up; "Which word appears most often?" → the word
//   most-frequent-name the same over first names (the needle values' vocabulary)
//   copy-digits       (training aids) a run of random digits (3-digit tokens back to back), or
//   copy-words        a list of random words and 3-digit numbers, then the same again, every
//                     repeated token scored: the dense copying signal from which induction heads
//                     form (a 2-layer model trained on the tasks alone had not formed them after
//                     500 steps; on clean digit copying they form in ~150)
// Generators are data/synthetic-needle.ts and data/synthetic-count.ts, sized by the real BPE token
// count so that BOS + input + answer + EOS fills a window of exactly the asked length or less.
// Needle values (NeedleSpec) are numbers — 6 digits by default: the tokenizer holds every 3-digit
// string, so a value is two tokens (" " then "408", "112" by Llama-3's digit split) — or words, one
// first-name token each (what the shipped model is trained on).
//
// Tokenizer: a byte-level BPE trained on task text plus every number 000–999, so each key word,
// noun and 3-digit group is one token; <|endoftext|> is BOS (prepended to prompts) and EOS.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findNeedles, needleQuestion, needleTask, NOISE_SENTENCES } from '../../data/synthetic-needle.js';
import { countingTask, marginForFraction } from '../../data/synthetic-count.js';
import type { TextTask } from '../../data/synthetic-task.js';
import { ADJECTIVES, NAMES, NOUNS } from '../../data/synthetic-words.js';
import { trainBpe, toTokenizerJson, type BpeModel } from '../../data/bpe-trainer.js';
import { BpeEncoder } from '../../data/bpe-encoder.js';
import { TASK_OPTIONS_FILE } from '../../eval/tasks.js';
import { deriveSeed, Rng } from '../../data/rng.js';

export const EOT = '<|endoftext|>';
export type TaskKind = 'needle-single' | 'needle-multikey' | 'needle-multiquery' | 'most-frequent' | 'most-frequent-name' | 'copy-digits' | 'copy-words';
export const TASK_KINDS: readonly TaskKind[] = ['needle-single', 'needle-multikey', 'needle-multiquery', 'most-frequent', 'most-frequent-name', 'copy-digits', 'copy-words'];

/** Needle values: numbers of `digits` digits (6: two number tokens) or words (first names, one token). */
export interface NeedleSpec { values: 'number' | 'word'; digits: number }
export const DEFAULT_NEEDLE: NeedleSpec = { values: 'number', digits: 6 };

/** Aggregation difficulty: distinct words in the list; margin = ceil(marginFraction · list/distinct). */
export interface CountingSpec { distinctWords: number; marginFraction: number }
export const DEFAULT_COUNTING: CountingSpec = { distinctWords: 10, marginFraction: 0.5 };

/** The model folder's record of the task options it was trained with (read by the evaluations). */
export { TASK_OPTIONS_FILE };

/** The task options a model folder was trained with (the defaults where the file is absent). */
export function readTaskOptions(dir: string): { counting: CountingSpec; needle: NeedleSpec } {
  const path = join(dir, TASK_OPTIONS_FILE);
  if (!existsSync(path)) return { counting: DEFAULT_COUNTING, needle: DEFAULT_NEEDLE };
  const o = JSON.parse(readFileSync(path, 'utf8')) as { counting?: CountingSpec; needle?: NeedleSpec };
  return { counting: o.counting ?? DEFAULT_COUNTING, needle: o.needle ?? DEFAULT_NEEDLE };
}

/** Tokens an answer may take, with EOS (" 408112, 553201" + EOS is 8). */
const ANSWER_ROOM = 9;
/** Tokens of one extra question + answer + EOS (training multikey examples), with a margin. */
const EXTRA_QA_ROOM = 34;
const MULTIKEY_NEEDLES = 4;

/** A task as ids: BOS + input + target + EOS; the loss is on target and EOS. */
export interface TaskExample {
  kind: TaskKind;
  task: TextTask;
  tokens: Int32Array;
  /** Positions of target + EOS tokens in `tokens`. */
  answerPositions: Int32Array;
}

/** The text the BPE is trained on: task instances of every kind, and every number 000–999 (twice). */
export function tokenizerCorpus(seed: number): string[] {
  const docs: string[] = [];
  const plain = (s: string) => s.split(/\s+/).length; // a rough size for the corpus only
  for (let i = 0; i < 8; i++) {
    docs.push(needleTask({ seed: deriveSeed(seed, 1, i), length: 600, variant: 'multikey', numNeedles: 8, valueDigits: 6, countTokens: plain }).input);
    docs.push(needleTask({ seed: deriveSeed(seed, 2, i), length: 200, variant: 'multiquery', valueDigits: 6, countTokens: plain }).input);
    docs.push(countingTask({ seed: deriveSeed(seed, 3, i), length: 400, distinctWords: 20, countTokens: plain }).input);
    docs.push(needleTask({ seed: deriveSeed(seed, 4, i), length: 600, variant: 'multikey', numNeedles: 8, valueType: 'word', countTokens: plain }).input);
  }
  const words = [...ADJECTIVES.map((a) => `${a}-${NOUNS[0]} ${a}`), ...NOUNS.map((n) => `${ADJECTIVES[0]}-${n} ${n}`)];
  for (let r = 0; r < 6; r++) docs.push(words.join(' '), NOISE_SENTENCES.join(' '), NAMES.map((n) => `is ${n}.`).join(' '));
  const nums: string[] = [];
  for (let r = 0; r < 2; r++) for (let n = 0; n < 1000; n++) nums.push(String(n).padStart(3, '0'), String(n));
  docs.push(nums.join(' '));
  return docs;
}

/** Trains the long-context tokenizer (deterministic); vocabSize must leave room for all 3-digit groups. */
export function trainLongContextTokenizer(vocabSize: number, seed: number): BpeModel {
  return trainBpe(tokenizerCorpus(seed), { vocabSize, specialTokens: [EOT] });
}

/** tokenizer_config.json: EOT is BOS (prepended to prompts, as in training) and EOS. */
export function tokenizerConfig(contextLength: number): object {
  return { bos_token: EOT, eos_token: EOT, add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false,
    tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: contextLength };
}

export class LongContextTasks {
  readonly enc: BpeEncoder;
  readonly eot: number;
  readonly tokenizerJson: object;

  constructor(readonly bpe: BpeModel, readonly counting: CountingSpec = DEFAULT_COUNTING, readonly needle: NeedleSpec = DEFAULT_NEEDLE) {
    if (!Number.isInteger(needle.digits) || needle.digits < 1 || needle.digits > 9) throw new RangeError(`needle digits ${needle.digits} must be an integer in [1, 9]`);
    if (needle.values !== 'number' && needle.values !== 'word') throw new RangeError(`needle values ${JSON.stringify(needle.values)} must be "number" or "word"`);
    this.enc = new BpeEncoder(bpe);
    const eot = this.enc.specialId(EOT);
    if (eot === undefined) throw new Error(`the long-context tokenizer has no ${EOT} token`);
    this.eot = eot;
    this.tokenizerJson = toTokenizerJson(bpe);
  }

  get vocabSize(): number { return this.enc.vocabSize; }

  count = (s: string): number => this.enc.encode(s).length;

  /** The text task of `kind` whose BOS + input + answer + EOS (+ `reserve` tokens) fits in `window` tokens. */
  textTask(kind: TaskKind, window: number, seed: number, reserve = 0): TextTask {
    const length = window - 1 - ANSWER_ROOM - reserve;
    const count = this.count;
    switch (kind) {
      case 'needle-single': return needleTask({ seed, length, variant: 'single', valueDigits: this.needle.digits, valueType: this.needle.values, countTokens: count });
      case 'needle-multikey': return needleTask({ seed, length, variant: 'multikey', numNeedles: MULTIKEY_NEEDLES, valueDigits: this.needle.digits, valueType: this.needle.values, countTokens: count });
      case 'needle-multiquery': return needleTask({ seed, length, variant: 'multiquery', numQueries: 2, valueDigits: this.needle.digits, valueType: this.needle.values, countTokens: count });
      case 'copy-digits': return copyTask(seed, length, count, true);
      case 'copy-words': return copyTask(seed, length, count, false);
      case 'most-frequent': case 'most-frequent-name': {
        const m = this.counting.distinctWords;
        const margin = marginForFraction(this.counting.marginFraction, length, m); // nouns and names are one token each
        const vocabulary = kind === 'most-frequent-name' ? NAMES : NOUNS;
        return countingTask({ seed, length, variant: 'most-frequent', distinctWords: m, margin, vocabulary, countTokens: count });
      }
    }
  }

  /** The example as ids. With `extraQuestions` (training), a multikey example goes on after its
   *  answer with the same question about each other needle (its answer + EOS scored too): four
   *  retrievals per haystack instead of one. The first question and answer are exactly the
   *  evaluation's. */
  example(kind: TaskKind, window: number, seed: number, opts: { extraQuestions?: boolean } = {}): TaskExample {
    const extra = opts.extraQuestions === true && kind === 'needle-multikey';
    const task = this.textTask(kind, window, seed, extra ? EXTRA_QA_ROOM * (MULTIKEY_NEEDLES - 1) : 0);
    const input = this.enc.encode(task.input), target = this.enc.encode(task.target);
    const tokens = [this.eot, ...input, ...target, this.eot];
    const answers = Array.from({ length: target.length + 1 }, (_, i) => 1 + input.length + i);
    if (extra) {
      const needles = findNeedles(task.input, this.needle.values);
      const others = new Rng(deriveSeed(seed, 0xa5c)).shuffle(needles.filter((n) => n.value !== task.answers[0]));
      for (const n of others) {
        tokens.push(...this.enc.encode(`\n${needleQuestion(this.needle.values, n.key)}`));
        const v = [...this.enc.encode(` ${n.value}`), this.eot];
        for (let i = 0; i < v.length; i++) answers.push(tokens.length + i);
        tokens.push(...v);
      }
    }
    return { kind, task, tokens: Int32Array.from(tokens), answerPositions: Int32Array.from(answers) };
  }

  /** A kind drawn from `mix` (weights by kind) for example `seed`. */
  static pickKind(mix: Partial<Record<TaskKind, number>>, seed: number): TaskKind {
    const kinds = TASK_KINDS.filter((k) => (mix[k] ?? 0) > 0);
    if (kinds.length === 0) throw new Error('task mix: give at least one task a positive weight');
    const total = kinds.reduce((s, k) => s + mix[k]!, 0);
    let u = new Rng(deriveSeed(seed, 0x6b1d)).float() * total;
    for (const k of kinds) { u -= mix[k]!; if (u < 0) return k; }
    return kinds[kinds.length - 1];
  }
}

const COPY_HEADER = 'Here is a list of words:\n', COPY_QUESTION = '\nRepeat the list:';

/** A run of random digits (Llama-3's split makes it 3-digit tokens with nothing between them, the
 *  plainest induction data) or a list of random nouns, adjectives and 3-digit numbers, after a
 *  random amount of noise filler; the answer repeats the list. The list's length is random too, so
 *  the copy distance varies and only content matching (an induction head), not a fixed offset,
 *  solves it. */
export function copyTask(seed: number, length: number, count: (s: string) => number, digits: boolean): TextTask {
  const rng = new Rng(seed);
  const pool = (): string => {
    if (digits) return String(rng.range(100, 999));
    const u = rng.int(3);
    return u === 0 ? NOUNS[rng.int(NOUNS.length)] : u === 1 ? ADJECTIVES[rng.int(ADJECTIVES.length)] : String(rng.range(100, 999));
  };
  const room = length - count(COPY_HEADER) - count(COPY_QUESTION) - 2;
  const budget = Math.max(4, Math.floor((room / 2) * (0.2 + 0.8 * rng.float())));
  const words: string[] = [];
  for (let used = 0; ;) {
    const w = pool(), c = digits ? 1 : count(' ' + w);
    if (used + c > budget) break;
    words.push(w); used += c;
  }
  const list = words.join(digits ? '' : ' ');
  // Noise filler in front, up to what the two copies leave.
  const fillerRoom = Math.floor((room - 2 * count(' ' + list)) * rng.float());
  const filler: string[] = [];
  for (let used = 0, i = rng.int(NOISE_SENTENCES.length); ; i++) {
    const sentence = NOISE_SENTENCES[i % NOISE_SENTENCES.length], c = count(sentence + ' ');
    if (used + c > fillerRoom) break;
    filler.push(sentence); used += c;
  }
  const prefix = filler.length ? filler.join(' ') + '\n' : '';
  return {
    input: `${prefix}${COPY_HEADER}${list}${COPY_QUESTION}`, target: ' ' + list, answers: [list],
    score: (p) => (p.trim().startsWith(list) ? 1 : 0), meta: { variant: digits ? 'copy-digits' : 'copy-words', words: words.length },
  };
}
