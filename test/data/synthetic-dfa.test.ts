// The RegBench-style DFA generator: sequences are strings of their DFA's language, the recorded
// states give exactly the allowed next letters, language equality is decided correctly, and the
// held-out pool's languages are never a training language.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/data/rng.js';
import {
  DFA_FIRST_LETTER, DFA_SEPARATOR, REGBENCH_DFA, dfaAccepts, dfaAllows, dfaPool, dfaSequence, randomDfa, sameLanguage, type Dfa,
} from '../../src/data/synthetic-dfa.js';

/** Every string of length ≤ n over the alphabet that the DFA accepts (brute force). */
function language(d: Dfa, n: number): Set<string> {
  const out = new Set<string>([''] );
  let frontier: number[][] = [[]];
  for (let len = 1; len <= n; len++) {
    const next: number[][] = [];
    for (const w of frontier) for (let x = 0; x < d.alphabet; x++) { const v = [...w, x]; if (dfaAccepts(d, v)) { next.push(v); out.add(v.join(',')); } }
    frontier = next;
  }
  return out;
}

test('sequences are separated strings of the DFA; state[t] allows exactly the letters the DFA allows next', () => {
  const rng = new Rng(3);
  for (let k = 0; k < 20; k++) {
    const d = randomDfa(rng, REGBENCH_DFA);
    const s = dfaSequence(d, rng, 200);
    assert.equal(s.tokens.length, 201);
    assert.equal(s.tokens[0], DFA_SEPARATOR);
    let cur: number[] = [];
    for (let t = 1; t < s.tokens.length; t++) {
      const tok = s.tokens[t];
      assert.ok(tok === DFA_SEPARATOR || (tok >= DFA_FIRST_LETTER && tok < DFA_FIRST_LETTER + d.alphabet), `token ${tok}`);
      if (tok === DFA_SEPARATOR) { assert.ok(cur.length > 0, 'no empty strings'); cur = []; } else {
        assert.ok(dfaAllows(d, s.state[t - 1], tok), 'each letter is allowed by the state before it');
        cur.push(tok - DFA_FIRST_LETTER);
        assert.ok(dfaAccepts(d, cur), 'every string (and prefix) is in the language');
      }
      // state[t] is the state after the current prefix: the letters it allows are the prefix's continuations.
      for (let x = 0; x < d.alphabet; x++) assert.equal(dfaAllows(d, s.state[t], DFA_FIRST_LETTER + x), dfaAccepts(d, [...cur, x]));
    }
  }
});

test('sameLanguage agrees with brute-force enumeration of short strings; renumbered states are the same language', () => {
  const rng = new Rng(7);
  const ds = Array.from({ length: 30 }, () => randomDfa(rng, { alphabet: 3, minStates: 1, maxStates: 3, minLetters: 1 }));
  let equalPairs = 0, differentPairs = 0;
  for (let i = 0; i < ds.length; i++) {
    for (let j = i + 1; j < ds.length; j++) {
      const brute = [...language(ds[i], 7)].sort().join('|') === [...language(ds[j], 7)].sort().join('|');
      assert.equal(sameLanguage(ds[i], ds[j]), brute, `pair ${i}, ${j}`);
      if (brute) equalPairs++; else differentPairs++;
    }
  }
  assert.ok(equalPairs > 0 && differentPairs > 0, `both outcomes exercised (${equalPairs} equal, ${differentPairs} different)`);
  // Swap states 1 and 2 of a DFA: another table, the same language.
  const d = randomDfa(new Rng(1), { alphabet: 4, minStates: 3, maxStates: 3, minLetters: 4 });
  const perm = [0, 2, 1], A = d.alphabet, next = new Int16Array(d.next.length);
  for (let s = 0; s < 3; s++) for (let x = 0; x < A; x++) { const t = d.next[s * A + x]; next[perm[s] * A + x] = t < 0 ? -1 : perm[t]; }
  assert.ok(sameLanguage(d, { ...d, next }));
});

test('pools: distinct languages within a pool; held-out languages are never training languages', () => {
  const train = dfaPool(11, 200, REGBENCH_DFA);
  const held = dfaPool(12, 50, REGBENCH_DFA, train);
  for (let i = 0; i < train.length; i++) for (let j = i + 1; j < train.length; j++) assert.ok(!sameLanguage(train[i], train[j]));
  for (const h of held) for (const t of train) assert.ok(!sameLanguage(h, t));
  // A pool asked to exclude a language it would otherwise draw skips it.
  const first = dfaPool(13, 1, REGBENCH_DFA)[0];
  assert.ok(!sameLanguage(dfaPool(13, 1, REGBENCH_DFA, [first])[0], first));
  assert.throws(() => dfaPool(1, 10, { alphabet: 1, minStates: 1, maxStates: 1, minLetters: 1 }), /could not find 10 distinct languages/);
});
