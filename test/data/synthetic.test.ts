// Synthetic tasks: same seed same example; an oracle that solves each task from its input scores 1;
// a random guesser scores near chance; text tasks fit their token budget under a trained BPE.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  associativeRecall, countingTask, encodeTextTask, inductionCopy, needleTask, type IdTask, type TextTask,
} from '../../src/data/synthetic.js';
import { Rng } from '../../src/data/rng.js';
import { NAMES } from '../../src/data/synthetic-words.js';
import { trainBpe } from '../../src/data/bpe-trainer.js';
import { BpeEncoder } from '../../src/data/bpe-encoder.js';
import { joinDocuments, loadMobyDick } from '../../src/data/corpora.js';

/** Looks back for the latest earlier occurrence of the token before each answer and copies its successor. */
function inductionOracle(task: IdTask): number[] {
  return Array.from(task.answerPositions, (p) => {
    const cur = task.tokens[p - 1];
    for (let j = p - 2; j >= 0; j--) if (task.tokens[j] === cur) return task.tokens[j + 1];
    return -1;
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('id tasks: deterministic, oracle scores 1, random guessing is near chance', () => {
  const V = 64;
  const makers: [string, (seed: number) => IdTask, number][] = [
    ['recall', (seed) => associativeRecall({ seed, vocabSize: V, length: 40, numQueries: 4 }), 2 / V],
    ['recall-long', (seed) => associativeRecall({ seed, vocabSize: 8192, firstId: 1, length: 4096, numQueries: 8 }), 2 / 8191],
    ['induction', (seed) => inductionCopy({ seed, vocabSize: V, length: 128, segmentLength: 20 }), 1 / V],
    ['induction-long', (seed) => inductionCopy({ seed, vocabSize: 512, length: 4096, segmentLength: 256 }), 1 / 512],
  ];
  for (const [name, make, chance] of makers) {
    assert.deepEqual(make(7).tokens, make(7).tokens, name);
    assert.notDeepEqual(make(7).tokens, make(8).tokens, name);
    const rng = new Rng(99);
    const oracle: number[] = [], random: number[] = [];
    for (let seed = 0; seed < 50; seed++) {
      const task = make(seed);
      assert.deepEqual(Array.from(task.target), Array.from(task.answerPositions, (p) => task.tokens[p]));
      assert.equal(task.input.length, task.answerPositions[0]);
      oracle.push(task.score(inductionOracle(task)));
      random.push(task.score(Array.from(task.target, () => rng.int(V))));
    }
    assert.equal(mean(oracle), 1, name);
    assert.ok(mean(random) < chance * 5 + 0.02, `${name}: random scores ${mean(random)}`);
  }
  const r = associativeRecall({ seed: 1, vocabSize: 64, length: 40 });
  assert.ok(r.tokens.every((id) => id >= 0 && id < 64));
  assert.throws(() => associativeRecall({ seed: 1, vocabSize: 16, length: 40 }), /distinct keys/);
  assert.throws(() => inductionCopy({ seed: 1, vocabSize: 8, length: 64, segmentLength: 7 }), /ids/);
});

/** Reads the keys asked in the question and collects their needles' values in text order. */
function needleOracle(task: TextTask): string {
  const q = task.input.slice(task.input.lastIndexOf('Question:'));
  const keys = [...q.matchAll(/([a-z]+-[a-z]+)/g)].map((m) => m[1]).filter((k, i, a) => a.indexOf(k) === i);
  const values: string[] = [];
  for (const k of keys) for (const m of task.input.matchAll(new RegExp(`The special magic (?:number|word) for ${k} is (\\w+)\\.`, 'g'))) values.push(m[1]);
  return ' ' + values.join(', ');
}

function countOracle(task: TextTask): string {
  const list = task.input.split('\n')[1].split(' ');
  const asked = task.input.match(/the word "([a-z]+)"/);
  if (asked) return ' ' + list.filter((w) => w === asked[1]).length;
  const tally = new Map<string, number>();
  for (const w of list) tally.set(w, (tally.get(w) ?? 0) + 1);
  return ' ' + [...tally].sort((a, b) => b[1] - a[1])[0][0];
}

const docs = loadMobyDick();
let enc: BpeEncoder | undefined;
const encoder = () => (enc ??= new BpeEncoder(trainBpe(docs.slice(0, 40).map((d) => d.text), { vocabSize: 2048 })));

test('needle tasks: oracle reads the needle, random numbers miss, lengths fit the BPE budget', () => {
  const haystack = joinDocuments(docs.slice(50, 60), '\n');
  const count = (s: string) => encoder().encode(s).length;
  for (const variant of ['single', 'multikey', 'multivalue', 'multiquery'] as const) {
    const a = needleTask({ seed: 3, length: 512, variant, haystack, countTokens: count });
    assert.deepEqual(a, { ...needleTask({ seed: 3, length: 512, variant, haystack, countTokens: count }), score: a.score });
    const rng = new Rng(5);
    const oracle: number[] = [], random: number[] = [];
    for (let seed = 0; seed < 20; seed++) {
      const task = needleTask({ seed, length: 256, variant, haystack, countTokens: count });
      assert.equal(needleOracle(task), task.target, variant);
      oracle.push(task.score(needleOracle(task)));
      random.push(task.score(' ' + task.answers.map(() => String(rng.range(1e6, 1e7 - 1))).join(', ')));
      assert.ok(task.meta.tokens as number <= 256 && (task.meta.tokens as number) > 200, `${variant} ${task.meta.tokens} tokens`);
    }
    assert.equal(mean(oracle), 1, variant);
    assert.equal(mean(random), 0, variant);
  }
  for (const length of [128, 4096]) {
    const task = needleTask({ seed: 11, length, haystack, depth: 0.5, countTokens: count });
    const n = count(task.input);
    assert.ok(n <= length && n > 0.85 * length, `length ${length}: ${n} tokens`);
    const at = task.input.indexOf('The special magic number');
    assert.ok(Math.abs(at / task.input.length - 0.5) < 0.1, `needle at ${at} of ${task.input.length}`);
  }
  // Default haystack (RULER noise) and ids through the tokenizer.
  const noise = needleTask({ seed: 1, length: 300 });
  assert.match(noise.input, /^(The grass is green\.|The sky is blue\.|The sun is yellow\.|Here we go\.|There and back again\.)/);
  const ids = encodeTextTask(noise, (s) => encoder().encode(s));
  assert.equal(encoder().decode(Array.from(ids.tokens)), noise.input + noise.target);
  assert.equal(encoder().decode(Array.from(ids.target)), noise.target);
  assert.equal(ids.score(ids.target), 1);
});

test('needle tasks with word values: one distinct name per needle, the only names in the context, scored as words', () => {
  for (const variant of ['single', 'multikey', 'multivalue', 'multiquery'] as const) {
    for (let seed = 0; seed < 10; seed++) {
      const task = needleTask({ seed, length: 300, variant, valueType: 'word' });
      assert.equal(needleOracle(task), task.target, variant);
      assert.equal(task.score(needleOracle(task)), 1);
      const names = [...task.input.matchAll(/The special magic word for [a-z]+-[a-z]+ is ([A-Z][a-z]+)\./g)].map((m) => m[1]);
      assert.ok(names.every((n) => NAMES.includes(n)), names.join());
      assert.equal(new Set(names).size, names.length, 'distinct values');
      const everyName = NAMES.filter((n) => new RegExp(`\\b${n}\\b`).test(task.input.replace(/Question:[^]*$/, '')));
      assert.deepEqual(everyName.sort(), [...names].sort(), 'no other name in the haystack');
      assert.match(task.input, /Question: What (is|are)( all)? the special magic words? for/);
      const wrong = NAMES.find((n) => !names.includes(n))!;
      assert.equal(task.score(' ' + wrong), 0);
    }
  }
  // number values are unchanged by the option's existence (same stream)
  assert.deepEqual(needleTask({ seed: 4, length: 200 }).input, needleTask({ seed: 4, length: 200, valueType: 'number' }).input);
  assert.throws(() => needleTask({ seed: 1, length: 300, valueType: 'uuid' as 'word' }), /valueType "uuid" must be "number" or "word"/);
  assert.throws(() => needleTask({ seed: 1, length: 9000, variant: 'multikey', numNeedles: 97, valueType: 'word' }), /97 word values need more than the 96 names/);
});

test('counting tasks: planted word is the strict maximum, counts are exact, random guessing is near chance', () => {
  for (const variant of ['most-frequent', 'count'] as const) {
    const a = countingTask({ seed: 4, length: 300, variant });
    assert.equal(a.input, countingTask({ seed: 4, length: 300, variant }).input);
    assert.notEqual(a.input, countingTask({ seed: 5, length: 300, variant }).input);
    const rng = new Rng(6);
    const oracle: number[] = [], random: number[] = [];
    for (let seed = 0; seed < 30; seed++) {
      const task = countingTask({ seed, length: 400, variant });
      assert.equal(countOracle(task), task.target);
      oracle.push(task.score(countOracle(task)));
      const list = task.input.split('\n')[1].split(' ');
      random.push(task.score(variant === 'count' ? ' ' + rng.int(Math.floor(2 * list.length / 20) + 1) : ' ' + rng.pick(list)));
      assert.ok((task.meta.tokens as number) <= 400);
      if (variant === 'most-frequent') {
        const tally = new Map<string, number>();
        for (const w of list) tally.set(w, (tally.get(w) ?? 0) + 1);
        const sorted = [...tally.values()].sort((x, y) => y - x);
        assert.equal(sorted[0] - sorted[1], 2); // margin
      }
    }
    assert.equal(mean(oracle), 1, variant);
    assert.ok(mean(random) < 0.25, `${variant}: random scores ${mean(random)}`);
  }
  const long = countingTask({ seed: 1, length: 4096, countTokens: (s) => encoder().encode(s).length });
  assert.ok((long.meta.tokens as number) <= 4096 && (long.meta.tokens as number) > 3800, `${long.meta.tokens}`);
  assert.equal(long.score(' ' + long.answers[0] + ' is the answer'), 1);
  assert.equal(long.score(' nothing'), 0);
});

test('counting over another vocabulary (first names): list drawn from it, planted name is the strict maximum, case-insensitive score', () => {
  for (let seed = 0; seed < 10; seed++) {
    const task = countingTask({ seed, length: 300, distinctWords: 10, margin: 3, vocabulary: NAMES });
    const list = task.input.split('\n')[1].split(' ');
    assert.ok(list.every((w) => NAMES.includes(w)), 'names only');
    assert.equal(new Set(list).size, 10);
    const tally = new Map<string, number>();
    for (const w of list) tally.set(w, (tally.get(w) ?? 0) + 1);
    const sorted = [...tally].sort((x, y) => y[1] - x[1]);
    assert.equal(sorted[0][0], task.answers[0]);
    assert.equal(sorted[0][1] - sorted[1][1], 3);
    assert.equal(task.score(` ${task.answers[0]}`), 1);
    assert.equal(task.score(` ${task.answers[0].toLowerCase()}`), 1);
    assert.equal(task.score(` ${sorted[1][0]}`), 0);
  }
  assert.throws(() => countingTask({ seed: 1, length: 300, distinctWords: 5, vocabulary: ['a', 'b'] }), /distinctWords 5 must be in \[2, 2\]/);
});
