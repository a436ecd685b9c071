// The oracle itself, against hand-computed values and published bit patterns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ToF32, dequantize, f16ToF32, f32ToBF16, f32ToF16, quantizeToQ4_0, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import { makeBench, randomF32, rng } from './harness.js';
import { attentionStateBytes } from '../../src/kernels/types.js';

test('f16ToF32 decodes known bit patterns (IEEE 754 binary16)', () => {
  const cases: [number, number][] = [
    [0x3c00, 1], [0xc000, -2], [0x7bff, 65504], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24],
    [0x0400, 2 ** -14], [0x3555, 0.333251953125], [0x8000, -0], [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  for (const [h, v] of cases) assert.ok(Object.is(f16ToF32(h), v), `0x${h.toString(16)} -> ${f16ToF32(h)}, expected ${v}`);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
});

test('f32ToF16 round-trips every finite f16 and rounds midpoints to even', () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(f32ToF16(f16ToF32(h)), h, `0x${h.toString(16)}`);
  }
  // Midpoints between consecutive positive f16 values go to the even neighbour.
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2;
    if (Math.fround(mid) !== mid) continue; // not representable in f32: not a tie
    assert.equal(f32ToF16(mid), h & 1 ? h + 1 : h, `midpoint above 0x${h.toString(16)}`);
  }
  assert.equal(f32ToF16(65520), 0x7c00, '65520 rounds to inf');
  assert.equal(f32ToF16(65519.99), 0x7bff);
  assert.equal(f32ToF16(2 ** -25), 0, 'half the smallest subnormal ties to 0');
  assert.equal(f32ToF16(3 * 2 ** -26), 0x0001);
  assert.equal(f32ToF16(-1e-10), 0x8000);
  assert.equal(f32ToF16(0.1), 0x2e66);
});

test('bf16 conversions', () => {
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc040), -3);
  assert.equal(f32ToBF16(1 + 2 ** -8), 0x3f80, 'tie to even (down)');
  assert.equal(f32ToBF16(1 + 3 * 2 ** -8), 0x3f82, 'tie to even (up)');
  assert.equal(f32ToBF16(Math.PI), 0x4049);
});

test('q4_0 quantiser matches llama.cpp on a hand-computed block', () => {
  // Values j − 8 for j = 0..15, twice: max (largest |x|, signed) = −8, d = −8/−8 = 1, q = trunc(x + 8.5) = j.
  const src = new Float32Array(32);
  for (let j = 0; j < 32; j++) src[j] = (j % 16) - 8;
  const block = quantizeToQ4_0(src);
  assert.deepEqual([...block.subarray(0, 2)], [0x00, 0x3c], 'd = 1.0 as f16');
  for (let j = 0; j < 16; j++) assert.equal(block[2 + j], j | (j << 4), `byte ${j}`);
  assert.deepEqual([...dequantize('q4_0', block, 32)], [...src]);
  // A positive extreme: max = 8 -> d = −1; x = −8 -> x·id + 8.5 = 16.5 -> clamped to 15 -> value −7.
  const src2 = new Float32Array(32);
  src2[0] = 8; src2[1] = -8;
  const b2 = quantizeToQ4_0(src2);
  assert.equal(f16ToF32(b2[0]! | (b2[1]! << 8)), -1);
  assert.deepEqual([...dequantize('q4_0', b2, 32).subarray(0, 3)].map((v) => v + 0), [8, -7, 0]); // 0·(−1) = −0
});

test('q8_0 / q4_0 round trips stay within half a step (q8_0) and one step (q4_0)', () => {
  const src = randomF32(rng(3), 32 * 50, 5);
  src.fill(0, 0, 32); // zero block -> d = 0 -> exact zeros
  const q8 = quantizeToQ8_0(src), q4 = quantizeToQ4_0(src);
  const d8 = dequantize('q8_0', q8, src.length), d4 = dequantize('q4_0', q4, src.length);
  for (let b = 0; b < 50; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[b * 32 + j]!));
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      // d = amax/127 (stored as f16, relative error 2^-11 times |q| <= 127 steps).
      assert.ok(Math.abs(d8[i]! - src[i]!) <= (amax / 127) * (0.5 + 127 * 2 ** -11) + 1e-12, `q8_0 ${i}`);
      assert.ok(Math.abs(d4[i]! - src[i]!) <= (amax / 8) * (1 + 8 * 2 ** -11) + 1e-12, `q4_0 ${i}`);
    }
  }
  assert.ok(d8.subarray(0, 32).every((x) => x === 0) && d4.subarray(0, 32).every((x) => x === 0));
});

test('reference rmsNorm of [1, 2, 3] and layerNorm of [1, 2, 3]', () => {
  const b = makeBench(2);
  const x = b.alloc(12), w = b.alloc(12), y = b.alloc(12);
  b.f32(x, 3).set([1, 2, 3]);
  b.f32(w, 3).set([1, 1, 2]);
  b.ref.rmsNorm(x, w, y, 1, 3, 0);
  const s = 1 / Math.sqrt(14 / 3);
  const got = b.f32(y, 3);
  [1 * s, 2 * s, 6 * s].forEach((e, i) => assert.ok(Math.abs(got[i]! - e) < 1e-6, `rms ${i}`));
  b.ref.layerNorm(x, w, 0, y, 1, 3, 0);
  const l = Math.sqrt(1.5); // (x − 2) / sqrt(2/3)
  [-l, 0, 2 * l].forEach((e, i) => assert.ok(Math.abs(got[i]! - e) < 1e-6, `layer ${i}`));
});

test('reference rope rotates a known vector; neox == normal under the GGUF Q/K row permutation', () => {
  const b = makeBench(2);
  // One head, D = 2, pos 1, invFreq π/2: (1, 0) -> (cos π/2, sin π/2) = (0, 1).
  const x = b.alloc(8), pos = b.alloc(4), inv = b.alloc(4);
  b.f32(x, 2).set([1, 0]);
  b.i32(pos, 1)[0] = 1;
  b.f32(inv, 1)[0] = Math.PI / 2;
  b.ref.rope(x, pos, inv, 1, 1, 2, 'normal');
  assert.ok(Math.abs(b.f32(x, 2)[0]!) < 1e-7 && Math.abs(b.f32(x, 2)[1]! - 1) < 1e-7);

  // llama.cpp's convert permutes each head's rows so that HF element i -> 2i and i + D/2 -> 2i + 1;
  // then rope 'normal' on the permuted vector equals rope 'neox' on the original, permuted.
  const D = 16, heads = 2, n = 2;
  const hf = randomF32(rng(9), n * heads * D);
  const perm = new Float32Array(hf.length);
  for (let r = 0; r < n * heads; r++) {
    for (let i = 0; i < D / 2; i++) { perm[r * D + 2 * i] = hf[r * D + i]!; perm[r * D + 2 * i + 1] = hf[r * D + i + D / 2]!; }
  }
  const pn = b.alloc(n * 4), fr = b.alloc(D * 2);
  b.i32(pn, n).set([3, 1000]);
  for (let i = 0; i < D / 2; i++) b.f32(fr, D / 2)[i] = 10000 ** (-(2 * i) / D);
  for (const k of [b.ref, b.wasm]) {
    const xa = b.alloc(hf.length * 4), xb = b.alloc(hf.length * 4);
    b.f32(xa, hf.length).set(hf);
    b.f32(xb, hf.length).set(perm);
    k.rope(xa, pn, fr, n, heads, D, 'neox');
    k.rope(xb, pn, fr, n, heads, D, 'normal');
    const A = b.f32(xa, hf.length), B = b.f32(xb, hf.length);
    for (let r = 0; r < n * heads; r++) {
      for (let i = 0; i < D / 2; i++) {
        assert.equal(B[r * D + 2 * i], A[r * D + i]);
        assert.equal(B[r * D + 2 * i + 1], A[r * D + i + D / 2]);
      }
    }
  }
});

test('reference softmax and attention on tiny hand cases', () => {
  const b = makeBench(2);
  const x = b.alloc(12);
  b.f32(x, 3).set([0, Math.log(3), -Infinity]);
  b.ref.softmax(x, 1, 3);
  const p = b.f32(x, 3);
  assert.ok(Math.abs(p[0]! - 0.25) < 1e-7 && Math.abs(p[1]! - 0.75) < 1e-7 && p[2] === 0);
  // Two keys with scores 0 and ln 3 (q·k with scale 1): out = 0.25·v0 + 0.75·v1.
  const q = b.alloc(8), pos = b.alloc(4), k = b.alloc(16), v = b.alloc(16), out = b.alloc(8), state = b.alloc(attentionStateBytes(1, 1, 1, 2, 2));
  b.f32(q, 2).set([1, 0]);
  b.i32(pos, 1)[0] = 1;
  b.f32(k, 4).set([0, 5, Math.log(3), 7]);
  b.f32(v, 4).set([4, 8, 0, 4]);
  for (const kk of [b.ref, b.wasm]) {
    kk.attention(q, pos, k, v, out, 'f32', 1, 2, 1, 1, 2, 1, 0, 0, state, 0, 1);
    const o = b.f32(out, 2);
    assert.ok(Math.abs(o[0]! - 1) < 1e-6 && Math.abs(o[1]! - 5) < 1e-6, `got ${o}`);
  }
});
