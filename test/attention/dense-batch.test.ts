// attendDenseBatch: the attention of several sequences of one layer in one pool job must give each
// sequence the bits attendDense gives it alone — sequences of mixed lengths whose pages interleave in
// the pool, one- and several-query items, both cache dtypes, both kernel kinds, splits by whole GQA
// groups and by single heads — and refuse calls it cannot run correctly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CacheDType } from '../../src/kernels/types.js';
import { Arena, planArena } from '../../src/runtime/arena.js';
import { ThreadPool } from '../../src/runtime/pool.js';
import type { KernelKind } from '../../src/runtime/kernel-factory.js';
import { attendDenseBatch, KVStore, type DenseQuery } from '../../src/attention/kv-store.js';
import { KV_PAGE_TOKENS, KVPagePool, LayerKV, SequencePages, type LayerKVDims } from '../../src/attention/kv-pages.js';
import type { LayerAttentionDims } from '../../src/attention/create.js';
import { uniform01 } from '../../src/data/rng.js';

const THREADS = 3; // more threads than the machine's cores on purpose: 3-way splits must be exact too

interface Problem { arena: Arena; layer: LayerKV; stores: KVStore[]; queries: DenseQuery[]; alone: number[] }

/** One layer with `lengths.length` sequences of those lengths, their pages allocated round-robin so
 *  they interleave in the pool; per sequence `n` queries at its last n positions, random K/V/q. */
function problem(kind: KernelKind, dtype: CacheDType, H: number, Hkv: number, D: number, lengths: number[], n: number[], seed: number): Problem {
  const maxLen = Math.max(...lengths), maxPages = Math.ceil(maxLen / KV_PAGE_TOKENS);
  const pagesNeeded = lengths.reduce((t, l) => t + Math.ceil(l / KV_PAGE_TOKENS), 0);
  const dims: LayerKVDims = { heads: H, kvHeads: Hkv, headDim: D, dtype, pages: pagesNeeded + 2, maxPagesPerSequence: maxPages,
    maxQueries: Math.max(...n), sequences: lengths.length + 1 };
  const io = lengths.map((_, i) => [n[i]! * H * D * 4, n[i]! * 4, n[i]! * H * D * 4, n[i]! * H * D * 4, maxLen * Hkv * D * 4, maxLen * Hkv * D * 4]).flat();
  const arena = Arena.create(planArena([...LayerKV.sizes(dims), ...io]) + 64 * 12, { kernels: kind, label: 'dense batch' });
  const layer = new LayerKV(arena, dims);
  const pool = new KVPagePool(dims.pages);
  const seqs = lengths.map(() => new SequencePages());
  for (let round = 0; round < maxPages; round++) {
    seqs.forEach((s, i) => { if (round * KV_PAGE_TOKENS < lengths[i]!) s.ids.push(pool.alloc()); });
  }
  const rand = uniform01(seed);
  const attDims: LayerAttentionDims = { layer: 0, layers: 1, heads: H, kvHeads: Hkv, headDim: D, capacity: maxLen, dtype };
  const stores = seqs.map((s, i) => { s.changed(); return new KVStore(layer, s, attDims, i + 1); }); // slot 0 left unused
  const queries: DenseQuery[] = [], alone: number[] = [];
  lengths.forEach((len, i) => {
    const m = n[i]!, q = arena.alloc(m * H * D * 4), qPos = arena.alloc(m * 4), out = arena.alloc(m * H * D * 4);
    alone.push(arena.alloc(m * H * D * 4));
    const k = arena.alloc(maxLen * Hkv * D * 4), v = arena.alloc(maxLen * Hkv * D * 4);
    for (const [p, count] of [[q, m * H * D], [k, len * Hkv * D], [v, len * Hkv * D]] as const) {
      const x = arena.f32(p, count);
      for (let j = 0; j < count; j++) x[j] = rand() * 4 - 2;
    }
    arena.i32(qPos, m).set(Array.from({ length: m }, (_, t) => len - m + t));
    stores[i]!.store(k, v, 0, len);
    queries.push({ kv: stores[i]!, q, qPos, out, n: m, length: len });
  });
  return { arena, layer, stores, queries, alone };
}

for (const kind of ['wasm', 'reference'] as const) {
  describe(`attendDenseBatch with ${kind} kernels`, () => {
    let pool: ThreadPool;
    before(async () => { pool = await ThreadPool.create({ threads: THREADS, kernels: kind, minSplitBytes: 0 }); });
    after(() => pool.dispose());

    const shapes: [H: number, Hkv: number, D: number][] = kind === 'wasm' ? [[9, 3, 64], [4, 2, 16], [6, 6, 32]] : [[9, 3, 16], [4, 2, 8]];
    for (const dtype of ['f16', 'f32'] as const) {
      test(`${dtype}: mixed lengths and query counts, interleaved pages: each sequence's bits equal attendDense alone`, () => {
        for (const [H, Hkv, D] of shapes) {
          const lengths = [1, 70, 130, 5, 64, 200], n = [1, 1, 3, 1, 2, 1];
          const p = problem(kind, dtype, H, Hkv, D, lengths, n, H * 31 + D);
          pool.register(p.arena);
          p.queries.forEach((x, i) => x.kv.attendDense(pool, x.q, x.qPos, p.alone[i]!, x.n, x.length));
          // 5 sequences of H=4, Hkv=2 on 3 threads: 10 KV heads do not divide evenly, so slices cut
          // GQA groups and sequences mid-way
          for (const order of [p.queries, [...p.queries].reverse(), p.queries.filter((x) => x.n === 1), p.queries.slice(0, 5)]) {
            for (const x of p.queries) p.arena.f32(x.out, x.n * H * D).fill(NaN);
            attendDenseBatch(pool, order);
            for (const x of order) {
              const i = p.queries.indexOf(x), what = `${dtype} H=${H} Hkv=${Hkv} D=${D} sequence ${i} (length ${x.length}, ${x.n} queries) of ${order.length}`;
              const got = p.arena.f32(x.out, x.n * H * D), want = p.arena.f32(p.alone[i]!, x.n * H * D);
              assert.ok(want.every(Number.isFinite), `${what}: attendDense gave non-finite values`);
              assert.deepEqual(got, want, what);
            }
          }
          pool.unregister(p.arena);
        }
      });
    }

    test('refuses stores of another layer, a sequence twice, more sequences than the layer has slots, and items beyond its scratch', () => {
      const a = problem(kind, 'f32', 4, 2, 8, [10, 20], [1, 1], 1), b = problem(kind, 'f32', 4, 2, 8, [10], [1], 2);
      pool.register(a.arena); pool.register(b.arena);
      assert.throws(() => attendDenseBatch(pool, [a.queries[0]!, b.queries[0]!]), /covers one layer/);
      assert.throws(() => attendDenseBatch(pool, [a.queries[0]!, a.queries[0]!]), /same sequence appears twice/);
      const many = Array.from({ length: 4 }, () => a.queries[0]!);
      assert.throws(() => attendDenseBatch(pool, many), /4 sequences exceed the 3 slots/);
      assert.throws(() => attendDenseBatch(pool, [{ ...a.queries[0]!, n: 2 }]), /2 queries exceed the 1/);
      attendDenseBatch(pool, []); // nothing to do
      // the layer's kernel scratch holds one query per slot plus one call of maxQueries: three
      // sequences of three queries each do not fit, and are refused before the kernel runs
      const c = problem(kind, 'f32', 4, 2, 8, [10, 20, 30], [3, 3, 3], 3);
      pool.register(c.arena);
      assert.throws(() => attendDenseBatch(pool, c.queries), /need more attention scratch than the layer holds/);
      pool.unregister(c.arena);
      pool.unregister(a.arena); pool.unregister(b.arena);
    });
  });
}
