// LshTables.build (SIMD kernel with its i16 filter, 2 threads) against the plain construction of
// PAPERS.md §1 written out here in float64: μ = mean key, code bit = [(k − μ)·r > 0], CSR = token ids
// sorted by bucket (stable) plus offsets. A bit may differ only where float64 puts the dot product
// within 1e-5 of zero relative to |k − μ|·|r| (a rounding tie no f32 computation can settle).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ThreadPool } from '../../src/runtime/pool.js';
import { Arena, planArena } from '../../src/runtime/arena.js';
import { singleSequenceKV, singleSequenceKVBytes } from '../../src/attention/kv-store.js';
import { HASH_CHUNK, LshTables, lshTableSizes, type LshDims } from '../../src/attention/lsh-tables.js';
import type { LayerAttentionDims } from '../../src/attention/create.js';
import { gaussian, rng } from '../../src/attention/lsh-math.js';
import { f16ToF32, f32ToF16 } from '../../src/kernels/reference.js';

let pool: ThreadPool;
before(async () => { pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 }); });
after(() => pool.dispose());

/** Keys like real ones: a per-dimension offset, a few outlier dimensions, some rows scaled far up or
 *  down (coarse i16 steps for the small components: the kernel's exact fallback must decide those). */
function keys(seed: number, N: number, W: number): Float32Array {
  const g = gaussian(rng(seed)), off = Float32Array.from({ length: W }, () => 2 * g());
  const x = new Float32Array(N * W);                                   // (N, Hkv·D)
  for (let s = 0; s < N; s++) {
    const scale = s % 97 === 0 ? 300 : s % 89 === 0 ? 1e-3 : 1;
    for (let i = 0; i < W; i++) x[s * W + i] = off[i]! + scale * g() * (i % 16 === 5 ? 40 : 1);
  }
  return x;
}

function check(dtype: 'f16' | 'f32', N: number, G: number, D: number, K: number, L: number): { ties: number; dots: number } {
  const d: LayerAttentionDims = { layer: 2, layers: 4, heads: G * 2, kvHeads: G, headDim: D, capacity: N + 8, dtype };
  const ld: LshDims = { layer: 2, kvHeads: G, headDim: D, capacity: N + 8, K, L, deltaCap: 64, seed: 3 };
  const W = G * D, stage = N * W * 4;
  const arena = Arena.create(singleSequenceKVBytes(d) + planArena([...lshTableSizes(ld), stage]) + 4096, { kernels: 'wasm', label: 'lsh build test' });
  pool.register(arena);
  const kv = singleSequenceKV(arena, d), t = new LshTables(arena, pool, kv, ld), buf = arena.alloc(stage);
  const x = keys(N + D, N, W);
  arena.f32(buf, N * W).set(x);
  kv.store(buf, buf, 0, N);
  const stored = dtype === 'f16' ? x.map((v) => f16ToF32(f32ToF16(v))) : x;       // what the cache holds
  const start = 3;
  t.build(start, N);
  const n = N - start, NB = 1 << K, KL = K * L, mem = arena.memory.buffer;
  let ties = 0;
  for (let g = 0; g < G; g++) {
    // μ: the float64 mean of the cached keys
    const mu = new Float64Array(D);
    for (let s = start; s < N; s++) for (let i = 0; i < D; i++) mu[i] += stored[s * W + g * D + i]!;
    for (let i = 0; i < D; i++) mu[i] /= n;
    const muF = arena.f32(t.mu + g * D * 4, D);
    for (let i = 0; i < D; i++) assert.ok(Math.abs(muF[i]! - mu[i]!) <= 1e-6 * (1 + Math.abs(mu[i]!)), `μ[${g}][${i}]`);
    const R = arena.f32(t.R + g * KL * D * 4, KL * D), norms = arena.f32(t.knorm + g * ld.capacity * 4, N);
    // the kernel centers in f32 against the stored f32 μ; so does the reference (then works in f64)
    const cen = (s: number) => Array.from({ length: D }, (_, i) => Math.fround(stored[s * W + g * D + i]! - muF[i]!));
    const rNorm = Array.from({ length: KL }, (_, j) => Math.hypot(...R.subarray(j * D, j * D + D)));
    for (let l = 0; l < L; l++) {
      const off = new Uint32Array(mem, t.mainOff + (g * L + l) * (NB + 1) * 4, NB + 1);
      const ids = new Uint32Array(mem, t.mainIds + (g * L + l) * ld.capacity * 4, n);
      // the buckets the fast build chose, read back from its CSR
      const bucket = new Int32Array(N).fill(-1);
      for (let b = 0; b < NB; b++) for (let i = off[b]!; i < off[b + 1]!; i++) bucket[ids[i]!] = b;
      // the plain construction: stable counting sort of those buckets must be the CSR, entry by entry
      const want = Array.from({ length: n }, (_, i) => start + i).sort((a, b) => bucket[a]! - bucket[b]! || a - b);
      assert.deepEqual(Array.from(ids), want, `head ${g} table ${l}: ids not sorted by (bucket, id)`);
      assert.equal(off[0], 0); assert.equal(off[NB], n);
      for (let s = start; s < N; s++) {
        const c = cen(s), xn = Math.hypot(...c);
        if (l === 0) assert.ok(Math.abs(norms[s]! - xn) <= 1e-5 * xn + 1e-30, `norm of token ${s}`);
        for (let b = 0; b < K; b++) {
          const j = l * K + b;
          let dot = 0;
          for (let i = 0; i < D; i++) dot += c[i]! * R[j * D + i]!;
          const bit = (bucket[s]! >> b) & 1;
          if (bit !== (dot > 0 ? 1 : 0)) {
            assert.ok(Math.abs(dot) <= 1e-5 * xn * rNorm[j]!, `head ${g} token ${s} direction ${j}: bit ${bit} but x·r = ${dot} (|x||r| = ${xn * rNorm[j]!})`);
            ties++;
          }
        }
      }
    }
  }
  pool.unregister(arena);
  return { ties, dots: G * n * KL };
}

describe('lsh table build', () => {
  // N spans a full HASH_CHUNK (filter path, 2 threads) and a short last chunk (plain f32 path).
  for (const dtype of ['f16', 'f32'] as const) {
    test(`fast build equals the plain float64 construction (${dtype}, D=64, K=10, L=24)`, (t) => {
      const r = check(dtype, HASH_CHUNK + 700, 2, 64, 10, 24);
      t.diagnostic(`${r.ties} rounding ties in ${r.dots} dot products`);
      assert.ok(r.ties <= 5, `${r.ties} bits differ`);
    });
  }
  test('odd shapes: D=36 (not a multiple of 8: plain f32 path), K=7, L=5', () => {
    const r = check('f16', 2000, 3, 36, 7, 5);
    assert.ok(r.ties <= 2, `${r.ties} bits differ`);
  });
});
