// Token-id tasks that need recall from context.
//
// Associative recall (multi-query, as Zoology's MQAR): keys from the lower half of the id range,
// values from the upper half; the sequence is k1 v1 k2 v2 … kn vn, then queries q1 a1 … qm am where
// each q is one of the keys (distinct) and a its value. The answers are the a's.
//
// Induction copy: random tokens in which a segment of distinct tokens appears twice; every token of
// the second occurrence after its first is predictable by looking back at what followed the same
// token in the first occurrence (the induction-head pattern). Filler never uses segment tokens, so
// "what followed the last occurrence of the current token" is always right there.

import { Rng } from './rng.js';
import { idTask, type IdTask } from './synthetic-task.js';

export interface AssociativeRecallOptions {
  seed: number;
  /** Ids used are [firstId, vocabSize). */
  vocabSize: number;
  firstId?: number;
  /** Sequence length (keys/values + queries/answers), even. */
  length: number;
  /** Number of queries (default 1). */
  numQueries?: number;
}

export function associativeRecall(opts: AssociativeRecallOptions): IdTask {
  const first = opts.firstId ?? 0;
  const m = opts.numQueries ?? 1;
  const ids = opts.vocabSize - first;
  const half = Math.floor(ids / 2);
  const n = (opts.length - 2 * m) / 2; // key-value pairs
  if (!Number.isInteger(n) || n < m || m < 1) {
    throw new RangeError(`associativeRecall: length ${opts.length} must be even and hold ≥ numQueries (${m}) pairs plus the queries`);
  }
  if (n > half) throw new RangeError(`associativeRecall: ${n} distinct keys need ${2 * n} ids, only ${ids} in [${first}, ${opts.vocabSize})`);
  const rng = new Rng(opts.seed);
  const keys = rng.distinct(n, half).map((k) => first + k);
  const values = keys.map(() => first + half + rng.int(ids - half));
  const tokens = new Int32Array(opts.length); // (length)
  keys.forEach((k, i) => { tokens[2 * i] = k; tokens[2 * i + 1] = values[i]; });
  const asked = rng.distinct(m, n);
  const answerPositions = new Int32Array(m);
  asked.forEach((j, i) => {
    const p = 2 * n + 2 * i;
    tokens[p] = keys[j]; tokens[p + 1] = values[j]; answerPositions[i] = p + 1;
  });
  return idTask(tokens, answerPositions);
}

export interface InductionOptions {
  seed: number;
  vocabSize: number;
  firstId?: number;
  length: number;
  /** Length of the repeated segment (default length / 4, at least 2). */
  segmentLength?: number;
}

export function inductionCopy(opts: InductionOptions): IdTask {
  const first = opts.firstId ?? 0;
  const ids = opts.vocabSize - first;
  const T = opts.length;
  const L = opts.segmentLength ?? Math.max(2, Math.floor(T / 4));
  if (!Number.isInteger(L) || L < 2 || 2 * L > T) throw new RangeError(`inductionCopy: segmentLength ${L} must be in [2, length / 2 = ${T / 2}]`);
  if (ids - L < 2) throw new RangeError(`inductionCopy: ${L} distinct segment tokens plus filler need more than ${ids} ids`);
  const rng = new Rng(opts.seed);
  const picked = rng.distinct(L, ids);
  const inSegment = new Uint8Array(ids);
  for (const s of picked) inSegment[s] = 1;
  const filler: number[] = [];
  for (let i = 0; i < ids; i++) if (!inSegment[i]) filler.push(first + i);
  const segment = picked.map((s) => first + s);
  const gap = T - 2 * L;
  // First copy at p, second at q = p + L + g; free tokens before, between and after.
  const before = rng.int(gap + 1);
  const between = rng.int(gap - before + 1);
  const p = before, q = before + L + between;
  const tokens = new Int32Array(T); // (length)
  for (let i = 0; i < T; i++) tokens[i] = rng.pick(filler);
  for (let i = 0; i < L; i++) { tokens[p + i] = segment[i]; tokens[q + i] = segment[i]; }
  return idTask(tokens, Int32Array.from({ length: L - 1 }, (_, i) => q + 1 + i));
}
