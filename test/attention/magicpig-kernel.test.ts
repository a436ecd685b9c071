// The SIMD MagicPIG decode kernel (kernels/sparse.ts) against its plain-TypeScript twin
// (src/attention/reference-sparse.ts) on hand-made random CSR tables, so the retrieval rule is
// exercised on bucket contents no hash would produce: the same sampled set (count and ids) for every
// query head, and the same output. Covers main + delta tables, a hashed range that starts and ends
// off a 32-id boundary, head dims that are not multiples of 8, K·L not a multiple of 4, sample
// counts over several softmax chunks, head ranges split across calls, and hit bits left dirty.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Arena } from '../../src/runtime/arena.js';
import { createReferenceSparseKernels } from '../../src/attention/reference-sparse.js';
import { sparseKernels } from '../../src/attention/sparse-kernels.js';
import { DESC, DESC_WORDS, MAGICPIG_CHUNK, counterStride } from '../../src/attention/magicpig-desc.js';
import { LOGU_STEPS, gaussian, logUTable, rng } from '../../src/attention/lsh-math.js';
import { f32ToF16 } from '../../src/kernels/reference.js';

interface Case { H: number; Hkv: number; D: number; K: number; L: number; cap: number; start: number; mainEnd: number; hashedEnd: number; f16: boolean; dense: number }

/** One descriptor over random rows and random tables; returns the arena, desc and a few pointers. */
function setup(c: Case, seed: number) {
  const { H, Hkv, D, K, L, cap, f16 } = c, NB = 1 << K, es = f16 ? 2 : 4, row = Hkv * D * es, dcap = Math.max(1, c.hashedEnd - c.mainEnd);
  const arena = Arena.create(64 << 20, { kernels: 'wasm', label: 'magicpig kernel test' });
  const g = gaussian(rng(seed)), u = rng(seed + 7);
  const kp = arena.alloc(cap * row), vp = arena.alloc(cap * row);
  for (const p of [kp, vp]) {
    const n = cap * Hkv * D, x = Float32Array.from({ length: n }, () => g());
    if (f16) arena.u16(p, n).set(Array.from(x, f32ToF16)); else arena.f32(p, n).set(x);
  }
  const R = arena.alloc(Hkv * K * L * D * 4), mu = arena.alloc(Hkv * D * 4), knorm = arena.alloc(Hkv * cap * 4);
  arena.f32(R, Hkv * K * L * D).set(Float32Array.from({ length: Hkv * K * L * D }, () => g()));
  arena.f32(mu, Hkv * D).set(Float32Array.from({ length: Hkv * D }, () => 0.3 * g()));
  arena.f32(knorm, Hkv * cap).set(Float32Array.from({ length: Hkv * cap }, () => 0.5 + 8 * u()));
  /** CSR of ids [a, b) with a random bucket per (table, id). */
  const csr = (a: number, b: number, stride: number) => {
    const off = arena.alloc(Hkv * L * (NB + 1) * 4), ids = arena.alloc(Hkv * L * stride * 4);
    for (let t = 0; t < Hkv * L; t++) {
      const bucket = Array.from({ length: b - a }, () => Math.floor(u() * NB));
      const o = arena.i32(off + t * (NB + 1) * 4, NB + 1), list = arena.i32(ids + t * stride * 4, stride);
      for (const x of bucket) o[x + 1]++;
      for (let x = 0; x < NB; x++) o[x + 1] += o[x]!;
      const fill = o.slice();
      bucket.forEach((x, i) => { list[fill[x]!++] = a + i; });
    }
    return { off, ids };
  };
  const main = csr(c.start, c.mainEnd, cap), delta = csr(c.mainEnd, c.hashedEnd, dcap);
  const logU = arena.alloc((LOGU_STEPS + 1) * 4);
  arena.f32(logU, LOGU_STEPS + 1).set(logUTable(K, L, 1e-4));
  const denseIds = arena.alloc(Math.max(1, c.dense) * 4);
  arena.i32(denseIds, c.dense).set(Array.from({ length: c.dense }, (_, i) => (i < 2 ? i : c.hashedEnd + i - 2)));
  const q = arena.alloc(H * D * 4), out = arena.alloc(H * D * 4), stats = arena.alloc(H * 4);
  arena.f32(q, H * D).set(Float32Array.from({ length: H * D }, () => g()));
  const counters = arena.alloc(H * counterStride(cap)), lists = arena.alloc(H * cap * 4);
  const desc = arena.alloc(DESC_WORDS * 4), w = arena.i32(desc, DESC_WORDS);
  const set: [number, number][] = [
    [DESC.Q, q], [DESC.OUT, out], [DESC.K, kp], [DESC.V, vp], [DESC.F16, f16 ? 1 : 0], [DESC.ROW, row], [DESC.H, H], [DESC.HKV, Hkv],
    [DESC.D, D], [DESC.KBITS, K], [DESC.L, L], [DESC.R, R], [DESC.MU, mu], [DESC.KNORM, knorm], [DESC.CAP, cap],
    [DESC.MAIN_OFF, main.off], [DESC.MAIN_IDS, main.ids], [DESC.MAIN_STRIDE, cap], [DESC.DELTA_OFF, delta.off], [DESC.DELTA_IDS, delta.ids],
    [DESC.DELTA_STRIDE, dcap], [DESC.COUNTERS, counters], [DESC.LISTS, lists], [DESC.LOGU, logU], [DESC.LOGU_N, LOGU_STEPS],
    [DESC.DENSE_IDS, denseIds], [DESC.DENSE_N, c.dense], [DESC.STATS, stats], [DESC.QB, arena.alloc(H * L * 4)],
    [DESC.PARTS, arena.alloc(H * 2 * (D + 4) * 4)], [DESC.DELTA_N, c.hashedEnd - c.mainEnd], [DESC.MAIN_N, c.mainEnd - c.start],
    [DESC.SCRATCH, arena.alloc(H * MAGICPIG_CHUNK * 4)], [DESC.ID_LO, c.start], [DESC.ID_HI, c.hashedEnd],
  ];
  for (const [i, v] of set) w[i] = v;
  new Float32Array(arena.memory.buffer, desc, DESC_WORDS)[DESC.SCALE] = 1 / Math.sqrt(D);
  return { arena, desc, out, stats, lists, counters };
}

/** Runs one kernel over the heads (in the given splits); returns outputs, counts and sorted sets. */
function run(s: ReturnType<typeof setup>, c: Case, decode: (desc: number, h0: number, h1: number) => void, splits: number[]) {
  for (let i = 0; i + 1 < splits.length; i++) decode(s.desc, splits[i]!, splits[i + 1]!);
  const counts = Array.from(s.arena.i32(s.stats, c.H));
  const sets = counts.map((n, h) => Array.from(s.arena.i32(s.lists + h * c.cap * 4, n)).sort((a, b) => a - b));
  return { out: s.arena.f32(s.out, c.H * c.D).slice(), counts, sets };
}

const base: Case = { H: 6, Hkv: 2, D: 12, K: 3, L: 7, cap: 700, start: 37, mainEnd: 500, hashedEnd: 613, f16: false, dense: 9 };
const cases: [string, Case][] = [
  ['f32, D=12, K·L=21, main + delta', base],
  ['f16, D=64, K·L=24, main + delta', { ...base, D: 64, K: 3, L: 8, f16: true, start: 4, hashedEnd: 690, cap: 760 }],
  ['f16, D=20, main only, no dense ids', { ...base, D: 20, f16: true, mainEnd: 613, dense: 0 }],
  ['f32, D=8, K=2 L=9 (most keys sampled, many chunks)', { ...base, D: 8, K: 2, L: 9, H: 4, Hkv: 4 }],
];

describe('magicpig decode kernel equals its TypeScript twin on random tables', () => {
  for (const [name, c] of cases) {
    test(name, () => {
      const s = setup(c, 17 + c.D);
      const ref = run(s, c, createReferenceSparseKernels(s.arena.memory).magicpigDecode, [0, c.H]);
      const wasm = sparseKernels('wasm', s.arena.memory);
      s.arena.u8(s.counters, c.H * counterStride(c.cap)).fill(0xff);   // the kernel must not need clean hit bits
      s.arena.f32(s.out, c.H * c.D).fill(NaN);
      const simd = run(s, c, wasm.magicpigDecode, [0, 1, c.H]);
      assert.deepEqual(simd.counts, ref.counts, 'sampled count per head');
      for (let h = 0; h < c.H; h++) assert.deepEqual(simd.sets[h], ref.sets[h], `sampled ids of head ${h}`);
      assert.ok(ref.counts.every((n) => n > 0) && ref.counts.some((n) => n > MAGICPIG_CHUNK), `counts ${ref.counts}: every head samples, some over a chunk`);
      let err = 0;
      for (let i = 0; i < simd.out.length; i++) err = Math.max(err, Math.abs(simd.out[i]! - ref.out[i]!));
      assert.ok(err < 2e-5, `max |simd − twin| = ${err}`);
      const again = run(s, c, wasm.magicpigDecode, [0, c.H]);            // state left behind changes nothing
      assert.deepEqual(again.counts, simd.counts);
      assert.deepEqual(Array.from(again.out), Array.from(simd.out));
    });
  }
});
