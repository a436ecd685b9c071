// SimHash codes of cached key rows for MagicPIG's hash tables (PAPERS.md §1, "SimHash").
// R holds K·L hash directions as rows (KL, D) f32; table l uses directions l·K … l·K+K−1 and its
// bucket id packs their sign bits (bit b from direction l·K + b) into [0, 2^K).
// Keys are *centered* by the mean μ of the tabled keys: bit = [(k − μ)·r_j > 0]; the centered rows
// are written once to the scratch xs (f32) and hashed from there.
//   x      (rows, rowStride bytes) f32 or f16 key rows (one KV head's slice of each cache row)
//   codes  (L, codeStride) u16, token r goes to column r − i0
//   norms  (rows) f32, norms[r] = |x_r − μ| (used for the sampling probability's cosine)
// Tokens [r0, r1) are hashed (the pool splits a build over tokens); i0 is the first token of the call
// (codes column 0, xs row 0).

import { hsum, hsum4, loadF16x4 } from './vector';

@inline function ld(p: usize, f16: bool): v128 {
  return f16 ? loadF16x4(p) : v128.load(p);
}

// Centers rows [r0, r1) into xs (f32, row r at xs + (r − c0)·D) and writes their norms: the f16 →
// f32 conversion then happens once per key instead of once per (key, direction).
@inline function center(x: usize, f16: bool, rowStride: i32, mu: usize, D: i32, xs: usize, c0: i32, norms: usize, r0: i32, r1: i32): void {
  const es: usize = f16 ? 2 : 4;
  for (let r = r0; r < r1; r++) {
    const xp = x + <usize>r * <usize>rowStride, dst = xs + (<usize>(r - c0) * <usize>D << 2);
    let a = f32x4.splat(0);
    for (let d = 0; d < D; d += 4) {
      const c = f32x4.sub(ld(xp + <usize>d * es, f16), v128.load(mu + (<usize>d << 2)));
      v128.store(dst + (<usize>d << 2), c);
      a = f32x4.add(a, f32x4.mul(c, c));
    }
    store<f32>(norms + (<usize>r << 2), Mathf.sqrt(hsum(a)));
  }
}

/** See the file header. D must be a multiple of 4; xs is scratch for rows [c0, …) as f32. */
export function lshCodes(x: usize, f16: i32, rowStride: i32, mu: usize, R: usize, xs: usize, D: i32, K: i32, L: i32,
                         codes: usize, codeStride: i32, norms: usize, i0: i32, r0: i32, r1: i32): void {
  const c0 = i0;
  if (f16 != 0) center(x, true, rowStride, mu, D, xs, c0, norms, r0, r1);
  else center(x, false, rowStride, mu, D, xs, c0, norms, r0, r1);
  const rowB = <usize>D << 2;
  let r = r0;
  // Four tokens at a time: each direction row is loaded once for four dot products.
  for (; r + 4 <= r1; r += 4) {
    const x0 = xs + <usize>(r - c0) * rowB, x1 = x0 + rowB, x2 = x1 + rowB, x3 = x2 + rowB;
    for (let l = 0; l < L; l++) {
      let code = i32x4.splat(0);
      for (let b = 0; b < K; b++) {
        const rp = R + <usize>(l * K + b) * rowB;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let d = 0; d < D; d += 4) {
          const rv = v128.load(rp + (<usize>d << 2)), o = <usize>d << 2;
          a0 = f32x4.add(a0, f32x4.mul(rv, v128.load(x0 + o)));
          a1 = f32x4.add(a1, f32x4.mul(rv, v128.load(x1 + o)));
          a2 = f32x4.add(a2, f32x4.mul(rv, v128.load(x2 + o)));
          a3 = f32x4.add(a3, f32x4.mul(rv, v128.load(x3 + o)));
        }
        const gt = f32x4.gt(hsum4(a0, a1, a2, a3), f32x4.splat(0));
        code = v128.or(code, v128.and(gt, i32x4.splat(1 << b)));
      }
      const cp = codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1);
      store<u16>(cp, <u16>i32x4.extract_lane(code, 0));
      store<u16>(cp + 2, <u16>i32x4.extract_lane(code, 1));
      store<u16>(cp + 4, <u16>i32x4.extract_lane(code, 2));
      store<u16>(cp + 6, <u16>i32x4.extract_lane(code, 3));
    }
  }
  for (; r < r1; r++) {
    const x0 = xs + <usize>(r - c0) * rowB;
    for (let l = 0; l < L; l++) {
      let code: i32 = 0;
      for (let b = 0; b < K; b++) {
        const rp = R + <usize>(l * K + b) * rowB;
        let a = f32x4.splat(0);
        for (let d = 0; d < D; d += 4) a = f32x4.add(a, f32x4.mul(v128.load(rp + (<usize>d << 2)), v128.load(x0 + (<usize>d << 2))));
        if (hsum(a) > 0) code |= 1 << b;
      }
      store<u16>(codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1), <u16>code);
    }
  }
}
