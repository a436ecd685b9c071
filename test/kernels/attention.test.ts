// attention: SIMD online softmax against the reference's explicit two-pass softmax.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ATTENTION_TILE, attentionBlockRows, attentionStateBytes, type CacheDType } from '../../src/kernels/types.js';
import { createWasmKernels, kernelBuild, kernelModule } from '../../src/kernels/wasm.js';
import { assertClose, makeBench, randomF32, rng, toF16Bits } from './harness.js';

const b = makeBench(128);

function runCase(cache: CacheDType, n: number, S: number, H: number, Hkv: number, D: number, positions: number[], h0 = 0, h1 = H): void {
  b.reset();
  const rand = rng(S * 131 + H * 7 + D);
  const q = b.alloc(n * H * D * 4), qPos = b.alloc(n * 4);
  b.f32(q, n * H * D).set(randomF32(rand, n * H * D, 2));
  b.i32(qPos, n).set(positions);
  const es = cache === 'f16' ? 2 : 4;
  const kvCount = Math.max(1, S * Hkv * D);
  const k = b.alloc(kvCount * es), v = b.alloc(kvCount * es);
  const kv = randomF32(rand, kvCount, 2), vv = randomF32(rand, kvCount, 3);
  if (cache === 'f16') { b.u16(k, kvCount).set(toF16Bits(kv)); b.u16(v, kvCount).set(toF16Bits(vv)); }
  else { b.f32(k, kvCount).set(kv); b.f32(v, kvCount).set(vv); }
  const or = b.alloc(n * H * D * 4), ow = b.alloc(n * H * D * 4);
  b.f32(or, n * H * D).fill(777);
  b.f32(ow, n * H * D).fill(777);
  const scale = 1 / Math.sqrt(D), state = b.alloc(attentionStateBytes(n, H, Hkv, D, S));
  b.ref.attention(q, qPos, k, v, or, cache, n, S, H, Hkv, D, scale, 0, 0, 0, h0, h1);
  b.wasm.attention(q, qPos, k, v, ow, cache, n, S, H, Hkv, D, scale, 0, 0, state, h0, h1);
  const what = `attention ${cache} n=${n} S=${S} H=${H} Hkv=${Hkv} D=${D} pos=${positions} [${h0},${h1})`;
  assertClose(b.f32(ow, n * H * D), b.f32(or, n * H * D), 2e-6, what);
  // one query at a time computes the same bits as the n queries together
  const o1 = b.alloc(n * H * D * 4);
  b.f32(o1, n * H * D).fill(777);
  for (let t = 0; t < n; t++) {
    const row = t * H * D * 4;
    b.wasm.attention(q + row, qPos + 4 * t, k, v, o1 + row, cache, 1, S, H, Hkv, D, scale, 0, 0, state, h0, h1);
  }
  assert.deepEqual(b.f32(o1, n * H * D), b.f32(ow, n * H * D), `${what}: one query at a time differs`);
  const O = b.f32(ow, n * H * D);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < H; h++) {
      const row = O.subarray((t * H + h) * D, (t * H + h + 1) * D);
      if (h < h0 || h >= h1) assert.ok(row.every((x) => x === 777), `${what}: head ${h} written`);
      else if (Math.min(S, positions[t]! + 1) <= 0) assert.ok(row.every((x) => x === 0), `${what}: empty range not zeros`);
    }
  }
}

test('attention matches the reference: f32/f16 cache, GQA 4:2 and 6:1, S = 0, 1, 63, 200', () => {
  for (const cache of ['f32', 'f16'] as const) {
    for (const [H, Hkv] of [[4, 2], [6, 1]] as const) {
      for (const D of [6, 64]) {
        for (const S of [0, 1, 63, 200]) {
          runCase(cache, 1, S, H, Hkv, D, [Math.max(0, S - 1)]);                       // decode
          runCase(cache, 3, S, H, Hkv, D, [S - 3, S - 2, S - 1].map((p) => Math.max(0, p))); // prefill chunk
        }
      }
    }
  }
});

test('attention: positions past S read only rows < S; head ranges; empty key range gives zeros', () => {
  runCase('f32', 2, 10, 4, 2, 64, [50, 5], 1, 3);
  runCase('f16', 2, 63, 6, 1, 64, [100, 62], 2, 5);
  runCase('f32', 1, 0, 4, 2, 64, [0]);
});

test('attention with one key returns that key\'s value row', () => {
  b.reset();
  const D = 8;
  const q = b.alloc(D * 4), pos = b.alloc(4), k = b.alloc(D * 4), v = b.alloc(D * 4), out = b.alloc(D * 4), state = b.alloc(attentionStateBytes(1, 1, 1, D, 1));
  b.f32(q, D).set(randomF32(rng(1), D));
  b.f32(k, D).set(randomF32(rng(2), D));
  b.f32(v, D).set([1, 2, 3, 4, 5, 6, 7, 8]);
  b.i32(pos, 1)[0] = 0;
  b.wasm.attention(q, pos, k, v, out, 'f32', 1, 1, 1, 1, D, 0.3, 0, 0, state, 0, 1);
  assert.deepEqual([...b.f32(out, D)], [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('attention GQA grouping: groups wider than 8 heads, ranges cutting groups, several key tiles', () => {
  // 20:2 → 10 query heads per KV head (processed 8 + 2); [3, 17) starts and ends inside groups.
  runCase('f32', 2, 300, 20, 2, 64, [299, 150], 3, 17);
  runCase('f16', 1, 300, 20, 2, 64, [299], 3, 17);
  runCase('f16', 2, 131, 9, 3, 6, [130, 64], 2, 8); // D = 6: scalar tails; tiles of 680 keys → one tile
  runCase('f32', 1, 4100, 9, 3, 2, [4099]);          // D = 2: 1024-key tiles, 4 full + a 4-key tail
  runCase('f32', 1, 200, 4, 4, 64, [199], 1, 4);     // MHA: one head per group
});

test('attention 8-key blocks: D = 16, 48, 128 (unrolled path), lengths not multiples of 8, f16 and f32', () => {
  for (const cache of ['f32', 'f16'] as const) {
    for (const D of [16, 48, 128]) {
      runCase(cache, 1, 77, 6, 2, D, [76], 1, 5);
      runCase(cache, 2, 45, 3, 1, D, [44, 9]);
    }
  }
});

test('paged K/V (rows reached through a shuffled page table) equals contiguous rows bit for bit, one query at a time and several, and the reference', () => {
  for (const [cache, D, shift] of [['f32', 64, 4], ['f16', 64, 6], ['f16', 16, 3], ['f32', 6, 5], ['f16', 128, 7]] as const) {
    const n = 3, S = 301, H = 6, Hkv = 2, page = 2 ** shift, pagesN = Math.ceil(S / page);
    b.reset();
    const rand = rng(D * 17 + shift);
    const es = cache === 'f16' ? 2 : 4, rowBytes = Hkv * D * es, count = S * Hkv * D;
    const q = b.alloc(n * H * D * 4), qPos = b.alloc(n * 4);
    b.f32(q, n * H * D).set(randomF32(rand, n * H * D, 2));
    b.i32(qPos, n).set([S - 3, S - 2, S - 1]);
    const kv = [randomF32(rand, count, 2), randomF32(rand, count, 3)];
    const put = (p: number, x: Float32Array) => (cache === 'f16' ? b.u16(p, x.length).set(toF16Bits(x)) : b.f32(p, x.length).set(x));
    const flat = kv.map((x) => { const p = b.alloc(count * es); put(p, x); return p; });
    // the pool: pagesN + 2 pages, filled in a shuffled order; the table holds each page's byte offset
    const order = Array.from({ length: pagesN + 2 }, (_, i) => i).sort((x, y) => ((x * 7919) % 13) - ((y * 7919) % 13) || x - y);
    const pool = kv.map(() => b.alloc((pagesN + 2) * page * rowBytes));
    const table = b.alloc(pagesN * 4);
    for (let pg = 0; pg < pagesN; pg++) {
      const off = order[pg]! * page * rowBytes;
      b.i32(table, pagesN)[pg] = off;
      for (const [i, x] of kv.entries()) {
        const rows = x.subarray(pg * page * Hkv * D, Math.min(S, (pg + 1) * page) * Hkv * D);
        put(pool[i]! + off, rows);
      }
    }
    const outs = [0, 1, 2, 3].map(() => b.alloc(n * H * D * 4)), state = b.alloc(attentionStateBytes(n, H, Hkv, D, S));
    const scale = 1 / Math.sqrt(D);
    b.wasm.attention(q, qPos, flat[0]!, flat[1]!, outs[0]!, cache, n, S, H, Hkv, D, scale, 0, 0, state, 0, H);
    b.wasm.attention(q, qPos, pool[0]!, pool[1]!, outs[1]!, cache, n, S, H, Hkv, D, scale, table, shift, state, 0, H);
    b.ref.attention(q, qPos, pool[0]!, pool[1]!, outs[2]!, cache, n, S, H, Hkv, D, scale, table, shift, 0, 0, H);
    const what = `paged attention ${cache} D=${D} page=${page}`;
    for (let t = 0; t < n; t++) { // one query at a time
      const row = t * H * D * 4;
      b.wasm.attention(q + row, qPos + 4 * t, pool[0]!, pool[1]!, outs[3]! + row, cache, 1, S, H, Hkv, D, scale, table, shift, state, 0, H);
    }
    assert.deepEqual(b.f32(outs[1]!, n * H * D), b.f32(outs[0]!, n * H * D), what);
    assert.deepEqual(b.f32(outs[3]!, n * H * D), b.f32(outs[0]!, n * H * D), `${what}: one query at a time`);
    assertClose(b.f32(outs[1]!, n * H * D), b.f32(outs[2]!, n * H * D), 2e-6, what);
  }
});

test('flash prefill (multi-query form): odd chunk and cache lengths, GQA 1/3/4, both SIMD builds, head slices keep to their own score buffers', (t) => {
  const plain = createWasmKernels(kernelModule('simd'), b.memory);
  const relaxed = kernelBuild() === 'relaxed' ? createWasmKernels(kernelModule('relaxed'), b.memory) : undefined;
  if (!relaxed) t.diagnostic('this engine does not run relaxed SIMD: plain build only');
  // [H, Hkv, D, n (chunk), S (cache rows, not multiples of the 32/64-key tiles)]
  const cases: [number, number, number, number, number][] = [[4, 4, 64, 13, 1001], [9, 3, 64, 37, 333], [8, 2, 128, 9, 515], [12, 3, 48, 5, 97], [6, 6, 6, 7, 70]];
  for (const cache of ['f32', 'f16'] as const) {
    for (const [H, Hkv, D, n, S] of cases) {
      b.reset();
      const rand = rng(H * 1000 + n * 7 + S);
      const es = cache === 'f16' ? 2 : 4, count = S * Hkv * D;
      const q = b.alloc(n * H * D * 4), qPos = b.alloc(n * 4), k = b.alloc(count * es), v = b.alloc(count * es);
      b.f32(q, n * H * D).set(randomF32(rand, n * H * D, 2));
      b.i32(qPos, n).set(Array.from({ length: n }, (_, i) => S - n + i)); // the chunk's last query sees every row
      for (const [p, scale] of [[k, 2], [v, 3]] as const) {
        const x = randomF32(rand, count, scale);
        if (cache === 'f16') b.u16(p, count).set(toF16Bits(x)); else b.f32(p, count).set(x);
      }
      const stateBytes = attentionStateBytes(n, H, Hkv, D, S), state = b.alloc(stateBytes);
      const outs = [0, 1, 2, 3].map(() => b.alloc(n * H * D * 4));
      const scale = 1 / Math.sqrt(D), what = `flash ${cache} H=${H} Hkv=${Hkv} D=${D} chunk=${n} S=${S}`;
      b.ref.attention(q, qPos, k, v, outs[0]!, cache, n, S, H, Hkv, D, scale, 0, 0, 0, 0, H);
      for (let t = 0; t < n; t++) { // one query at a time
        const row = t * H * D * 4;
        plain.attention(q + row, qPos + 4 * t, k, v, outs[1]! + row, cache, 1, S, H, Hkv, D, scale, 0, 0, state, 0, H);
      }
      // two head slices, as two threads would run them (the second starts inside a GQA group when Hkv < H)
      const cut = Math.ceil(H / 2);
      b.u8(state, stateBytes).fill(0xab);
      plain.attention(q, qPos, k, v, outs[2]!, cache, n, S, H, Hkv, D, scale, 0, 0, state, cut, H);
      // the slice [cut, H) used only its own score buffer (buffer `cut`); buffers 0 … cut − 1 are the other slice's
      const first = (state + n * H * 8 + 15) & ~15, perHead = attentionBlockRows(n, H, Hkv) * (ATTENTION_TILE * 8 + D * 4), others = b.u8(first, cut * perHead);
      assert.ok(others.every((x) => x === 0xab), `${what}: slice [${cut}, ${H}) wrote into slice 0's score buffers`);
      plain.attention(q, qPos, k, v, outs[2]!, cache, n, S, H, Hkv, D, scale, 0, 0, state, 0, cut);
      // f32 sums over up to 1001 keys against the reference's f64: looser than the 300-key cases above
      assertClose(b.f32(outs[1]!, n * H * D), b.f32(outs[0]!, n * H * D), 1e-5, what);
      assert.deepEqual(b.f32(outs[2]!, n * H * D), b.f32(outs[1]!, n * H * D), `${what}: several queries differ from one query at a time`);
      if (relaxed) {
        // the relaxed build fuses its multiply-adds (kernels/attention.ts madd): close, not the same bits
        relaxed.attention(q, qPos, k, v, outs[3]!, cache, n, S, H, Hkv, D, scale, 0, 0, state, 0, H);
        assertClose(b.f32(outs[3]!, n * H * D), b.f32(outs[0]!, n * H * D), 1e-5, `${what}: relaxed build`);
        const one = b.alloc(H * D * 4);
        relaxed.attention(q + (n - 1) * H * D * 4, qPos + 4 * (n - 1), k, v, one, cache, 1, S, H, Hkv, D, scale, 0, 0, state, 0, H);
        assert.deepEqual(b.f32(one, H * D), b.f32(outs[3]! + (n - 1) * H * D * 4, H * D), `${what}: relaxed build, last query alone differs`);
      }
    }
  }
});
