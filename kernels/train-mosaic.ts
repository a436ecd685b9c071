// Memory Mosaic training kernel: backward of the strictly causal read-out
// y_t = Σ_{s<t} softmax_s(k_t·k_s) v_s (src/mosaic/readout.ts has the contract and the TypeScript twin).
// One sequence: k, v, y, g (= dL/dy), gk, gv are (T, H·hs) f32 rows; heads [h0, h1); gk and gv are
// ACCUMULATED (+=). scratch holds T + hs f32 (the softmax row and the query-gradient accumulator).
// Per position t ≥ 1: p = softmax(k_t·k_s, s < t); D = g_t·y_t; z_s = p_s (g_t·v_s − D);
// gk_t += Σ z_s k_s; gk_s += z_s k_t; gv_s += p_s g_t.

import { expS, hsum } from './vector';

@inline function dot(a: usize, b: usize, n: i32): f32 {
  const n4 = n & ~3;
  let acc = f32x4.splat(0);
  for (let j = 0; j < n4; j += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>j << 2)), v128.load(b + (<usize>j << 2))));
  let s = hsum(acc);
  for (let j = n4; j < n; j++) s += load<f32>(a + (<usize>j << 2)) * load<f32>(b + (<usize>j << 2));
  return s;
}

/** dst (n) += a · src (n). */
@inline function axpy(dst: usize, a: f32, src: usize, n: i32): void {
  const n4 = n & ~3;
  const av = f32x4.splat(a);
  for (let j = 0; j < n4; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, f32x4.add(v128.load(dst + o), f32x4.mul(av, v128.load(src + o))));
  }
  for (let j = n4; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(dst + o) + a * load<f32>(src + o));
  }
}

export function mosaicReadoutBackward(k: usize, v: usize, y: usize, g: usize, gk: usize, gv: usize, scratch: usize,
                                      T: i32, H: i32, hs: i32, h0: i32, h1: i32, wantK: i32, wantV: i32): void {
  const row = <usize>(H * hs) << 2;
  const p = scratch, acc = scratch + (<usize>T << 2);
  for (let h = h0; h < h1; h++) {
    const c = <usize>(h * hs) << 2;
    for (let t = 1; t < T; t++) {
      const qt = k + <usize>t * row + c, gt = g + <usize>t * row + c;
      let m: f32 = -Infinity;
      for (let s = 0; s < t; s++) {
        const sc = dot(qt, k + <usize>s * row + c, hs);
        store<f32>(p + (<usize>s << 2), sc);
        m = max<f32>(m, sc);
      }
      let z: f32 = 0;
      for (let s = 0; s < t; s++) {
        const e = expS(load<f32>(p + (<usize>s << 2)) - m);
        store<f32>(p + (<usize>s << 2), e);
        z += e;
      }
      const inv: f32 = 1.0 / z;
      const D = dot(gt, y + <usize>t * row + c, hs);
      for (let j = 0; j < hs; j++) store<f32>(acc + (<usize>j << 2), 0);
      for (let s = 0; s < t; s++) {
        const ps = load<f32>(p + (<usize>s << 2)) * inv;
        const off = <usize>s * row + c;
        if (wantV) axpy(gv + off, ps, gt, hs);
        if (wantK) {
          const zs = ps * (dot(gt, v + off, hs) - D);
          axpy(acc, zs, k + off, hs);
          axpy(gk + off, zs, qt, hs);
        }
      }
      if (wantK) axpy(gk + <usize>t * row + c, 1, acc, hs);
    }
  }
}
