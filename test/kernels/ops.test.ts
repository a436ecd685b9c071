// Elementwise, normalisation, rope, softmax and conversion kernels: SIMD build against the reference.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f16ToF32, quantizeToQ4_0, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import type { WeightDType } from '../../src/kernels/types.js';
import { activationBytes, weightBytes } from '../../src/kernels/types.js';
import { assertBytesEqual, assertClose, makeBench, randomF32, rng, toBF16Bits, toF16Bits } from './harness.js';

const b = makeBench(64);

test('quantizeQ8 is bit-identical to the reference (incl. ties, zero and constant blocks)', () => {
  for (const count of [32, 96, 4032]) {
    b.reset();
    const rand = rng(count);
    const x = b.alloc(count * 4), qr = b.alloc(activationBytes('q8_0', count)), qw = b.alloc(activationBytes('q8_0', count));
    const v = randomF32(rand, count, 3);
    v.fill(0, 0, 32); // an all-zero block: d = 0, id = 0
    if (count >= 96) { v.fill(0.5, 32, 64); v[64] = 127; v[65] = 2.5; v[66] = -2.5; v[67] = 0.5; v[68] = -1.5; } // d = 1: exact ties
    b.f32(x, count).set(v);
    b.ref.quantizeQ8(x, qr, count);
    b.wasm.quantizeQ8(x, qw, count);
    assertBytesEqual(b.u8(qw, activationBytes('q8_0', count)), b.u8(qr, activationBytes('q8_0', count)), `quantizeQ8 count=${count}`);
    if (count >= 96) {
      const q = new Int8Array(b.memory.buffer, qr + 2 * 34 + 2, 5);
      assert.deepEqual([...q], [127, 3, -3, 1, -2], 'roundf rounds ties away from zero');
    }
  }
});

test('quantizeQ8 in block ranges (threads sharing one call) writes the bytes of one call, sums and padding included; a bad range is refused', () => {
  b.reset();
  const count = 40 * 32, bytes = activationBytes('q8_0', count);
  const x = b.alloc(count * 4), whole = b.alloc(bytes), parts = b.alloc(bytes);
  b.f32(x, count).set(randomF32(rng(41), count, 3));
  for (const k of [b.ref, b.wasm]) {
    k.quantizeQ8(x, whole, count);
    b.u8(parts, bytes).fill(0xa5);                      // what a slice leaves unwritten would show
    for (const [b0, b1] of [[17, 40], [0, 5], [5, 5], [5, 17]]) k.quantizeQ8(x, parts, count, b0, b1);
    assertBytesEqual(b.u8(parts, bytes), b.u8(whole, bytes), 'quantizeQ8 in four ranges vs one call');
    assert.throws(() => k.quantizeQ8(x, parts, count, 3, 41), /quantizeQ8: blocks \[3, 41\) are not a range inside the 40 blocks/);
    assert.throws(() => k.quantizeQ8(x, parts, count, 5, 4), /not a range/);
    assert.throws(() => k.quantizeQ8(x, parts, 100), /not a range inside the 3.125 blocks of 100 values/);
  }
});

test('quantizeQ8 rounds every value next to a half-integer like roundf (d = 1: blocks holding 127)', () => {
  b.reset();
  // k + 0.5 and its f32 neighbours, k + 0.49999997, and small fractions, both signs, for k in 0..126
  const vals: number[] = [];
  const next = (x: number, dir: number) => { const f = new Float32Array([x]), u = new Int32Array(f.buffer); u[0]! += dir; return f[0]!; };
  for (let k = 0; k < 127; k++) {
    for (const x of [k + 0.5, next(k + 0.5, 1), next(k + 0.5, -1), k + 0.49999997, k + 1e-6, k + 0.75]) vals.push(x, -x);
  }
  const blocks = Math.ceil(vals.length / 31), count = blocks * 32, v = new Float32Array(count);
  for (let i = 0; i < blocks; i++) { v[i * 32] = 127; v.set(vals.slice(i * 31, i * 31 + 31), i * 32 + 1); }
  const x = b.alloc(count * 4), qr = b.alloc(activationBytes('q8_0', count)), qw = b.alloc(activationBytes('q8_0', count));
  b.f32(x, count).set(v);
  b.ref.quantizeQ8(x, qr, count);
  b.wasm.quantizeQ8(x, qw, count);
  assertBytesEqual(b.u8(qw, activationBytes('q8_0', count)), b.u8(qr, activationBytes('q8_0', count)), 'quantizeQ8 near half-integers');
});

test('storeRows f16 gives the reference\'s bits for every f16 value, every midpoint between two and its f32 neighbours', () => {
  const big = makeBench(64);
  const vals: number[] = [NaN, -NaN, 1e-40, -1e-40, 2 ** -14, 2 ** -14 - 2 ** -25, 6.1035e-5];
  const f32 = new Float32Array(1), u32 = new Int32Array(f32.buffer);
  const near = (x: number, dir: number) => { f32[0] = x; u32[0]! += dir; return f32[0]!; };
  for (let h = 0; h < 0x7c00; h++) {
    const lo = f16ToF32(h), mid = (lo + f16ToF32(h + 1)) / 2;
    for (const x of [lo, mid, near(mid, 1), near(mid, -1)]) vals.push(x, -x);
  }
  const n = vals.length + 5; // not a multiple of the kernel's 8 lanes
  const v = new Float32Array(n);
  v.set(vals);
  const src = big.alloc(n * 4), dr = big.alloc(n * 2), dw = big.alloc(n * 2);
  big.f32(src, n).set(v);
  big.ref.storeRows('f16', src, dr, n);
  big.wasm.storeRows('f16', src, dw, n);
  assertBytesEqual(big.u16(dw, n), big.u16(dr, n), 'storeRows f16, exhaustive');
});

test('toF32 of every dtype matches the reference exactly', () => {
  for (const dtype of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as WeightDType[]) {
    for (const count of dtype.startsWith('q') ? [32, 96, 4032] : [1, 7, 33, 130]) {
      b.reset();
      const v = randomF32(rng(count), count, 4);
      if (dtype === 'f16' && count > 7) { v[0] = 2 ** -24; v[1] = -3 * 2 ** -20; v[2] = 65504; v[3] = -0; } // subnormals, max
      const src = b.alloc(weightBytes(dtype, count));
      const bytes = dtype === 'f32' ? new Uint8Array(v.buffer) : dtype === 'f16' ? new Uint8Array(toF16Bits(v).buffer)
        : dtype === 'bf16' ? new Uint8Array(toBF16Bits(v).buffer) : dtype === 'q8_0' ? quantizeToQ8_0(v) : quantizeToQ4_0(v);
      b.u8(src, bytes.length).set(bytes);
      const dr = b.alloc(count * 4), dw = b.alloc(count * 4);
      b.ref.toF32(dtype, src, dr, count);
      b.wasm.toF32(dtype, src, dw, count);
      assertBytesEqual(b.u8(dw, count * 4), b.u8(dr, count * 4), `toF32 ${dtype} count=${count}`);
    }
  }
});

test('storeRows f16 rounds like the reference (ties to even, overflow, subnormals)', () => {
  b.reset();
  const special = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -25, 3 * 2 ** -26, 2 ** -26,
    5.960464477539063e-8, 6.1e-5, -0, 0, Infinity, -Infinity, 1 / 3, -2 / 3];
  const v = new Float32Array([...special, ...randomF32(rng(5), 130, 100)]);
  const src = b.alloc(v.length * 4), dr = b.alloc(v.length * 2), dw = b.alloc(v.length * 2);
  b.f32(src, v.length).set(v);
  b.ref.storeRows('f16', src, dr, v.length);
  b.wasm.storeRows('f16', src, dw, v.length);
  assertBytesEqual(b.u16(dw, v.length), b.u16(dr, v.length), 'storeRows f16');
  const f32dst = b.alloc(v.length * 4);
  b.wasm.storeRows('f32', src, f32dst, v.length);
  assertBytesEqual(b.f32(f32dst, v.length), v, 'storeRows f32');
});

test('rmsNorm and layerNorm match the reference (in place and out of place)', () => {
  for (const dim of [1, 7, 33, 130]) {
    for (const inPlace of [false, true]) {
      b.reset();
      const rand = rng(dim);
      const n = 3;
      const x = b.alloc(n * dim * 4), w = b.alloc(dim * 4), bias = b.alloc(dim * 4), keep = randomF32(rand, n * dim, 5);
      b.f32(w, dim).set(randomF32(rand, dim));
      b.f32(bias, dim).set(randomF32(rand, dim));
      const yr = b.alloc(n * dim * 4), yw = inPlace ? x : b.alloc(n * dim * 4);
      for (const kind of ['rms', 'layer', 'layer+bias'] as const) {
        b.f32(x, n * dim).set(keep);
        const run = (k: typeof b.ref, y: number): void => {
          if (kind === 'rms') k.rmsNorm(x, w, y, n, dim, 1e-5);
          else k.layerNorm(x, w, kind === 'layer' ? 0 : bias, y, n, dim, 1e-5);
        };
        run(b.ref, yr);
        run(b.wasm, yw);
        assertClose(b.f32(yw, n * dim), b.f32(yr, n * dim), 2e-6, `${kind} dim=${dim} inPlace=${inPlace}`);
      }
    }
  }
});

test('rope neox and normal match the reference, including large positions', () => {
  for (const D of [2, 6, 8, 10, 64, 128]) {
    for (const style of ['neox', 'normal'] as const) {
      b.reset();
      const rand = rng(D);
      const n = 5, heads = 3;
      const pos = b.alloc(n * 4);
      b.i32(pos, n).set([0, 1, 17, 4095, 131071]);
      const invFreq = b.alloc((D / 2) * 4);
      const inv = b.f32(invFreq, D / 2);
      for (let i = 0; i < D / 2; i++) inv[i] = 500000 ** (-(2 * i) / D);
      const v = randomF32(rand, n * heads * D);
      const xr = b.alloc(v.length * 4), xw = b.alloc(v.length * 4);
      b.f32(xr, v.length).set(v);
      b.f32(xw, v.length).set(v);
      b.ref.rope(xr, pos, invFreq, n, heads, D, style);
      b.wasm.rope(xw, pos, invFreq, n, heads, D, style);
      assertClose(b.f32(xw, v.length), b.f32(xr, v.length), 1e-6, `rope ${style} D=${D}`);
    }
  }
});

test('softmax matches the reference; all −inf rows give zeros', () => {
  for (const len of [1, 7, 33, 130]) {
    b.reset();
    const n = 4;
    const v = randomF32(rng(len), n * len, 30);
    v.fill(-Infinity, len, 2 * len); // row 1: fully masked
    for (let i = 0; i < len; i += 2) v[2 * len + i] = -Infinity; // row 2: partly masked
    v[3 * len] = -200; // row 3: one value far below the rest (exp underflows to 0, no NaN)
    const xr = b.alloc(v.length * 4), xw = b.alloc(v.length * 4);
    b.f32(xr, v.length).set(v);
    b.f32(xw, v.length).set(v);
    b.ref.softmax(xr, n, len);
    b.wasm.softmax(xw, n, len);
    assertClose(b.f32(xw, v.length), b.f32(xr, v.length), 2e-6, `softmax len=${len}`);
    assert.ok(b.f32(xw, v.length).subarray(len, 2 * len).every((e) => e === 0), 'masked row is zeros');
  }
});

test('siluMulStacked and geluMulStacked give siluMul\'s and geluMul\'s bits on split rows, and match the reference', () => {
  for (const [n, F] of [[1, 1], [1, 7], [3, 33], [5, 130]] as const) {
    b.reset();
    const rand = rng(n * 1000 + F);
    const gu = randomF32(rand, n * 2 * F, 12);
    gu[0] = 100; if (F > 1) gu[1] = -100;
    const src = b.alloc(n * 2 * F * 4), outW = b.alloc(n * F * 4), outR = b.alloc(n * F * 4);
    const gate = b.alloc(n * F * 4), up = b.alloc(n * F * 4);
    b.f32(src, n * 2 * F).set(gu);
    for (const op of ['silu', 'gelu'] as const) {
      for (let t = 0; t < n; t++) {
        b.f32(gate + t * F * 4, F).set(gu.subarray(2 * F * t, 2 * F * t + F));
        b.f32(up + t * F * 4, F).set(gu.subarray(2 * F * t + F, 2 * F * (t + 1)));
      }
      if (op === 'silu') { b.wasm.siluMulStacked(src, outW, n, F); b.ref.siluMulStacked(src, outR, n, F); b.wasm.siluMul(gate, up, n * F); }
      else { b.wasm.geluMulStacked(src, outW, n, F); b.ref.geluMulStacked(src, outR, n, F); b.wasm.geluMul(gate, up, n * F); }
      assertBytesEqual(b.f32(outW, n * F), b.f32(gate, n * F), `${op}MulStacked n=${n} F=${F} vs ${op}Mul`);
      assertClose(b.f32(outR, n * F), b.f32(outW, n * F), 2e-6, `${op}MulStacked n=${n} F=${F} reference`);
    }
    assertBytesEqual(b.f32(src, n * 2 * F), gu, 'the stacked input is left as it was');
  }
});

test('siluMul, geluMul, add and addBias match the reference', () => {
  for (const count of [1, 7, 33, 130]) {
    b.reset();
    const rand = rng(count);
    const g = randomF32(rand, count, 12), u = randomF32(rand, count, 2);
    if (count > 7) { g[0] = 100; g[1] = -100; g[2] = 0; g[3] = -90; g[4] = 1e-3; }
    for (const op of ['silu', 'gelu', 'add'] as const) {
      const gr = b.alloc(count * 4), gw = b.alloc(count * 4), up = b.alloc(count * 4);
      b.f32(gr, count).set(g);
      b.f32(gw, count).set(g);
      b.f32(up, count).set(u);
      if (op === 'silu') { b.ref.siluMul(gr, up, count); b.wasm.siluMul(gw, up, count); }
      else if (op === 'gelu') { b.ref.geluMul(gr, up, count); b.wasm.geluMul(gw, up, count); }
      else { b.ref.add(gr, up, count); b.wasm.add(gw, up, count); }
      assertClose(b.f32(gw, count), b.f32(gr, count), 2e-6, `${op} count=${count}`);
    }
    const rows = 3, yr = b.alloc(rows * count * 4), yw = b.alloc(rows * count * 4), bias = b.alloc(count * 4);
    const y = randomF32(rand, rows * count);
    b.f32(yr, rows * count).set(y);
    b.f32(yw, rows * count).set(y);
    b.f32(bias, count).set(u);
    b.ref.addBias(yr, bias, rows, count);
    b.wasm.addBias(yw, bias, rows, count);
    assertBytesEqual(b.f32(yw, rows * count), b.f32(yr, rows * count), `addBias cols=${count}`);
  }
});

test('toF32 f16 widens every finite f16 bit pattern exactly (sign, subnormals, ±0)', () => {
  const b = makeBench(16);
  const bits: number[] = [];
  for (let h = 0; h < 65536; h++) if ((h & 0x7c00) !== 0x7c00) bits.push(h); // skip inf/NaN
  const src = b.alloc(bits.length * 2), dr = b.alloc(bits.length * 4), dw = b.alloc(bits.length * 4);
  b.u16(src, bits.length).set(bits);
  b.ref.toF32('f16', src, dr, bits.length);
  b.wasm.toF32('f16', src, dw, bits.length);
  const r = b.f32(dr, bits.length), w = b.f32(dw, bits.length);
  for (let i = 0; i < bits.length; i++) {
    if (!Object.is(w[i], r[i])) assert.fail(`f16 0x${bits[i]!.toString(16)}: wasm ${w[i]} reference ${r[i]}`);
  }
  // three at a time: the kernel's scalar tail (loadF16), which the matmuls' block scales use too
  w.fill(12345);
  for (let i = 0; i < bits.length; i += 3) b.wasm.toF32('f16', src + 2 * i, dw + 4 * i, Math.min(3, bits.length - i));
  for (let i = 0; i < bits.length; i++) {
    if (!Object.is(w[i], r[i])) assert.fail(`f16 0x${bits[i]!.toString(16)} (scalar): wasm ${w[i]} reference ${r[i]}`);
  }
});
