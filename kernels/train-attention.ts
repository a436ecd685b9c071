// Causal multi-head attention for training, forward and backward (FlashAttention-2's recomputation:
// the forward saves only the row log-sum-exp, the backward recomputes p_ij = e^{s_ij − lse_i}).
// One sequence:  q (T, H, D), k/v (T, Hkv, D), out (T, H, D), lse (T, H);
// query head h reads KV head h / (H / Hkv); token i attends to keys j <= i. SIMD over D.
// Contract and plain-TypeScript twin: src/training/train-kernels.ts, src/training/kernels-reference.ts.

import { expS, hsum } from './vector';

@inline function dot(a: usize, b: usize, D: i32): f32 {
  const D4 = D & ~3;
  let acc = f32x4.splat(0);
  for (let d = 0; d < D4; d += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>d << 2)), v128.load(b + (<usize>d << 2))));
  let s = hsum(acc);
  for (let d = D4; d < D; d++) s += load<f32>(a + (<usize>d << 2)) * load<f32>(b + (<usize>d << 2));
  return s;
}

/** y (D) = y·a + x·b. */
@inline function axpby(y: usize, a: f32, x: usize, b: f32, D: i32): void {
  const D4 = D & ~3;
  const av = f32x4.splat(a), bv = f32x4.splat(b);
  for (let d = 0; d < D4; d += 4) {
    const p = y + (<usize>d << 2);
    v128.store(p, f32x4.add(f32x4.mul(v128.load(p), av), f32x4.mul(v128.load(x + (<usize>d << 2)), bv)));
  }
  for (let d = D4; d < D; d++) {
    const p = y + (<usize>d << 2);
    store<f32>(p, load<f32>(p) * a + load<f32>(x + (<usize>d << 2)) * b);
  }
}

export function trainAttnForward(q: usize, k: usize, v: usize, out: usize, lse: usize,
                                 T: i32, H: i32, Hkv: i32, D: i32, scale: f32, h0: i32, h1: i32): void {
  const group = H / Hkv;
  const qRow = <usize>H * <usize>D << 2, kvRow = <usize>Hkv * <usize>D << 2, hb = <usize>D << 2;
  for (let h = h0; h < h1; h++) {
    const ko = <usize>(h / group) * hb;
    for (let i = 0; i < T; i++) {
      const qp = q + <usize>i * qRow + <usize>h * hb, op = out + <usize>i * qRow + <usize>h * hb;
      for (let d = 0; d < D; d++) store<f32>(op + (<usize>d << 2), 0);
      let m: f32 = -Infinity, l: f32 = 0;
      // online softmax (Milakov & Gimelshein 2018): the output row is the rescaled accumulator
      for (let j = 0; j <= i; j++) {
        const s = dot(qp, k + <usize>j * kvRow + ko, D) * scale;
        const mNew = max<f32>(m, s);
        const corr = expS(m - mNew), p = expS(s - mNew);
        l = l * corr + p;
        m = mNew;
        axpby(op, corr, v + <usize>j * kvRow + ko, p, D);
      }
      const inv: f32 = 1.0 / l;
      axpby(op, inv, op, 0, D);
      store<f32>(lse + ((<usize>i * <usize>H + <usize>h) << 2), m + Mathf.log(l));
    }
  }
}

export function trainAttnBackward(q: usize, k: usize, v: usize, out: usize, dout: usize, lse: usize,
                                  dq: usize, dk: usize, dv: usize,
                                  T: i32, H: i32, Hkv: i32, D: i32, scale: f32, g0: i32, g1: i32): void {
  const group = H / Hkv;
  const qRow = <usize>H * <usize>D << 2, kvRow = <usize>Hkv * <usize>D << 2, hb = <usize>D << 2;
  for (let g = g0; g < g1; g++) {
    const ko = <usize>g * hb;
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let i = 0; i < T; i++) {
        const qo = <usize>i * qRow + <usize>h * hb;
        const qp = q + qo, dop = dout + qo, dqp = dq + qo;
        const delta = dot(dop, out + qo, D);
        const li = load<f32>(lse + ((<usize>i * <usize>H + <usize>h) << 2));
        for (let j = 0; j <= i; j++) {
          const kp = k + <usize>j * kvRow + ko, vp = v + <usize>j * kvRow + ko;
          const p = expS(dot(qp, kp, D) * scale - li);
          const ds = p * (dot(dop, vp, D) - delta) * scale;
          axpby(dqp, 1, kp, ds, D);
          axpby(dk + <usize>j * kvRow + ko, 1, qp, ds, D);
          axpby(dv + <usize>j * kvRow + ko, 1, dop, p, D);
        }
      }
    }
  }
}
