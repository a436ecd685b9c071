// RegBench-style in-context language learning (Akyürek et al. 2024, used by the Memory Mosaics paper,
// PAPERS.md §3): each sequence holds strings of ONE random small DFA, separated by a separator token;
// a model must infer the language from the context to predict a letter the DFA allows next. Training
// sequences come from a fixed pool of training DFAs; evaluation uses held-out DFAs whose LANGUAGES
// differ from every training DFA's (checked by a product-automaton search, not by comparing tables).
//
// A DFA here: states 0 … n−1, start 0, every state accepting, a partial transition table; a missing
// transition is the dead state. So its language is the set of walks from the start, and the letters
// allowed after a prefix are exactly the defined transitions of the state the prefix reaches.
// Token ids: 0 padding (unused), 1 separator, letters 2 … alphabet+1.

import { Rng } from './rng.js';

export const DFA_SEPARATOR = 1;
export const DFA_FIRST_LETTER = 2;

export interface DfaOptions {
  /** Letters in the shared alphabet (each DFA uses a random subset of them). */
  alphabet: number;
  minStates: number;
  maxStates: number;
  /** Fewest letters one DFA uses. */
  minLetters: number;
}

export const REGBENCH_DFA: DfaOptions = { alphabet: 12, minStates: 4, maxStates: 8, minLetters: 4 };

export interface Dfa {
  states: number;
  alphabet: number;
  /** next[state · alphabet + letter] = state, or −1 (dead). Letters are 0-based here. */
  next: Int16Array;
}

/** The vocabulary a model needs for DFAs over `alphabet` letters (padding, separator, letters). */
export const dfaVocabSize = (o: DfaOptions): number => DFA_FIRST_LETTER + o.alphabet;

/** A random DFA: a random letter subset; each state gets a non-empty random subset of those letters,
 *  each going to a uniformly random state. */
export function randomDfa(rng: Rng, o: DfaOptions): Dfa {
  if (!(o.minStates >= 1 && o.maxStates >= o.minStates && o.minLetters >= 1 && o.alphabet >= o.minLetters)) {
    throw new RangeError(`randomDfa: need 1 ≤ minStates ≤ maxStates and 1 ≤ minLetters ≤ alphabet, got ${JSON.stringify(o)}`);
  }
  const states = rng.range(o.minStates, o.maxStates);
  const letters = rng.shuffle(Array.from({ length: o.alphabet }, (_, i) => i)).slice(0, rng.range(o.minLetters, o.alphabet));
  const next = new Int16Array(states * o.alphabet).fill(-1);
  for (let s = 0; s < states; s++) {
    const out = rng.shuffle([...letters]).slice(0, rng.range(1, letters.length));
    for (const a of out) next[s * o.alphabet + a] = rng.int(states);
  }
  return { states, alphabet: o.alphabet, next };
}

/** Whether the DFA accepts a string of 0-based letters (a walk exists). */
export function dfaAccepts(dfa: Dfa, letters: readonly number[]): boolean {
  let s = 0;
  for (const a of letters) {
    if (a < 0 || a >= dfa.alphabet) return false;
    s = dfa.next[s * dfa.alphabet + a];
    if (s < 0) return false;
  }
  return true;
}

/** Whether two DFAs over the same alphabet define the same language: a breadth-first search over
 *  reachable state pairs (−1 = dead); they differ iff some pair has exactly one dead side. */
export function sameLanguage(a: Dfa, b: Dfa): boolean {
  if (a.alphabet !== b.alphabet) return false;
  const A = a.alphabet, seen = new Set<number>([0]), queue: [number, number][] = [[0, 0]];
  while (queue.length > 0) {
    const [p, q] = queue.pop()!;
    for (let x = 0; x < A; x++) {
      const p2 = a.next[p * A + x], q2 = b.next[q * A + x];
      if ((p2 < 0) !== (q2 < 0)) return false;
      if (p2 < 0) continue;
      const key = p2 * (b.states + 1) + q2;
      if (!seen.has(key)) { seen.add(key); queue.push([p2, q2]); }
    }
  }
  return true;
}

/** `count` DFAs from `seed`, pairwise different languages, none equal to a language in `exclude`. */
export function dfaPool(seed: number, count: number, o: DfaOptions, exclude: readonly Dfa[] = []): Dfa[] {
  const rng = new Rng(seed), out: Dfa[] = [];
  for (let tries = 0; out.length < count; tries++) {
    if (tries > 100 * count + 1000) throw new Error(`dfaPool: could not find ${count} distinct languages with ${JSON.stringify(o)}; allow more states or letters`);
    const d = randomDfa(rng, o);
    if (!out.some((x) => sameLanguage(x, d)) && !exclude.some((x) => sameLanguage(x, d))) out.push(d);
  }
  return out;
}

export interface DfaSequence {
  /** length + 1 token ids: strings of the DFA separated by DFA_SEPARATOR (the first token is one). */
  tokens: Int32Array;
  /** state[t]: the DFA state after tokens[0..t] (start after a separator); the letters allowed as
   *  tokens[t+1] are the defined transitions of state[t]. */
  state: Int16Array;
}

/** Strings of 1 … maxStringLength letters, each a random walk from the start (uniform over the
 *  defined transitions, stopping early at a state without any), separated, until length + 1 tokens. */
export function dfaSequence(dfa: Dfa, rng: Rng, length: number, maxStringLength = 10): DfaSequence {
  const tokens = new Int32Array(length + 1), state = new Int16Array(length + 1);
  const A = dfa.alphabet;
  let t = 0;
  tokens[0] = DFA_SEPARATOR;
  const push = (tok: number, s: number) => { if (t < length) { t++; tokens[t] = tok; state[t] = s; } };
  while (t < length) {
    const want = rng.range(1, maxStringLength);
    let s = 0;
    for (let i = 0; i < want && t < length; i++) {
      const out: number[] = [];
      for (let x = 0; x < A; x++) if (dfa.next[s * A + x] >= 0) out.push(x);
      if (out.length === 0) break;
      const x = rng.pick(out);
      s = dfa.next[s * A + x];
      push(DFA_FIRST_LETTER + x, s);
    }
    push(DFA_SEPARATOR, 0);
  }
  return { tokens, state };
}

/** Whether `token` may follow position t of the sequence under its DFA (letters only). */
export function dfaAllows(dfa: Dfa, state: number, token: number): boolean {
  const x = token - DFA_FIRST_LETTER;
  return x >= 0 && x < dfa.alphabet && dfa.next[state * dfa.alphabet + x] >= 0;
}
