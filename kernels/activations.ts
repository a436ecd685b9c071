// Elementwise kernels and softmax. All buffers f32.

import { expV, hmax, hsum } from './vector';

/** dst (count) = silu(gate) ⊙ up, silu(g) = g / (1 + e^−g); dst may be gate. */
@inline function siluMulTo(gate: usize, up: usize, dst: usize, count: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const o = <usize>i << 2;
    const g = v128.load(gate + o);
    v128.store(dst + o, f32x4.mul(f32x4.div(g, f32x4.add(one, expV(f32x4.neg(g)))), v128.load(up + o)));
  }
  for (; i < count; i++) {
    const o = <usize>i << 2;
    const g = f32x4.splat(load<f32>(gate + o));
    const s = f32x4.extract_lane(f32x4.div(g, f32x4.add(one, expV(f32x4.neg(g)))), 0);
    store<f32>(dst + o, s * load<f32>(up + o));
  }
}

/** gate (count) = silu(gate) ⊙ up. */
export function siluMul(gate: usize, up: usize, count: i32): void {
  siluMulTo(gate, up, gate, count);
}

/** out (n, F) = silu(gu[:, :F]) ⊙ gu[:, F:] for the stacked gate|up rows gu (n, 2F): siluMul
 *  without first splitting the rows into two buffers; the same bits. */
export function siluMulStacked(gu: usize, out: usize, n: i32, F: i32): void {
  const row = <usize>F << 2;
  for (let t = 0; t < n; t++) siluMulTo(gu + 2 * row * t, gu + 2 * row * t + row, out + row * t, F);
}

// gelu_tanh(g) = 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³))), tanh(z) = 1 − 2/(e^{2z} + 1) (saturates
// to ±1 without NaN because expV saturates to 0 / +inf).
@inline function geluV(g: v128): v128 {
  const z = f32x4.mul(f32x4.mul(g, f32x4.splat(0.7978845608028654)),
                      f32x4.add(f32x4.splat(1), f32x4.mul(f32x4.splat(0.044715), f32x4.mul(g, g))));
  const e = expV(f32x4.add(z, z));
  const th = f32x4.sub(f32x4.splat(1), f32x4.div(f32x4.splat(2), f32x4.add(e, f32x4.splat(1))));
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), g), f32x4.add(f32x4.splat(1), th));
}

/** dst (count) = gelu_tanh(gate) ⊙ up; dst may be gate. */
@inline function geluMulTo(gate: usize, up: usize, dst: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.mul(geluV(v128.load(gate + o)), v128.load(up + o)));
  }
  for (; i < count; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, f32x4.extract_lane(geluV(f32x4.splat(load<f32>(gate + o))), 0) * load<f32>(up + o));
  }
}

/** gate (count) = gelu_tanh(gate) ⊙ up. */
export function geluMul(gate: usize, up: usize, count: i32): void {
  geluMulTo(gate, up, gate, count);
}

/** out (n, F) = gelu_tanh(gu[:, :F]) ⊙ gu[:, F:] (as siluMulStacked). */
export function geluMulStacked(gu: usize, out: usize, n: i32, F: i32): void {
  const row = <usize>F << 2;
  for (let t = 0; t < n; t++) geluMulTo(gu + 2 * row * t, gu + 2 * row * t + row, out + row * t, F);
}

/** y (count) += x (count). */
export function add(y: usize, x: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), v128.load(x + o)));
  }
  for (; i < count; i++) { const o = <usize>i << 2; store<f32>(y + o, load<f32>(y + o) + load<f32>(x + o)); }
}

/** y (rows, cols) += bias (cols), broadcast over rows. */
export function addBias(y: usize, bias: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) add(y + <usize>r * (<usize>cols << 2), bias, cols);
}

/** In place softmax over each of the n rows of length len; a row of only −inf becomes zeros. */
export function softmax(x: usize, n: i32, len: i32): void {
  const row = <usize>len << 2;
  for (let t = 0; t < n; t++) {
    const p = x + <usize>t * row;
    let mv = f32x4.splat(-Infinity);
    let i = 0;
    for (; i + 4 <= len; i += 4) mv = f32x4.max(mv, v128.load(p + (<usize>i << 2)));
    let m = hmax(mv);
    for (; i < len; i++) m = max<f32>(m, load<f32>(p + (<usize>i << 2)));
    if (m == -Infinity) { memory.fill(p, 0, row); continue; }
    const ms = f32x4.splat(m);
    let sv = f32x4.splat(0);
    i = 0;
    for (; i + 4 <= len; i += 4) {
      const e = expV(f32x4.sub(v128.load(p + (<usize>i << 2)), ms));
      v128.store(p + (<usize>i << 2), e);
      sv = f32x4.add(sv, e);
    }
    let s = hsum(sv);
    for (; i < len; i++) {
      const e = f32x4.extract_lane(expV(f32x4.splat(load<f32>(p + (<usize>i << 2)) - m)), 0);
      store<f32>(p + (<usize>i << 2), e);
      s += e;
    }
    const inv = f32x4.splat(1.0 / s);
    i = 0;
    for (; i + 4 <= len; i += 4) v128.store(p + (<usize>i << 2), f32x4.mul(v128.load(p + (<usize>i << 2)), inv));
    for (; i < len; i++) store<f32>(p + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) / s);
  }
}
