// SimHash codes of cached key rows for MagicPIG's hash tables (PAPERS.md §1, "SimHash").
// R holds K·L hash directions as rows (KL, D) f32; table l uses directions l·K … l·K+K−1 and its
// bucket id packs their sign bits (bit b from direction l·K + b) into [0, 2^K).
// Keys are *centered* by the mean μ of the tabled keys: sign((k − μ)·r_j) = [k·r_j > μ·r_j], so the
// caller passes rmu (KL) = R·μ and the kernel never materialises k − μ.
//   x      (rows, rowStride bytes) f32 or f16 key rows (one KV head's slice of each cache row)
//   codes  (L, codeStride) u16, token r goes to column r − i0
//   norms  (rows) f32, norms[r] = |x_r − μ| (used for the sampling probability's cosine)
// Tokens [r0, r1) are hashed: the pool splits a build over tokens.

import { hsum, hsum4, loadF16x4 } from './vector';

@inline function ld(p: usize, f16: bool): v128 {
  return f16 ? loadF16x4(p) : v128.load(p);
}

@inline function lshAny(x: usize, f16: bool, rowStride: i32, mu: usize, R: usize, rmu: usize, D: i32, K: i32, L: i32,
                        codes: usize, codeStride: i32, norms: usize, i0: i32, r0: i32, r1: i32): void {
  const es: usize = f16 ? 2 : 4;
  const rowB = <usize>D << 2;
  let r = r0;
  // Four tokens at a time: each direction row is loaded once for four dot products.
  for (; r + 4 <= r1; r += 4) {
    const x0 = x + <usize>r * <usize>rowStride, x1 = x0 + <usize>rowStride, x2 = x1 + <usize>rowStride, x3 = x2 + <usize>rowStride;
    for (let l = 0; l < L; l++) {
      let code = i32x4.splat(0);
      for (let b = 0; b < K; b++) {
        const j = l * K + b;
        const rp = R + <usize>j * rowB;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let d = 0; d < D; d += 4) {
          const rv = v128.load(rp + (<usize>d << 2)), o = <usize>d * es;
          a0 = f32x4.add(a0, f32x4.mul(rv, ld(x0 + o, f16)));
          a1 = f32x4.add(a1, f32x4.mul(rv, ld(x1 + o, f16)));
          a2 = f32x4.add(a2, f32x4.mul(rv, ld(x2 + o, f16)));
          a3 = f32x4.add(a3, f32x4.mul(rv, ld(x3 + o, f16)));
        }
        const gt = f32x4.gt(hsum4(a0, a1, a2, a3), f32x4.splat(load<f32>(rmu + (<usize>j << 2))));
        code = v128.or(code, v128.and(gt, i32x4.splat(1 << b)));
      }
      const cp = codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1);
      store<u16>(cp, <u16>i32x4.extract_lane(code, 0));
      store<u16>(cp + 2, <u16>i32x4.extract_lane(code, 1));
      store<u16>(cp + 4, <u16>i32x4.extract_lane(code, 2));
      store<u16>(cp + 6, <u16>i32x4.extract_lane(code, 3));
    }
    centeredNorm(x0, f16, mu, D, norms + (<usize>r << 2));
    centeredNorm(x1, f16, mu, D, norms + (<usize>(r + 1) << 2));
    centeredNorm(x2, f16, mu, D, norms + (<usize>(r + 2) << 2));
    centeredNorm(x3, f16, mu, D, norms + (<usize>(r + 3) << 2));
  }
  for (; r < r1; r++) {
    const x0 = x + <usize>r * <usize>rowStride;
    for (let l = 0; l < L; l++) {
      let code: i32 = 0;
      for (let b = 0; b < K; b++) {
        const j = l * K + b;
        const rp = R + <usize>j * rowB;
        let a = f32x4.splat(0);
        for (let d = 0; d < D; d += 4) a = f32x4.add(a, f32x4.mul(v128.load(rp + (<usize>d << 2)), ld(x0 + <usize>d * es, f16)));
        if (hsum(a) > load<f32>(rmu + (<usize>j << 2))) code |= 1 << b;
      }
      store<u16>(codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1), <u16>code);
    }
    centeredNorm(x0, f16, mu, D, norms + (<usize>r << 2));
  }
}

@inline function centeredNorm(xp: usize, f16: bool, mu: usize, D: i32, dst: usize): void {
  const es: usize = f16 ? 2 : 4;
  let a = f32x4.splat(0);
  for (let d = 0; d < D; d += 4) {
    const c = f32x4.sub(ld(xp + <usize>d * es, f16), v128.load(mu + (<usize>d << 2)));
    a = f32x4.add(a, f32x4.mul(c, c));
  }
  store<f32>(dst, Mathf.sqrt(hsum(a)));
}

/** See the file header. D must be a multiple of 4. */
export function lshCodes(x: usize, f16: i32, rowStride: i32, mu: usize, R: usize, rmu: usize, D: i32, K: i32, L: i32,
                         codes: usize, codeStride: i32, norms: usize, i0: i32, r0: i32, r1: i32): void {
  if (f16 != 0) lshAny(x, true, rowStride, mu, R, rmu, D, K, L, codes, codeStride, norms, i0, r0, r1);
  else lshAny(x, false, rowStride, mu, R, rmu, D, K, L, codes, codeStride, norms, i0, r0, r1);
}
