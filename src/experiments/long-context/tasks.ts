// The synthetic long-context tasks of the long-context model, as token ids, and its tokenizer.
//   needle-single     one "special magic number" in RULER's noise haystack, asked at the end
//   needle-multikey   four needles with different keys, one asked (the others distract)
//   needle-multiquery two needles asked at once ("… for A and B?" → " v1, v2")
//   most-frequent     a list of `distinctWords` nouns, one planted `margin` times more often than
//                     the runner-up; "Which word appears most often?" → the word
// Generators are data/synthetic-needle.ts and data/synthetic-count.ts, sized by the real BPE token
// count so that BOS + input + answer + EOS fills a window of exactly the asked length or less.
// Needle values have 6 digits: the tokenizer holds every 3-digit string, so a value is two tokens
// (" " then "408", "112" by Llama-3's digit split) and chance is 1 in 900 000.
//
// Tokenizer: a byte-level BPE trained on task text plus every number 000–999, so each key word,
// noun and 3-digit group is one token; <|endoftext|> is BOS (prepended to prompts) and EOS.

import { needleTask, NOISE_SENTENCES } from '../../data/synthetic-needle.js';
import { countingTask } from '../../data/synthetic-count.js';
import type { TextTask } from '../../data/synthetic-task.js';
import { ADJECTIVES, NOUNS } from '../../data/synthetic-words.js';
import { trainBpe, toTokenizerJson, type BpeModel } from '../../data/bpe-trainer.js';
import { BpeEncoder } from '../../data/bpe-encoder.js';
import { deriveSeed, Rng } from '../../data/rng.js';

export const EOT = '<|endoftext|>';
export type TaskKind = 'needle-single' | 'needle-multikey' | 'needle-multiquery' | 'most-frequent';
export const TASK_KINDS: readonly TaskKind[] = ['needle-single', 'needle-multikey', 'needle-multiquery', 'most-frequent'];

/** Aggregation difficulty: distinct words in the list; margin = ceil(marginFraction · list/distinct). */
export interface CountingSpec { distinctWords: number; marginFraction: number }
export const DEFAULT_COUNTING: CountingSpec = { distinctWords: 10, marginFraction: 0.5 };

/** Tokens an answer may take, with EOS (" 408112, 553201" + EOS is 8). */
const ANSWER_ROOM = 9;

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
  }
  const words = [...ADJECTIVES.map((a) => `${a}-${NOUNS[0]} ${a}`), ...NOUNS.map((n) => `${ADJECTIVES[0]}-${n} ${n}`)];
  for (let r = 0; r < 6; r++) docs.push(words.join(' '), NOISE_SENTENCES.join(' '));
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

  constructor(readonly bpe: BpeModel, readonly counting: CountingSpec = DEFAULT_COUNTING) {
    this.enc = new BpeEncoder(bpe);
    const eot = this.enc.specialId(EOT);
    if (eot === undefined) throw new Error(`the long-context tokenizer has no ${EOT} token`);
    this.eot = eot;
    this.tokenizerJson = toTokenizerJson(bpe);
  }

  get vocabSize(): number { return this.enc.vocabSize; }

  count = (s: string): number => this.enc.encode(s).length;

  /** The text task of `kind` whose BOS + input + answer + EOS fits in `window` tokens. */
  textTask(kind: TaskKind, window: number, seed: number): TextTask {
    const length = window - 1 - ANSWER_ROOM;
    const count = this.count;
    switch (kind) {
      case 'needle-single': return needleTask({ seed, length, variant: 'single', valueDigits: 6, countTokens: count });
      case 'needle-multikey': return needleTask({ seed, length, variant: 'multikey', numNeedles: 4, valueDigits: 6, countTokens: count });
      case 'needle-multiquery': return needleTask({ seed, length, variant: 'multiquery', numQueries: 2, valueDigits: 6, countTokens: count });
      case 'most-frequent': {
        const m = this.counting.distinctWords;
        const listWords = length - 30; // nouns are one token each
        const margin = Math.max(2, Math.ceil((this.counting.marginFraction * listWords) / m));
        return countingTask({ seed, length, variant: 'most-frequent', distinctWords: m, margin, countTokens: count });
      }
    }
  }

  /** The example as ids. */
  example(kind: TaskKind, window: number, seed: number): TaskExample {
    const task = this.textTask(kind, window, seed);
    const input = this.enc.encode(task.input), target = this.enc.encode(task.target);
    const tokens = Int32Array.from([this.eot, ...input, ...target, this.eot]);
    const first = 1 + input.length;
    return { kind, task, tokens, answerPositions: Int32Array.from({ length: target.length + 1 }, (_, i) => first + i) };
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
