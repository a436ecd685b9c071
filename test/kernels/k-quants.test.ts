// The K-quant block codecs (src/kernels/k-quants.ts) against llama.cpp's own routines: the fixture
// holds what libggml-base.so's quantize_row_q{4,5,6,8}_K_ref and dequantize_row_q{4,5,6}_K produced
// on eight awkward super-blocks (tools/reference/make-k-quant-fixtures.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dequantizeK, quantizeBlockQ8_K, quantizeToK, Q8_K_BYTES, type KQuantType } from '../../src/kernels/k-quants.js';

interface Fixture { input: string; types: Record<string, { blocks: string; dequantized?: string }> }
const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../../../test/fixtures/k-quants/ggml-blocks.json', import.meta.url)), 'utf8')) as Fixture;
const bytes = (b64: string): Uint8Array => new Uint8Array(Buffer.from(b64, 'base64'));
const f32s = (b64: string): Float32Array => { const b = bytes(b64); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
const input = f32s(fixture.input);
const TYPES: [KQuantType, string][] = [['q4_k', 'q4_K'], ['q5_k', 'q5_K'], ['q6_k', 'q6_K']];

/** Index of the first differing element, or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

for (const [type, ggml] of TYPES) {
  test(`${type}: dequantisation equals llama.cpp's dequantize_row_${ggml} bit for bit`, () => {
    const want = f32s(fixture.types[ggml]!.dequantized!);
    const got = dequantizeK(type, bytes(fixture.types[ggml]!.blocks), input.length);
    const i = firstDiff(got, want);
    assert.equal(i, -1, `value ${i} (block ${i >> 8}): ${got[i]} vs llama.cpp ${want[i]}`);
  });

  test(`${type}: the quantiser writes the bytes of llama.cpp's quantize_row_${ggml}_ref`, () => {
    const want = bytes(fixture.types[ggml]!.blocks);
    const got = quantizeToK(type, input);
    const i = firstDiff(got, want);
    assert.equal(i, -1, `byte ${i} (block ${Math.floor(i / (want.length / 8))}): ${got[i]} vs llama.cpp ${want[i]}`);
  });
}

test("q8_K: activation quantisation writes the bytes of llama.cpp's quantize_row_q8_K_ref", () => {
  const want = bytes(fixture.types.q8_K!.blocks);
  const got = new Uint8Array(want.length);
  for (let b = 0; b < input.length / 256; b++) quantizeBlockQ8_K(input, 256 * b, got, b * Q8_K_BYTES);
  for (let b = 0; b < input.length / 256; b++) {
    const o = b * Q8_K_BYTES;
    // an all-zero block: ggml leaves the bsums uninitialised (calloc'd zeros in the fixture)
    const i = firstDiff(got.subarray(o, o + Q8_K_BYTES), want.subarray(o, o + Q8_K_BYTES));
    assert.equal(i, -1, `block ${b} byte ${i}: ${got[o + i]} vs llama.cpp ${want[o + i]}`);
  }
});

test('K-quant codecs refuse lengths that are not whole super-blocks', () => {
  assert.throws(() => quantizeToK('q4_k', new Float32Array(255)), /255 is not a multiple of 256/);
  assert.throws(() => dequantizeK('q6_k', new Uint8Array(209), 256), /fewer than 1 blocks of 210/);
});
