// The evaluation tasks: sized to the asked token count (±5%) by the model's tokenizer, the answer
// present in the context, and each generator's answer re-derived from its prompt text by an
// independent recount (cwe, fwe) or chain walk (vt); scorers exact.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { loadModel } from '../../src/models/load.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { makeTask, parseTaskSpec, withProfile, TASK_NAMES } from '../../src/eval/tasks.js';
import { commonWordsTask } from '../../src/eval/cwe.js';
import { frequentWordsTask } from '../../src/eval/fwe.js';
import { variableTrackingTask } from '../../src/eval/vt.js';

let dir: string, tok: Tokenizer;
const count = (s: string) => tok.encode(s, { addSpecialTokens: false }).length;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-eval-tasks-'));
  const ck = writeTestCheckpoint(dir, 'llama3-tiny', { formats: ['hf'] });
  const m = await loadModel(ck.hfDir!, { kernels: 'reference', threads: 1, contextLength: 8 });
  tok = m.tokenizer;
  m.model.dispose();
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('every task fills the asked length within 5% and its answers occur in the context', () => {
  for (const length of [600, 1500]) {
    for (const name of TASK_NAMES) {
      for (const index of [0, 1]) {
        const t = makeTask(parseTaskSpec(name), length, count, 7, index);
        const n = count(t.input);
        assert.ok(n <= length && n >= 0.95 * length, `${name} @${length} #${index}: ${n} tokens`);
        if (name !== 'count') for (const a of t.answers) assert.ok(t.input.includes(a), `${name}: answer ${a} not in the prompt`);
        assert.equal(t.score(t.target), 1, `${name}: its own target scores 1`);
      }
    }
  }
});

test('tasks are deterministic in (seed, index) and differ across indices', () => {
  const a = makeTask(parseTaskSpec('vt'), 700, count, 3, 0), b = makeTask(parseTaskSpec('vt'), 700, count, 3, 0);
  const c = makeTask(parseTaskSpec('vt'), 700, count, 3, 1);
  assert.equal(a.input, b.input);
  assert.notEqual(a.input, c.input);
});

test('cwe: the answers are exactly the numCommon most frequent words of the list (recount)', () => {
  const t = commonWordsTask({ seed: 5, length: 1500, countTokens: count, numCommon: 4 });
  const list = [...t.input.matchAll(/\d+\. (\p{L}+)/gu)].map((m) => m[1]);
  const tally = new Map<string, number>();
  for (const w of list) tally.set(w, (tally.get(w) ?? 0) + 1);
  const ranked = [...tally.entries()].sort((x, y) => y[1] - x[1]);
  assert.deepEqual(new Set(ranked.slice(0, 4).map((e) => e[0])), new Set(t.answers));
  assert.ok(ranked[3][1] > ranked[4][1], 'the 4th common word occurs more often than any other word');
  // numbering runs 1..n without gaps
  const nums = [...t.input.matchAll(/(\d+)\. \p{L}/gu)].map((m) => Number(m[1]));
  assert.deepEqual(nums, nums.map((_, i) => i + 1));
});

test('fwe: the answers are the ranks 2-4 of the coded text, the noise word ranks first (recount)', () => {
  const t = frequentWordsTask({ seed: 9, length: 1500, countTokens: count });
  const text = t.input.slice(t.input.indexOf('coded words. ') + 'coded words. '.length, t.input.indexOf('\nQuestion:'));
  const tally = new Map<string, number>();
  for (const w of text.split(' ')) tally.set(w, (tally.get(w) ?? 0) + 1);
  const ranked = [...tally.entries()].sort((x, y) => y[1] - x[1]);
  assert.equal(ranked[0][0], '....');
  assert.deepEqual(new Set(ranked.slice(1, 4).map((e) => e[0])), new Set(t.answers));
  assert.ok(ranked[3][1] > ranked[4][1]);
});

test('vt: walking the assignments in the text finds exactly the answer variables', () => {
  const t = variableTrackingTask({ seed: 11, length: 1200, countTokens: count, numChains: 3, numHops: 3 });
  const value = new Map<string, string>();
  for (const m of t.input.matchAll(/VAR ([A-Z]{5}) = (VAR ([A-Z]{5})|\d+)\./g)) {
    const src = m[3] !== undefined ? value.get(m[3]) : m[2];
    assert.ok(src !== undefined, `VAR ${m[1]} refers to ${m[3]} before it is assigned`);
    value.set(m[1], src);
  }
  const asked = t.input.match(/assigned the value (\d+) in the text/)![1];
  assert.deepEqual([...value.entries()].filter(([, v]) => v === asked).map(([k]) => k), t.answers);
  assert.equal(value.size, 12);
});

test('scorers: oracle answer 1, wrong 0, partial credit, whole words only', () => {
  const t = makeTask(parseTaskSpec('niah_multivalue'), 600, count, 1, 0);
  assert.equal(t.score(t.answers.join(' and ')), 1);
  assert.equal(t.score('no idea'), 0);
  assert.equal(t.score(t.answers[0]), 1 / t.answers.length);
  assert.equal(t.score(t.answers[0] + '9'), 0, 'a longer number does not contain the answer');
  const v = makeTask(parseTaskSpec('vt'), 600, count, 1, 0);
  assert.equal(v.score(` ${v.answers.join(', ')}.`), 1);
  assert.equal(v.score(v.answers.slice(0, 2).join(' ')), 2 / v.answers.length);
  const c = makeTask(parseTaskSpec('cwe:numCommon=3,freqCommon=12'), 600, count, 1, 0);
  assert.equal(c.answers.length, 3);
  assert.equal(c.score(c.answers.join(', ')), 1);
  assert.equal(c.score(''), 0);
});

test('task options and profiles', () => {
  const p = withProfile(parseTaskSpec('niah_single'), 'long-context');
  assert.equal(p.options.words, 1);
  const t = makeTask(p, 400, count, 1, 0);
  assert.match(t.answers[0], /^[A-Z][a-z]+$/, 'word values');
  assert.match(t.input, /The special magic word for [a-z]+-[a-z]+ is [A-Z][a-z]+\./);
  assert.equal(makeTask(withProfile(parseTaskSpec('niah_single:words=0,valueDigits=4'), 'long-context'), 400, count, 1, 0).answers[0].length, 4, 'explicit options win');
  assert.equal(makeTask(parseTaskSpec('niah_single'), 400, count, 1, 0).answers[0].length, 7, 'RULER: 7-digit numbers');
  assert.throws(() => parseTaskSpec('cwe:numNeedles=3'), /no option "numNeedles"/);
  assert.throws(() => parseTaskSpec('ruler_magic'), /unknown task/);
  assert.throws(() => withProfile(parseTaskSpec('cwe'), 'nope'), /unknown profile/);
});

test('profileForModel picks the profile matching what the model folder says it was trained on', async () => {
  const { profileForModel, TASK_OPTIONS_FILE } = await import('../../src/eval/tasks.js');
  const { writeFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  assert.equal(profileForModel(fileURLToPath(new URL('../../../models/long-context', import.meta.url))).profile, 'long-context');
  assert.equal(profileForModel(fileURLToPath(new URL('../../../models/default', import.meta.url))).profile, 'ruler');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-profile-'));
  try {
    writeFileSync(join(dir, TASK_OPTIONS_FILE), JSON.stringify({ counting: { distinctWords: 20, marginFraction: 0.5 }, needle: { values: 'word', digits: 6 } }));
    assert.throws(() => profileForModel(dir), /records training options that no profile has/);
    writeFileSync(join(dir, TASK_OPTIONS_FILE), '{ not json');
    assert.throws(() => profileForModel(dir), /cannot read/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
