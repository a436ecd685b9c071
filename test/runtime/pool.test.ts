// The pool must give bit-identical results to one thread running the same kernels over [0, rows)
// or [0, H), whatever the split (rows < threads, odd rows, GQA groups), and must turn worker
// failures into exceptions. f32 results are also checked against a naive loop written here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:worker_threads';
import type { CacheDType, WeightDType } from '../../src/kernels/types.js';
import { ATTENTION_ITEM, ATTENTION_ITEM_WORDS, attentionSplitsKeys, attentionStateBytes, attentionUnits, activationBytes, weightBytes } from '../../src/kernels/types.js';
import { Arena, RESERVED_BYTES, planArena } from '../../src/runtime/arena.js';
import { availableParallelism } from 'node:os';
import { CLAIMED_CHUNKS, CLAIMED_CHUNK_WORK, CLAIMED_MIN_TOKENS, DECODE_CHUNKS, DECODE_CHUNK_WORK, matmulChunks, attentionBatchOp, attentionOp, gatedOp, gatedStackedOp, matmulOp, quantizeQ8Op } from '../../src/kernels/pool-ops.js';
import { ThreadPool, maxThreads } from '../../src/runtime/pool.js';
import { uniform01 } from '../../src/data/rng.js';
import { claimedUnitsOp, unitThreadsOp } from './test-ops.js';

const rng = uniform01;

/** Random weights of `dtype` (rows, cols) written at w; finite values of moderate size. */
function fillWeights(arena: Arena, dtype: WeightDType, w: number, rows: number, cols: number, rand: () => number): void {
  const count = rows * cols;
  const f16 = (): number => ((rand() < 0.5 ? 0x8000 : 0) | ((10 + Math.floor(rand() * 6)) << 10) | Math.floor(rand() * 1024));
  switch (dtype) {
    case 'f32': { const v = arena.f32(w, count); for (let i = 0; i < count; i++) v[i] = rand() * 2 - 1; return; }
    case 'f16': { const v = arena.u16(w, count); for (let i = 0; i < count; i++) v[i] = f16(); return; }
    case 'bf16': {
      const v = arena.u16(w, count), f = new Float32Array(1), u = new Uint32Array(f.buffer);
      for (let i = 0; i < count; i++) { f[0] = rand() * 2 - 1; v[i] = u[0]! >>> 16; }
      return;
    }
    case 'q8_0': case 'q4_0': {
      const blockBytes = dtype === 'q8_0' ? 34 : 18, bytes = arena.u8(w, weightBytes(dtype, count));
      for (let b = 0; b < count / 32; b++) {
        const o = b * blockBytes, d = f16() & 0x7fff;
        bytes[o] = d & 0xff; bytes[o + 1] = d >> 8;
        for (let j = 2; j < blockBytes; j++) bytes[o + j] = Math.floor(rand() * 256);
      }
      return;
    }
  }
}

function fillF32(arena: Arena, p: number, count: number, rand: () => number): void {
  const v = arena.f32(p, count);
  for (let i = 0; i < count; i++) v[i] = rand() * 2 - 1;
}

/** One attention problem in its own arena: random queries and K/V rows (kept in f32 as kf/vf and stored
 *  in the cache's dtype as k/v), n new tokens at the last n of S cache positions, two outputs (one
 *  thread, the pool) and the multi-query form's state. */
function attentionProblem(kernels: 'reference' | 'wasm', cacheDType: CacheDType, n: number, S: number, H: number, Hkv: number, D: number,
                          rand: () => number) {
  const elem = cacheDType === 'f32' ? 4 : 2;
  const sizes = [n * H * D * 4, n * 4, S * Hkv * D * 4, S * Hkv * D * 4, S * Hkv * D * elem, S * Hkv * D * elem, n * H * D * 4, n * H * D * 4,
    attentionStateBytes(n, H, Hkv, D, S)];
  const arena = Arena.create(planArena(sizes), { kernels, label: 'attention' });
  const [q, pos, kf, vf, k, v, o1, o2, state] = sizes.map((b) => arena.alloc(b)) as number[] as
    [number, number, number, number, number, number, number, number, number];
  fillF32(arena, q, n * H * D, rand);
  fillF32(arena, kf, S * Hkv * D, rand);
  fillF32(arena, vf, S * Hkv * D, rand);
  arena.kernels.storeRows(cacheDType, kf, k, S * Hkv * D);
  arena.kernels.storeRows(cacheDType, vf, v, S * Hkv * D);
  const positions = arena.i32(pos, n);
  for (let i = 0; i < n; i++) positions[i] = S - n + i;
  return { arena, q, pos, kf, vf, k, v, o1, o2, state, positions };
}

/** One matmul problem in its own arena registered with `pool`: random weights of `dtype` and
 *  activations (quantised to q8_0 for the quantised types), the single-thread kernel's output y1 and
 *  the pool's y2 over the same inputs. The caller unregisters the arena. */
function matmulBothWays(pool: ThreadPool, kernels: 'reference' | 'wasm', dtype: WeightDType, rows: number, cols: number, n: number,
                        rand: () => number) {
  const quant = dtype === 'q8_0' || dtype === 'q4_0';
  const sizes = [weightBytes(dtype, rows * cols), n * cols * 4, activationBytes('q8_0', n * Math.ceil(cols / 32) * 32), n * rows * 4, n * rows * 4];
  const arena = Arena.create(planArena(sizes), { kernels, label: 'matmul' });
  const [w, x, xq, y1, y2] = sizes.map((s) => arena.alloc(s)) as [number, number, number, number, number];
  pool.register(arena);
  fillWeights(arena, dtype, w, rows, cols, rand);
  fillF32(arena, x, n * cols, rand);
  let input = x;
  if (quant) { arena.kernels.quantizeQ8(x, xq, n * cols); input = xq; }
  arena.kernels.matmul(dtype, w, input, y1, n, rows, cols, 0, rows);
  pool.run(matmulOp, arena, dtype, w, input, y2, n, rows, cols);
  return { arena, w, x, single: arena.f32(y1, n * rows), pooled: arena.f32(y2, n * rows) };
}

const THREADS = 3; // more threads than CI cores on purpose: splits into 3 slices must still be exact

describe('ThreadPool with reference kernels', () => {
  let pool: ThreadPool;
  // minSplitBytes 0: split even these tiny jobs, which would otherwise run on the main thread alone.
  before(async () => { pool = await ThreadPool.create({ threads: THREADS, kernels: 'reference', minSplitBytes: 0 }); });
  after(() => pool.dispose());

  const dtypes: WeightDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];
  for (const dtype of dtypes) {
    test(`matmul ${dtype} equals the single-thread kernel for rows < threads, odd rows and batches`, () => {
      const rand = rng(dtypes.indexOf(dtype) + 1);
      const quant = dtype === 'q8_0' || dtype === 'q4_0';
      for (const cols of quant ? [32, 96] : [33, 64]) {
        for (const rows of [1, 2, 3, 8, 9, 17, 64, 257]) {
          for (const n of [1, 3, CLAIMED_MIN_TOKENS]) {
            const { arena, w, x, single, pooled } = matmulBothWays(pool, 'reference', dtype, rows, cols, n, rand);
            assert.deepEqual(pooled, single, `${dtype} n=${n} rows=${rows} cols=${cols}`);
            assert.ok(single.some((v) => v !== 0) && single.every(Number.isFinite));
            if (dtype === 'f32') {
              const W = arena.f32(w, rows * cols), X = arena.f32(x, n * cols);
              for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) {
                let s = 0;
                for (let c = 0; c < cols; c++) s += W[r * cols + c]! * X[t * cols + c]!;
                assert.ok(Math.abs(pooled[t * rows + r]! - s) <= 1e-5 * (1 + Math.abs(s)), `naive f32 r=${r}`);
              }
            }
            pool.unregister(arena);
          }
        }
      }
    });
  }

  for (const cacheDType of ['f32', 'f16'] as CacheDType[]) {
    test(`attention (${cacheDType} cache) equals the single-thread kernel for MHA, GQA and MQA`, () => {
      const rand = rng(cacheDType === 'f32' ? 11 : 12);
      for (const [H, Hkv] of [[1, 1], [2, 2], [4, 4], [8, 2], [3, 1], [6, 3], [12, 4]] as const) {
        for (const [n, S] of [[1, 1], [1, 7], [3, 17]] as const) {
          const D = 20, scale = 1 / Math.sqrt(D);
          const { arena, q, pos, kf, vf, k, v, o1, o2, state, positions } = attentionProblem('reference', cacheDType, n, S, H, Hkv, D, rand);
          pool.register(arena);
          arena.kernels.attention(q, pos, k, v, o1, cacheDType, n, S, H, Hkv, D, scale, 0, 0, state, 0, H);
          pool.run(attentionOp, arena, q, pos, k, v, o2, cacheDType, n, S, H, Hkv, D, scale, 0, 0, state);
          const single = arena.f32(o1, n * H * D), pooled = arena.f32(o2, n * H * D);
          assert.deepEqual(pooled, single, `H=${H} Hkv=${Hkv} n=${n} S=${S}`);
          if (cacheDType === 'f32') {
            const Q = arena.f32(q, n * H * D), K = arena.f32(kf, S * Hkv * D), V = arena.f32(vf, S * Hkv * D);
            for (let i = 0; i < n; i++) for (let h = 0; h < H; h++) {
              const g = Math.floor(h / (H / Hkv)), last = positions[i]!;
              const scores: number[] = [];
              for (let s = 0; s <= last; s++) {
                let dot = 0;
                for (let d = 0; d < D; d++) dot += Q[(i * H + h) * D + d]! * K[(s * Hkv + g) * D + d]!;
                scores.push(dot * scale);
              }
              const m = Math.max(...scores), e = scores.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
              for (let d = 0; d < D; d++) {
                let acc = 0;
                for (let s = 0; s <= last; s++) acc += e[s]! * V[(s * Hkv + g) * D + d]!;
                assert.ok(Math.abs(pooled[(i * H + h) * D + d]! - acc / z) < 1e-5, `naive attention h=${h} d=${d}`);
              }
            }
          }
          pool.unregister(arena);
        }
      }
    });
  }

  test('several arenas stay registered side by side; unknown or mismatched arenas are refused', () => {
    const cols = 32, rows = 40;
    const make = (seed: number): { arena: Arena; w: number; x: number; y: number } => {
      const arena = Arena.create(planArena([rows * cols * 4, cols * 4, rows * 4]), { kernels: 'reference', label: `multi ${seed}` });
      const w = arena.alloc(rows * cols * 4), x = arena.alloc(cols * 4), y = arena.alloc(rows * 4);
      const rand = rng(seed);
      fillF32(arena, w, rows * cols, rand);
      fillF32(arena, x, cols, rand);
      pool.register(arena);
      pool.register(arena); // idempotent
      return { arena, w, x, y };
    };
    const parts = [make(21), make(22), make(23)];
    for (const { arena, w, x, y } of parts.reverse()) {
      pool.run(matmulOp, arena, 'f32', w, x, y, 1, rows, cols);
      const expected = new Float32Array(rows);
      const W = arena.f32(w, rows * cols), X = arena.f32(x, cols);
      for (let r = 0; r < rows; r++) { let s = 0; for (let c = 0; c < cols; c++) s += W[r * cols + c]! * X[c]!; expected[r] = s; }
      const got = arena.f32(y, rows);
      for (let r = 0; r < rows; r++) assert.ok(Math.abs(got[r]! - expected[r]!) < 1e-5, arena.label);
    }
    const stranger = Arena.create(1024, { kernels: 'reference', label: 'stranger' });
    assert.throws(() => pool.run(matmulOp, stranger, 'f32', RESERVED_BYTES, RESERVED_BYTES, RESERVED_BYTES, 1, 8, 32), /"stranger" is not registered/);
    assert.throws(() => pool.register(Arena.create(1024, { kernels: 'wasm', label: 'w' })), /'wasm' kernels but the pool runs 'reference'/);
    assert.throws(() => pool.run(matmulOp, parts[0]!.arena, 'q2_k' as WeightDType, 0, 0, 0, 1, 8, 32), /unknown weight dtype/);
  });
});

describe('ThreadPool with the SIMD kernels', () => {
  // Concurrent slices of the multi-query (flash) form each keep their tile scores in their own buffer
  // of the shared state (the buffer of their first head): the result must be the bits of one thread
  // running one query at a time.
  test('multi-query attention over 3 threads, slices cutting GQA groups, equals one thread one query at a time', async () => {
    const pool = await ThreadPool.create({ threads: 3, kernels: 'wasm', minSplitBytes: 0 });
    try {
      const rand = rng(31);
      for (const cacheDType of ['f16', 'f32'] as CacheDType[]) {
        // 21 and 17 queries: claimed chunks of heads (one GQA group each; 32/8 heads: 8 chunks over 3 threads)
        for (const [H, Hkv, D, n, S] of [[9, 3, 64, 21, 333], [32, 8, 16, 17, 140], [8, 2, 32, 7, 130], [4, 4, 16, 5, 70]] as const) {
          const { arena, q, pos, k, v, o1, o2, state } = attentionProblem('wasm', cacheDType, n, S, H, Hkv, D, rand);
          pool.register(arena);
          const scale = 1 / Math.sqrt(D);
          for (let t = 0; t < n; t++) {
            const row = t * H * D * 4;
            arena.kernels.attention(q + row, pos + 4 * t, k, v, o1 + row, cacheDType, 1, S, H, Hkv, D, scale, 0, 0, state, 0, H);
          }
          pool.run(attentionOp, arena, q, pos, k, v, o2, cacheDType, n, S, H, Hkv, D, scale, 0, 0, state);
          assert.deepEqual(arena.f32(o2, n * H * D), arena.f32(o1, n * H * D), `${cacheDType} H=${H} Hkv=${Hkv} D=${D} n=${n} S=${S}`);
          pool.unregister(arena);
        }
      }
    } finally {
      pool.dispose();
    }
  });
});

describe('claimed chunks', () => {
  test('every unit runs once, in chunks of whole units; each thread runs its own chunks first, in order, and a slower thread takes fewer', async () => {
    const pool = await ThreadPool.create({ threads: 3, kernels: 'reference', minSplitBytes: 0 });
    try {
      const arena = Arena.create(4096, { kernels: 'reference' });
      pool.register(arena);
      const total = 240, unit = 2, chunks = 10, size = Math.ceil(total / unit / (3 * chunks)) * unit; // 30 chunks of 8 units
      const visits = arena.alloc(total * 4), owners = arena.alloc(total * 4), order = arena.alloc((total + 1) * 4);
      // After each chunk the calling thread sleeps 5 ms, the workers 40 ms: all three take chunks, the
      // calling thread most (about 22 of the 30 against 4 each).
      pool.run(claimedUnitsOp, arena, visits, owners, total, unit, chunks, 5, 40, order);
      assert.deepEqual(Array.from(arena.i32(visits, total)), new Array<number>(total).fill(1));
      const own = Array.from(arena.i32(owners, total));
      for (let c = 0; c < total; c += size) assert.equal(new Set(own.slice(c, c + size)).size, 1, `chunk at ${c}: ${own.join(' ')}`);
      const count = (t: number): number => own.filter((x) => x === t).length;
      const ran = new Set(own);
      assert.equal(ran.size, 3, `every thread took chunks: ${own.join(' ')}`);
      for (const t of ran) if (t !== 0) assert.ok(count(0) > count(t), `units by thread: ${own.join(' ')}`);
      // Thread t owns the chunks [10t, 10t + 10): it runs a prefix of them, front first and in order
      // (its weights stay one stream); the others steal the rest, back first.
      const started = Array.from(arena.i32(order + 4, total));
      for (let t = 0; t < 3; t++) {
        const chunkOwners = Array.from({ length: 10 }, (_, c) => own[(10 * t + c) * size]!);
        const when = Array.from({ length: 10 }, (_, c) => started[(10 * t + c) * size]!);
        const k = chunkOwners.filter((x) => x === chunkOwners[0]).length;
        const what = `thread ${t}'s chunks: run by ${chunkOwners.join(' ')}, started ${when.join(' ')}`;
        assert.ok(chunkOwners.slice(0, k).every((x) => x === chunkOwners[0]), what);
        for (let c = 1; c < k; c++) assert.ok(when[c]! > when[c - 1]!, what);
        for (let c = k + 1; c < 10; c++) assert.ok(when[c]! < when[c - 1]!, what);
      }
      assert.ok(own.slice(0, 10 * size).every((x) => x === 0), `the calling thread's own chunks: ${own.join(' ')}`);
      // A fast job: every unit still once, whichever threads took them.
      arena.i32(visits, total).fill(0);
      pool.run(claimedUnitsOp, arena, visits, owners, 37, 1, 3, 0, 0, order);
      assert.deepEqual(Array.from(arena.i32(visits, 37)), new Array<number>(37).fill(1));
    } finally {
      pool.dispose();
    }
  });

  test('which matmuls claim chunks: up to CLAIMED_CHUNKS per thread (prefill) or DECODE_CHUNKS (fewer tokens), none below CLAIMED_CHUNK_WORK or DECODE_CHUNK_WORK', () => {
    assert.equal(matmulChunks(1, 1e12, 2), DECODE_CHUNKS);
    assert.equal(matmulChunks(CLAIMED_MIN_TOKENS - 1, 3 * 2 * DECODE_CHUNK_WORK, 2), 3);
    assert.equal(matmulChunks(1, 2 * 2 * DECODE_CHUNK_WORK - 1, 2), undefined); // a small matrix: fixed slices
    assert.equal(matmulChunks(CLAIMED_MIN_TOKENS, 3 * 2 * CLAIMED_CHUNK_WORK, 2), 3);
    assert.equal(matmulChunks(64, 2 * 2 * CLAIMED_CHUNK_WORK - 1, 2), undefined); // less than two chunks' work per thread
    assert.equal(matmulChunks(64, 1e12, 2), CLAIMED_CHUNKS);
  });

  test('matmul in claimed chunks (one token, and prefill-sized) equals one thread (SIMD kernels)', async () => {
    const pool = await ThreadPool.create({ threads: 3, kernels: 'wasm', minSplitBytes: 0 });
    try {
      const rand = rng(71);
      const cols = 1024;
      for (const [dtype, rows, n] of [['f32', 1024, 1], ['f32', 1024, CLAIMED_MIN_TOKENS], ['q8_0', 1000, 64], ['q4_0', 1024, 64]] as const) {
        assert.ok(matmulChunks(n, n * weightBytes(dtype, rows * cols), 3) !== undefined, `${dtype}: claimed`);
        const { arena, single, pooled } = matmulBothWays(pool, 'wasm', dtype, rows, cols, n, rand);
        assert.deepEqual(pooled, single, `${dtype} rows=${rows} n=${n}`);
        pool.unregister(arena);
      }
    } finally {
      pool.dispose();
    }
  });
});

describe('attention split by key chunks (SIMD kernels)', () => {
  // Past ATTENTION_CHUNK keys, decode and short verifications run as (key chunk, KV head) units merged
  // in chunk order: the chunk boundaries are fixed, so a sequence's bits must not depend on how many
  // threads share the units or on which other sequences share the job (a boundary that moved with
  // the slices would change the folds, and so the bits).
  const H = 9, Hkv = 3, D = 64, S = 5000, scale = 1 / Math.sqrt(D);
  // [queries, keys] of each sequence of the batched job: split and unsplit ones mixed
  const items: [number, number][] = [[1, 5000], [1, 300], [3, 2049], [5, 4100], [12, 4500], [1, 2048]];

  for (const cacheDType of ['f16', 'f32'] as CacheDType[]) {
    test(`attentionOp and attentionBatchOp (${cacheDType} cache): the same bits on 1, 2, 3 and 4 threads, alone or in a batch`, async () => {
      const rand = rng(cacheDType === 'f16' ? 41 : 42);
      const elem = cacheDType === 'f32' ? 4 : 2;
      const sizes = [S * Hkv * D * 4, S * Hkv * D * 4, S * Hkv * D * elem, S * Hkv * D * elem, items.length * ATTENTION_ITEM_WORDS * 4,
        ...items.flatMap(([n, len]) => [n * H * D * 4, n * 4, n * H * D * 4, n * H * D * 4, attentionStateBytes(n, H, Hkv, D, len)])];
      const arena = Arena.create(planArena(sizes), { kernels: 'wasm', label: 'key chunks' });
      const [kf, vf, k, v, table] = sizes.slice(0, 5).map((b) => arena.alloc(b)) as [number, number, number, number, number];
      fillF32(arena, kf, S * Hkv * D, rand);
      fillF32(arena, vf, S * Hkv * D, rand);
      arena.kernels.storeRows(cacheDType, kf, k, S * Hkv * D);
      arena.kernels.storeRows(cacheDType, vf, v, S * Hkv * D);
      const seqs = items.map(([n, len]) => {
        const [q, pos, alone, batched, state] = [n * H * D * 4, n * 4, n * H * D * 4, n * H * D * 4, attentionStateBytes(n, H, Hkv, D, len)]
          .map((b) => arena.alloc(b)) as [number, number, number, number, number];
        fillF32(arena, q, n * H * D, rand);
        const positions = arena.i32(pos, n);
        for (let i = 0; i < n; i++) positions[i] = len - n + i;
        // expected: one thread, by heads, no split
        arena.kernels.attention(q, pos, k, v, alone, cacheDType, n, len, H, Hkv, D, scale, 0, 0, state, 0, H);
        const expected = arena.f32(alone, n * H * D).slice();
        return { n, len, q, pos, alone, batched, state, expected };
      });
      const words = arena.i32(table, items.length * ATTENTION_ITEM_WORDS);
      let units = 0, keys = 0;
      seqs.forEach(({ n, len, q, pos, batched, state }, i) => {
        const w = i * ATTENTION_ITEM_WORDS;
        words[w + ATTENTION_ITEM.Q] = q; words[w + ATTENTION_ITEM.QPOS] = pos; words[w + ATTENTION_ITEM.OUT] = batched;
        words[w + ATTENTION_ITEM.N] = n; words[w + ATTENTION_ITEM.S] = len; words[w + ATTENTION_ITEM.PAGES] = 0;
        words[w + ATTENTION_ITEM.STATE] = state; words[w + ATTENTION_ITEM.FIRST] = units;
        units += attentionUnits(n, len, H, Hkv);
        keys += n * len;
      });
      assert.ok(seqs.some(({ n, len }) => attentionSplitsKeys(n, len)) && seqs.some(({ n, len }) => !attentionSplitsKeys(n, len)));
      for (const threads of [1, 2, 3, 4]) {
        const pool = await ThreadPool.create({ threads, kernels: 'wasm', minSplitBytes: 0 });
        try {
          pool.register(arena);
          for (const { n, len, q, pos, alone, state, expected } of seqs) {
            arena.f32(alone, n * H * D).fill(777);
            pool.run(attentionOp, arena, q, pos, k, v, alone, cacheDType, n, len, H, Hkv, D, scale, 0, 0, state);
            assert.deepEqual(arena.f32(alone, n * H * D), expected, `${threads} threads, alone: n=${n} S=${len}`);
          }
          for (const { n, batched } of seqs) arena.f32(batched, n * H * D).fill(777);
          pool.run(attentionBatchOp, arena, table, items.length, k, v, cacheDType, H, Hkv, D, scale, 0, keys, units);
          for (const { n, len, batched, expected } of seqs) {
            assert.deepEqual(arena.f32(batched, n * H * D), expected, `${threads} threads, in a batch: n=${n} S=${len}`);
          }
        } finally {
          pool.dispose();
        }
      }
    });
  }
});

describe('ThreadPool failures and lifetime', () => {
  test('a failure inside a worker is thrown in the caller, and the pool keeps working', async () => {
    const pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 });
    try {
      const rows = 16, cols = 32;
      const arena = Arena.create(1, { kernels: 'wasm', label: 'edge' });
      const x = arena.alloc(cols * 4), y = arena.alloc(rows * 4);
      fillF32(arena, x, cols, rng(5));
      pool.register(arena);
      // W's first 8 rows end exactly at the end of the memory, so the main thread's slice [0, 8)
      // succeeds and the worker's slice [8, 16) reads out of bounds.
      const end = arena.memory.buffer.byteLength, w = end - 8 * cols * 4;
      fillF32(arena, w, 8 * cols, rng(6));
      assert.throws(() => pool.run(matmulOp, arena, 'f32', w, x, y, 1, rows, cols), /ThreadPool\.matmul: worker 1 failed: RuntimeError: memory access out of bounds/);
      // The next job runs normally: rows [0, 8) over both threads.
      const y2 = arena.alloc(8 * 4);
      pool.run(matmulOp, arena, 'f32', w, x, y2, 1, 8, cols);
      arena.kernels.matmul('f32', w, x, y, 1, 8, cols, 0, 8);
      assert.deepEqual(arena.f32(y2, 8), arena.f32(y, 8));
    } finally {
      pool.dispose();
    }
  });

  test('a worker that died while idle is reported by the next call, not waited for', async () => {
    const pool = await ThreadPool.create({ threads: 2, kernels: 'reference', minSplitBytes: 0 });
    const arena = Arena.create(65536, { kernels: 'reference' });
    pool.register(arena);
    const w = arena.alloc(16 * 32 * 4), x = arena.alloc(32 * 4), y = arena.alloc(16 * 4);
    // Reach into the pool to kill its worker, as an out-of-memory crash would.
    const { worker } = (pool as unknown as { workers: Array<{ worker: Worker }> }).workers[0]!;
    await worker.terminate();
    await new Promise((resolve) => setImmediate(resolve));
    assert.throws(() => pool.run(matmulOp, arena, 'f32', w, x, y, 1, 16, 32), /a worker died.*create a new pool/);
    pool.dispose(); // returns at once
  });

  test('jobs below minSplitBytes run on the main thread alone', async () => {
    const pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 16 * 32 * 4 + 1 });
    try {
      const rows = 16, cols = 32;
      const arena = Arena.create(1, { kernels: 'wasm', label: 'edge' });
      const x = arena.alloc(cols * 4), y = arena.alloc(rows * 4);
      pool.register(arena);
      const w = arena.memory.buffer.byteLength - 8 * cols * 4;
      // The same out-of-bounds job as above now fails on the main thread: no worker was involved.
      assert.throws(() => pool.run(matmulOp, arena, 'f32', w, x, y, 1, rows, cols), (err: Error) =>
        err instanceof WebAssembly.RuntimeError && !/worker/.test(err.message));
    } finally {
      pool.dispose();
    }
  });

  test('one thread runs everything on the main thread; dispose is idempotent and final', async () => {
    const pool = await ThreadPool.create({ threads: 1, kernels: 'reference' });
    assert.equal(pool.threads, 1);
    const arena = Arena.create(4096, { kernels: 'reference' });
    const w = arena.alloc(8 * 32 * 4), x = arena.alloc(32 * 4), y = arena.alloc(8 * 4);
    fillF32(arena, w, 8 * 32, rng(7));
    fillF32(arena, x, 32, rng(8));
    pool.register(arena);
    pool.run(matmulOp, arena, 'f32', w, x, y, 1, 8, 32);
    const W = arena.f32(w, 256), X = arena.f32(x, 32);
    let s = 0;
    for (let c = 0; c < 32; c++) s += W[7 * 32 + c]! * X[c]!;
    assert.ok(Math.abs(arena.f32(y, 8)[7]! - s) < 1e-5);
    pool.dispose();
    pool.dispose();
    assert.throws(() => pool.run(matmulOp, arena, 'f32', w, x, y, 1, 8, 32), /disposed/);

    const multi = await ThreadPool.create({ threads: 2, kernels: 'reference' });
    multi.register(arena);
    multi.dispose();
    multi.dispose();
    assert.throws(() => multi.register(arena), /disposed/);
  });

  test('a family defined in any module runs on every thread; an op defined outside its module is refused', async () => {
    const pool = await ThreadPool.create({ threads: 3, kernels: 'reference', minSplitBytes: 0 });
    try {
      const arena = Arena.create(4096, { kernels: 'reference' });
      pool.register(arena);
      const units = 7, out = arena.alloc(units * 4);
      pool.run(unitThreadsOp, arena, out, units);
      // splitRange gives 7 units over 3 threads as [0, 2), [2, 4), [4, 7): each slice ran on its own thread.
      const ran = Array.from(arena.i32(out, units));
      assert.equal(new Set(ran).size, 3, `threads per unit: ${ran.join(' ')}`);
      assert.deepEqual([ran[0], ran[2], ran[4]].map((t) => ran.filter((x) => x === t).length), [2, 2, 3]);
      // With costs the split follows them: decode over 4112 keys, 3 KV heads × chunks of 2048, 2048, 16 keys
      const two = await ThreadPool.create({ threads: 2, kernels: 'reference', minSplitBytes: 0 });
      try {
        two.register(arena);
        two.run(unitThreadsOp, arena, out, 9, [2048, 2048, 16].flatMap((k) => [k, k, k]));
        const split = Array.from(arena.i32(out, 9));
        assert.deepEqual(split.map((t) => (t === split[0] ? 0 : 1)), [0, 0, 0, 1, 1, 1, 1, 1, 1], `threads per unit: ${split.join(' ')}`);
      } finally {
        two.dispose();
      }
      // Workers learn ops by importing the family's module, so an op defined elsewhere cannot reach them.
      const stray = unitThreadsOp.family.op('stray', { args: [], prepare: () => ({ total: 3, unit: 1, work: Infinity }), slice: () => {} });
      assert.throws(() => pool.run(stray, arena), /^Error: ThreadPool\.stray: worker \d failed: Error: kernel family "test" \(.*test-ops\.js\) has no op "stray" after import; define every op at the top level/);
    } finally {
      pool.dispose();
    }
  });

  test('option errors name the option', async () => {
    await assert.rejects(ThreadPool.create({ threads: 0, kernels: 'reference' }), /threads must be an integer/);
    await assert.rejects(ThreadPool.create({ threads: 1.5, kernels: 'reference' }), /threads must be an integer/);
    await assert.rejects(ThreadPool.create({ kernels: 'gpu' as never }), /'wasm' or 'reference'/);
    // One bound on thread counts, 4 × the cores (the CLI's --threads reaches the same check).
    assert.equal(maxThreads(), Math.min(256, 4 * availableParallelism()));
    await assert.rejects(ThreadPool.create({ threads: maxThreads() + 1, kernels: 'reference' }),
      new RegExp(`threads must be an integer from 1 to ${maxThreads()} \\(4 × this machine's ${availableParallelism()} cores\\), got ${maxThreads() + 1}; leave it unset`));
  });
});

describe('element-wise ops on the pool (SIMD kernels)', () => {
  test('quantizeQ8Op, gatedStackedOp and gatedOp: the same bytes on 1, 2 and 3 threads as one kernel call', async () => {
    const n = 13, F = 96, count = n * F, rand = rng(51);
    const sizes = [count * 8, count * 4, count * 4, count * 4, activationBytes('q8_0', count), activationBytes('q8_0', count)];
    const arena = Arena.create(planArena(sizes), { kernels: 'wasm', label: 'element-wise' });
    const [gu, gate, up, out, xq, xqPool] = sizes.map((b) => arena.alloc(b)) as [number, number, number, number, number, number];
    fillF32(arena, gu, 2 * count, rand);
    fillF32(arena, up, count, rand);
    const k = arena.kernels;
    for (const act of ['silu', 'gelu'] as const) {
      // expected: the kernels called once on this thread
      if (act === 'silu') k.siluMulStacked(gu, out, n, F); else k.geluMulStacked(gu, out, n, F);
      const stacked = arena.f32(out, count).slice();
      arena.f32(gate, count).set(arena.f32(gu, count));
      if (act === 'silu') k.siluMul(gate, up, count); else k.geluMul(gate, up, count);
      const gated = arena.f32(gate, count).slice();
      k.quantizeQ8(out, xq, count);
      const quantised = arena.u8(xq, activationBytes('q8_0', count)).slice();
      for (const threads of [1, 2, 3]) {
        const pool = await ThreadPool.create({ threads, kernels: 'wasm', minSplitBytes: 0 });
        try {
          pool.register(arena);
          arena.f32(out, count).fill(777);
          pool.run(gatedStackedOp, arena, act, gu, out, n, F);
          assert.deepEqual(arena.f32(out, count), stacked, `${act} stacked, ${threads} threads`);
          arena.f32(gate, count).set(arena.f32(gu, count));
          pool.run(gatedOp, arena, act, gate, up, count);
          assert.deepEqual(arena.f32(gate, count), gated, `${act}, ${threads} threads`);
          arena.u8(xqPool, activationBytes('q8_0', count)).fill(0xa5);
          pool.run(quantizeQ8Op, arena, out, xqPool, count);
          assert.deepEqual(arena.u8(xqPool, activationBytes('q8_0', count)), quantised, `quantizeQ8, ${threads} threads`);
          assert.throws(() => pool.run(gatedOp, arena, 'relu' as never, gate, up, count), /ThreadPool.gated: unknown gate "relu"/);
          assert.throws(() => pool.run(quantizeQ8Op, arena, out, xqPool, count - 16), /ThreadPool.quantizeQ8: count must be a multiple of 32, got 1232/);
        } finally {
          pool.dispose();
        }
      }
    }
  });
});
