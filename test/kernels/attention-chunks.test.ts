// attention past one chunk of keys: the (key chunk, KV head) units of attentionChunks, run in any
// slices and any order, then attentionMerge, give the bits of attention over the whole head range
// (both SIMD builds), and match the reference's explicit two-pass softmax; the reference's own
// chunks + merge give its attention's bits. Chunk boundaries are fixed multiples of ATTENTION_CHUNK.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ATTENTION_CHUNK, ATTENTION_SPLIT_QUERIES, attentionChunkCount, attentionSplitsKeys, attentionStateBytes, attentionUnits,
  type CacheDType, type Kernels,
} from '../../src/kernels/types.js';
import { createWasmKernels, kernelBuild, kernelModule } from '../../src/kernels/wasm.js';
import { assertClose, makeBench, randomF32, rng, toF16Bits } from './harness.js';

const b = makeBench(512);

interface Problem { q: number; qPos: number; k: number; v: number; n: number; S: number; H: number; Hkv: number; D: number; scale: number }

function problem(cache: CacheDType, n: number, S: number, H: number, Hkv: number, D: number, positions: number[]): Problem {
  b.reset();
  const rand = rng(S * 7 + n * 131 + D);
  const q = b.alloc(n * H * D * 4), qPos = b.alloc(n * 4);
  b.f32(q, n * H * D).set(randomF32(rand, n * H * D, 2));
  b.i32(qPos, n).set(positions);
  const es = cache === 'f16' ? 2 : 4, count = S * Hkv * D;
  const k = b.alloc(count * es), v = b.alloc(count * es);
  for (const [p, scale] of [[k, 2], [v, 3]] as const) {
    const x = randomF32(rand, count, scale);
    if (cache === 'f16') b.u16(p, count).set(toF16Bits(x)); else b.f32(p, count).set(x);
  }
  return { q, qPos, k, v, n, S, H, Hkv, D, scale: 1 / Math.sqrt(D) };
}

/** Output of `kernels.attention` over all heads, into a fresh buffer. */
function whole(kernels: Kernels, cache: CacheDType, p: Problem): Float32Array {
  const { n, S, H, Hkv, D } = p, out = b.alloc(n * H * D * 4), state = b.alloc(attentionStateBytes(n, H, Hkv, D, S));
  b.f32(out, n * H * D).fill(777);
  kernels.attention(p.q, p.qPos, p.k, p.v, out, cache, n, S, H, Hkv, D, p.scale, 0, 0, state, 0, H);
  return b.f32(out, n * H * D).slice();
}

/** attentionChunks over the given unit slices (in that order), then attentionMerge. */
function chunked(kernels: Kernels, cache: CacheDType, p: Problem, slices: [number, number][], q = p.q, qPos = p.qPos, n = p.n): Float32Array {
  const { S, H, Hkv, D } = p, out = b.alloc(n * H * D * 4), bytes = attentionStateBytes(n, H, Hkv, D, S), state = b.alloc(bytes);
  b.f32(out, n * H * D).fill(777);
  b.u8(state, bytes).fill(0xab); // the units must write every partial they merge
  for (const [u0, u1] of slices) kernels.attentionChunks(q, qPos, p.k, p.v, out, cache, n, S, H, Hkv, D, p.scale, 0, 0, state, u0, u1);
  kernels.attentionMerge(qPos, out, n, S, H, Hkv, D, state);
  return b.f32(out, n * H * D).slice();
}

// [H, Hkv, D, S, positions]: S not a multiple of the chunk or of the tile; queries before, at and past
// chunk boundaries (2047 is the last key of chunk 0), one whose keys end inside a later chunk.
const CASES: [number, number, number, number, number[]][] = [
  [9, 3, 64, 5000, [4999]],
  [9, 3, 64, 4100, [4095, 4096, 4097, 4098, 4099]],
  [8, 2, 20, 2049, [2048, 2047, 100]],
  [6, 6, 6, 2081, [2080]],
  [4, 1, 48, 6150, [6149, 2047, 2048, 5000, 0, 4096, 6000, 3333]],
];

test('key chunks: attentionChunks in any slices + attentionMerge = attention bit for bit, and the reference within tolerance (both builds)', (t) => {
  const builds: [string, Kernels][] = [['plain', createWasmKernels(kernelModule('simd'), b.memory)]];
  if (kernelBuild() === 'relaxed') builds.push(['relaxed', createWasmKernels(kernelModule('relaxed'), b.memory)]);
  else t.diagnostic('this engine does not run relaxed SIMD: plain build only');
  for (const cache of ['f32', 'f16'] as const) {
    for (const [H, Hkv, D, S, positions] of CASES) {
      const p = problem(cache, positions.length, S, H, Hkv, D, positions);
      const what = `${cache} H=${H} Hkv=${Hkv} D=${D} S=${S} pos=${positions}`;
      assert.ok(attentionSplitsKeys(p.n, S), `${what}: a split case`);
      const units = attentionUnits(p.n, S, H, Hkv);
      assert.equal(units, Hkv * Math.ceil(S / ATTENTION_CHUNK));
      const expected = whole(b.ref, cache, p);
      const mid = Math.max(1, Math.floor(units / 2) - 1); // a slice cut that splits a chunk's KV heads
      for (const [name, kernels] of builds) {
        const full = whole(kernels, cache, p);
        assertClose(full, expected, 1e-5, `${what}: ${name} build against the reference`);
        // slices as threads would take them, run last first
        assert.deepEqual(chunked(kernels, cache, p, [[mid, units], [0, mid]]), full, `${what}: ${name}, two slices`);
        assert.deepEqual(chunked(kernels, cache, p, Array.from({ length: units }, (_, u) => [units - 1 - u, units - u])), full,
          `${what}: ${name}, one unit at a time`);
        // one query at a time gives the same bits as the queries together
        for (let i = 0; i < p.n; i++) {
          const row = H * D;
          const one = chunked(kernels, cache, p, [[0, units]], p.q + i * row * 4, p.qPos + 4 * i, 1);
          assert.deepEqual(one, full.subarray(i * row, (i + 1) * row), `${what}: ${name}, query ${i} alone`);
        }
      }
      // the twin's chunks + merge are its attention's bits
      assert.deepEqual(chunked(b.ref, cache, p, [[mid, units], [0, mid]]), expected, `${what}: reference chunks + merge`);
    }
  }
});

test('key chunks have fixed boundaries: a query whose keys end in chunk 0 gets the bits of a call over one chunk', () => {
  // Chunk 0 is keys [0, ATTENTION_CHUNK) in every call, whatever S: the query at position 2047 of a
  // 5000-key call reads exactly that chunk and nothing is folded into it.
  for (const cache of ['f32', 'f16'] as const) {
    const H = 9, Hkv = 3, D = 64;
    const long = problem(cache, 2, 5000, H, Hkv, D, [ATTENTION_CHUNK - 1, 4999]);
    const split = chunked(b.wasm, cache, long, [[0, attentionUnits(2, 5000, H, Hkv)]]);
    const short = { ...long, S: ATTENTION_CHUNK };
    assert.ok(!attentionSplitsKeys(2, ATTENTION_CHUNK));
    const oneChunk = whole(b.wasm, cache, short);
    assert.deepEqual(split.subarray(0, H * D), oneChunk.subarray(0, H * D), `${cache}: query in chunk 0`);
    assert.equal(attentionChunkCount(ATTENTION_CHUNK), 1);
    assert.equal(attentionChunkCount(ATTENTION_CHUNK + 1), 2);
  }
});

test('attentionChunks refuses a call that is not split by key chunks, naming the rule', () => {
  const p = problem('f32', ATTENTION_SPLIT_QUERIES + 1, 3000, 2, 1, 8, Array(ATTENTION_SPLIT_QUERIES + 1).fill(2999));
  const state = b.alloc(attentionStateBytes(p.n, 2, 1, 8, 3000)), out = b.alloc(p.n * 2 * 8 * 4);
  for (const kernels of [b.wasm, b.ref]) {
    assert.throws(() => kernels.attentionChunks(p.q, p.qPos, p.k, p.v, out, 'f32', p.n, 3000, 2, 1, 8, p.scale, 0, 0, state, 0, 1),
      /attentionChunks: 9 queries over 3000 keys are not split by key chunks .*call attention instead/);
    assert.throws(() => kernels.attentionChunks(p.q, p.qPos, p.k, p.v, out, 'f32', 1, ATTENTION_CHUNK, 2, 1, 8, p.scale, 0, 0, state, 0, 1),
      /not split by key chunks/);
  }
});

test('attentionStateBytes grows with queries and keys (scratch declared for the largest call serves every smaller one)', () => {
  for (const [H, Hkv, D] of [[9, 3, 64], [32, 8, 64], [4, 4, 6]] as const) {
    for (let n = 1; n <= 20; n++) {
      for (const keys of [1, 2048, 2049, 4096, 4097, 10000, 32768]) {
        const s = attentionStateBytes(n, H, Hkv, D, keys);
        assert.ok(attentionStateBytes(n + 1, H, Hkv, D, keys) >= s, `n ${n} → ${n + 1}, keys ${keys}`);
        assert.ok(attentionStateBytes(n, H, Hkv, D, keys + 1) >= s, `keys ${keys} → ${keys + 1}, n ${n}`);
      }
    }
  }
});
