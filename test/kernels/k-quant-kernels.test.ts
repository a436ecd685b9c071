// K-quant kernels (kernels/matmul-kquant.ts): the SIMD build against the plain-TypeScript twin —
// q8_K activation quantisation and dequantisation byte for byte, matmul on odd sizes — and the
// matmul's integer formulation against a float64 dot product of the dequantised operands.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dequantizeK, quantizeToK, K_BLOCK_BYTES, Q8_K_BYTES, type KQuantType } from '../../src/kernels/k-quants.js';
import { activationBytes, weightBytes } from '../../src/kernels/types.js';
import { assertBytesEqual, assertClose, makeBench, randomF32, rng, type Bench } from './harness.js';

const TYPES: KQuantType[] = ['q4_k', 'q5_k', 'q6_k'];
const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../../test/fixtures/k-quants/ggml-blocks.json', import.meta.url)), 'utf8')) as
  { input: string; types: Record<string, { blocks: string }> };
const fixtureInput = ((b) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4))(new Uint8Array(Buffer.from(fixture.input, 'base64')));

test('quantizeQ8K is byte-identical to the reference (zero, constant, tie and llama.cpp fixture blocks)', () => {
  const b = makeBench(64);
  const special = new Float32Array(1024);
  special.fill(0, 0, 256);                                               // all zero: d = 0
  special.fill(-0.75, 256, 512);                                         // constant
  special.set(randomF32(rng(3), 256, 2), 512);
  special[512] = -127; special[513] = 2.5; special[514] = 3.5; special[515] = -2.5; special[516] = 0.5; // iscale = 1: exact ties
  special.set(randomF32(rng(4), 256, 1e-3), 768);
  for (const v of [special, fixtureInput, randomF32(rng(5), 2560, 30)]) {
    b.reset();
    const count = v.length;
    const x = b.alloc(count * 4), qr = b.alloc(activationBytes('q8_K', count)), qw = b.alloc(activationBytes('q8_K', count));
    b.f32(x, count).set(v);
    b.ref.quantizeQ8K(x, qr, count);
    b.wasm.quantizeQ8K(x, qw, count);
    assertBytesEqual(b.u8(qw, activationBytes('q8_K', count)), b.u8(qr, activationBytes('q8_K', count)), `quantizeQ8K count=${count}`);
    if (v === special) assert.deepEqual([...new Int8Array(b.memory.buffer, qr + 2 * Q8_K_BYTES + 4, 5)], [-127, 2, 4, -2, 0], 'ties round to even');
  }
});

test('toF32 of q4_k/q5_k/q6_k: SIMD build equals the reference bit for bit', () => {
  const b = makeBench(64);
  for (const type of TYPES) {
    for (const blocks of [new Uint8Array(Buffer.from(fixture.types[type.replace('k', 'K')]!.blocks, 'base64')), quantizeToK(type, randomF32(rng(9), 768, 2))]) {
      b.reset();
      const count = (blocks.length / K_BLOCK_BYTES[type]) * 256;
      const src = b.alloc(blocks.length), dr = b.alloc(count * 4), dw = b.alloc(count * 4);
      b.u8(src, blocks.length).set(blocks);
      b.ref.toF32(type, src, dr, count);
      b.wasm.toF32(type, src, dw, count);
      assertBytesEqual(b.u8(dw, count * 4), b.u8(dr, count * 4), `toF32 ${type} count=${count}`);
    }
  }
});

/** Random weights (rows, cols) of `type` and q8_K activations (n, cols) in memory. */
function setup(b: Bench, type: KQuantType, rows: number, cols: number, n: number, seed: number) {
  b.reset();
  const rand = rng(seed);
  const values = randomF32(rand, rows * cols);
  for (let i = 0; i < values.length; i += 97) values[i] *= 6; // outliers: uneven sub-block scales
  const wBytes = quantizeToK(type, values);
  const w = b.alloc(wBytes.length);
  b.u8(w, wBytes.length).set(wBytes);
  const xf = b.alloc(n * cols * 4);
  b.f32(xf, n * cols).set(randomF32(rand, n * cols, 2));
  const xq = b.alloc(activationBytes('q8_K', n * cols));
  b.ref.quantizeQ8K(xf, xq, n * cols);
  return { w, wBytes, xq };
}

test('matmul q4_k/q5_k/q6_k: SIMD build equals the reference bit for bit on odd sizes and row ranges', () => {
  const b = makeBench(256);
  let seed = 300;
  for (const type of TYPES) {
    for (const [rows, cols, n, r0, r1] of [[1, 256, 1, 0, 1], [3, 512, 2, 0, 3], [17, 768, 5, 3, 12], [5, 2560, 9, 0, 5], [2, 256, 1, 1, 2], [9, 512, 7, 2, 8]]) {
      const { w, xq } = setup(b, type, rows!, cols!, n!, seed++);
      const yRef = b.alloc(n! * rows! * 4), yWasm = b.alloc(n! * rows! * 4);
      b.f32(yRef, n! * rows!).fill(12345);
      b.f32(yWasm, n! * rows!).fill(12345);
      b.ref.matmul(type, w, xq, yRef, n!, rows!, cols!, r0!, r1!);
      b.wasm.matmul(type, w, xq, yWasm, n!, rows!, cols!, r0!, r1!);
      const what = `${type} rows=${rows} cols=${cols} n=${n} [${r0},${r1})`;
      // identical integer super-block sums; only the f32 summation order differs
      // the same operations as the twin (exact integer sums per super-block, f32 terms summed in order)
      assert.deepEqual(b.f32(yWasm, n! * rows!), b.f32(yRef, n! * rows!), what);
      const Y = b.f32(yWasm, n! * rows!);
      for (let t = 0; t < n!; t++) for (let r = 0; r < rows!; r++) if (r < r0! || r >= r1!) assert.equal(Y[t * rows! + r], 12345, `${what}: row ${r} written`);
    }
  }
});

test('matmul q4_k/q5_k/q6_k: a token gives the same bits in a tile of several tokens as alone', () => {
  // prefill runs tiles of one row × 4 tokens (the weights unpacked once for the tile); each token's
  // arithmetic must stay the one-token kernel's (batched decode and speculation rely on it)
  const b = makeBench(64);
  for (const type of TYPES) {
    const rows = 5, cols = 512, n = 7;
    const { w, xq } = setup(b, type, rows, cols, n, 31);
    const all = b.alloc(n * rows * 4), one = b.alloc(rows * 4), xRow = activationBytes('q8_K', cols);
    b.wasm.matmul(type, w, xq, all, n, rows, cols, 0, rows);
    for (let t = 0; t < n; t++) {
      b.wasm.matmul(type, w, xq + t * xRow, one, 1, rows, cols, 0, rows);
      assert.deepEqual(b.f32(all + t * rows * 4, rows), b.f32(one, rows), `${type} token ${t} of ${n}`);
    }
  }
});

test('matmul q4_k/q5_k/q6_k equals a float64 dot of the dequantised weights and activations', () => {
  const b = makeBench(64);
  for (const type of TYPES) {
    const rows = 7, cols = 1024, n = 3;
    const { w, wBytes, xq } = setup(b, type, rows, cols, n, 77);
    const W = dequantizeK(type, wBytes, rows * cols);
    // q8_K activations: x = d·q
    const X = new Float64Array(n * cols);
    const dv = new DataView(b.memory.buffer, xq, activationBytes('q8_K', n * cols));
    for (let blk = 0; blk < (n * cols) / 256; blk++) {
      const d = dv.getFloat32(blk * Q8_K_BYTES, true);
      for (let i = 0; i < 256; i++) X[blk * 256 + i] = d * dv.getInt8(blk * Q8_K_BYTES + 4 + i);
    }
    const y = b.alloc(n * rows * 4);
    b.wasm.matmul(type, w, xq, y, n, rows, cols, 0, rows);
    const want = new Float64Array(n * rows);
    for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += W[r * cols + c]! * X[t * cols + c]!;
      want[t * rows + r] = s;
    }
    // the kernel scales exact integer sums once per super-block; the dequantised form rounds
    // d·sc·q − dmin·m per value, so they agree to f32 rounding of those terms
    assertClose(b.f32(y, n * rows), want, 1e-5, `${type} vs float64`);
    assert.equal(weightBytes(type, rows * cols), wBytes.length);
  }
});
