// Normalisations over the last dimension. x, y (n, dim) f32; w, b (dim) f32; y may equal x.

import { hsum } from './vector';

/** Σ x² over dim floats at p. */
@inline function sumSquares(p: usize, dim: i32): f32 {
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let c = 0;
  for (; c + 8 <= dim; c += 8) {
    const v0 = v128.load(p + (<usize>c << 2)), v1 = v128.load(p + (<usize>c << 2), 16);
    a0 = f32x4.add(a0, f32x4.mul(v0, v0));
    a1 = f32x4.add(a1, f32x4.mul(v1, v1));
  }
  for (; c + 4 <= dim; c += 4) {
    const v0 = v128.load(p + (<usize>c << 2));
    a0 = f32x4.add(a0, f32x4.mul(v0, v0));
  }
  let s = hsum(f32x4.add(a0, a1));
  for (; c < dim; c++) { const v = load<f32>(p + (<usize>c << 2)); s += v * v; }
  return s;
}

/** y = (x + shift) · scale ⊙ w (+ b when b != 0), dim floats. */
@inline function scaleRow(x: usize, w: usize, b: usize, y: usize, dim: i32, shift: f32, scale: f32): void {
  const sh = f32x4.splat(shift), sc = f32x4.splat(scale);
  let c = 0;
  for (; c + 4 <= dim; c += 4) {
    const o = <usize>c << 2;
    let v = f32x4.mul(f32x4.mul(f32x4.add(v128.load(x + o), sh), sc), v128.load(w + o));
    if (b != 0) v = f32x4.add(v, v128.load(b + o));
    v128.store(y + o, v);
  }
  for (; c < dim; c++) {
    const o = <usize>c << 2;
    let v = (load<f32>(x + o) + shift) * scale * load<f32>(w + o);
    if (b != 0) v += load<f32>(b + o);
    store<f32>(y + o, v);
  }
}

/** y (n, dim) = x / sqrt(mean(x²) + eps) ⊙ w. */
export function rmsNorm(x: usize, w: usize, y: usize, n: i32, dim: i32, eps: f32): void {
  const row = <usize>dim << 2;
  for (let t = 0; t < n; t++) {
    const xp = x + <usize>t * row;
    const scale: f32 = 1.0 / Mathf.sqrt(sumSquares(xp, dim) / <f32>dim + eps);
    scaleRow(xp, w, 0, y + <usize>t * row, dim, 0, scale);
  }
}

/** y (n, dim) = (x − mean) / sqrt(var + eps) ⊙ w (+ b if b != 0). */
export function layerNorm(x: usize, w: usize, b: usize, y: usize, n: i32, dim: i32, eps: f32): void {
  const row = <usize>dim << 2;
  for (let t = 0; t < n; t++) {
    const xp = x + <usize>t * row;
    let a = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= dim; c += 4) a = f32x4.add(a, v128.load(xp + (<usize>c << 2)));
    let s = hsum(a);
    for (; c < dim; c++) s += load<f32>(xp + (<usize>c << 2));
    const mean = s / <f32>dim;
    // Two-pass variance: Σ (x − mean)², stable when |mean| >> std.
    const m = f32x4.splat(mean);
    a = f32x4.splat(0);
    c = 0;
    for (; c + 4 <= dim; c += 4) { const d = f32x4.sub(v128.load(xp + (<usize>c << 2)), m); a = f32x4.add(a, f32x4.mul(d, d)); }
    let v = hsum(a);
    for (; c < dim; c++) { const d = load<f32>(xp + (<usize>c << 2)) - mean; v += d * d; }
    const scale: f32 = 1.0 / Mathf.sqrt(v / <f32>dim + eps);
    scaleRow(xp, w, b, y + <usize>t * row, dim, -mean, scale);
  }
}
