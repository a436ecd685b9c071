// SimHash codes of cached key rows for MagicPIG's hash tables (PAPERS.md §1, "SimHash").
// R holds K·L hash directions as rows (KL, D) f32; table l uses directions l·K … l·K+K−1 and its
// bucket id packs their sign bits (bit b from direction l·K + b) into [0, 2^K).
// Keys are *centered* by the mean μ of the tabled keys: bit = [(k − μ)·r_j > 0].
//   x      (rows, rowStride bytes) f32 or f16 key rows (one KV head's slice of each cache row)
//   codes  (L, codeStride) u16, token r goes to column r − i0
//   norms  (rows) f32, norms[r] = |x_r − μ| (used for the sampling probability's cosine)
//   xs     scratch, (r1 − i0)·D f32 of it; this call uses rows [r0 − i0, r1 − i0) only
// Tokens [r0, r1) are hashed (the pool splits a build over tokens); i0 is the first token of the call.
//
// Two paths, the same codes:
//  - integer filter (D % 8 == 0 and the scratch slice holds R's i16 copy): R and every centered key
//    are quantised to i16 (R to ±8191, a key to ±QX with its own scale), and x·r is estimated with
//    i32x4.dot_i16x8_s — 8 multiply-adds per instruction where f32 SIMD does 4. The estimate's error
//    is bounded per (token, direction): |x·r − sx·sr·acc| ≤ sx·sr·(|x|₁/2sx + |r|₁/2sr + D/4), so
//    when |acc| exceeds that bound the sign is the exact sign of x·r; otherwise (≈0.5% of the dot
//    products) the f32 dot decides, as on the plain path. The bound is exact integer arithmetic on
//    the accumulator (|acc| ≤ D·QX·8191 < 2^31), so no code depends on rounding luck.
//  - plain f32: centered rows written to xs, four tokens per direction row.

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

/** See the file header. D must be a multiple of 4. */
export function lshCodes(x: usize, f16: i32, rowStride: i32, mu: usize, R: usize, xs: usize, D: i32, K: i32, L: i32,
                         codes: usize, codeStride: i32, norms: usize, i0: i32, r0: i32, r1: i32): void {
  const n = r1 - r0, KL = K * L, base = xs + (<usize>(r0 - i0) * <usize>D << 2);
  if (D % 8 == 0 && D <= 256 && n >= 4 && filterBytes(KL, D, n) <= <usize>n * <usize>D * 4) {
    filtered(x, f16 != 0, rowStride, mu, R, base, D, K, L, codes, codeStride, norms, i0, r0, r1);
    return;
  }
  plain(x, f16, rowStride, mu, R, xs, D, K, L, codes, codeStride, norms, i0, r0, r1);
}

function plain(x: usize, f16: i32, rowStride: i32, mu: usize, R: usize, xs: usize, D: i32, K: i32, L: i32,
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

// ---- integer filter path -------------------------------------------------------------------------

const QR: f32 = 8191;   // R quantised to [−8191, 8191]

/** Largest key quantisation level with D·QX·QR < 2^31 (the i32 accumulator cannot overflow). */
@inline function qx(D: i32): f32 {
  return <f32>min<i32>(2047, <i32>(2147483647 / (<i64>D * 8191)) - 1);
}

@inline function align16(b: usize): usize { return (b + 15) & ~<usize>15; }

/** Scratch bytes of the filter path: R as i16 (KL, D), per-token bounds (n) i32, keys as i16 (n, D). */
@inline function filterBytes(KL: i32, D: i32, n: i32): usize {
  return align16(<usize>KL * <usize>D * 2) + align16(<usize>n * 4) + <usize>n * <usize>D * 2;
}

@inline function ihsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/** Four f32 → four i32, round to nearest even (|v| ≤ 2^31 here). */
@inline function roundI(v: v128): v128 { return i32x4.trunc_sat_f32x4_s(f32x4.nearest(v)); }

/** f32 (x_r − μ)·R[j], the tie-breaker for the dot products the integer bound cannot decide. */
function exactDot(xp: usize, f16: bool, mu: usize, rp: usize, D: i32): f32 {
  let a = f32x4.splat(0);
  const es: usize = f16 ? 2 : 4;
  for (let d = 0; d < D; d += 4) {
    const c = f32x4.sub(ld(xp + <usize>d * es, f16), v128.load(mu + (<usize>d << 2)));
    a = f32x4.add(a, f32x4.mul(c, v128.load(rp + (<usize>d << 2))));
  }
  return hsum(a);
}

/** Sign masks (−1 where x·r > 0) of four tokens' estimates acc against their bounds ±B; the lanes
 *  the bound cannot decide get the f32 dot of their row x0 + lane·rowStride with direction fp. */
@inline function decide(acc: v128, B: v128, nB: v128, x0: usize, rowStride: i32, f16: bool, mu: usize, fp: usize, D: i32): v128 {
  let pos = i32x4.gt_s(acc, B);
  const sure = v128.or(pos, i32x4.lt_s(acc, nB));
  if (!i32x4.all_true(sure)) {
    const unsure = v128.not(sure);
    const rs = <usize>rowStride;
    if (i32x4.extract_lane(unsure, 0) != 0) pos = i32x4.replace_lane(pos, 0, exactDot(x0, f16, mu, fp, D) > 0 ? -1 : 0);
    if (i32x4.extract_lane(unsure, 1) != 0) pos = i32x4.replace_lane(pos, 1, exactDot(x0 + rs, f16, mu, fp, D) > 0 ? -1 : 0);
    if (i32x4.extract_lane(unsure, 2) != 0) pos = i32x4.replace_lane(pos, 2, exactDot(x0 + 2 * rs, f16, mu, fp, D) > 0 ? -1 : 0);
    if (i32x4.extract_lane(unsure, 3) != 0) pos = i32x4.replace_lane(pos, 3, exactDot(x0 + 3 * rs, f16, mu, fp, D) > 0 ? -1 : 0);
  }
  return pos;
}

function filtered(x: usize, f16: bool, rowStride: i32, mu: usize, R: usize, base: usize, D: i32, K: i32, L: i32,
                  codes: usize, codeStride: i32, norms: usize, i0: i32, r0: i32, r1: i32): void {
  const KL = K * L, n = r1 - r0, es: usize = f16 ? 2 : 4, rowB = <usize>D << 2, qRow = <usize>D << 1;
  const Rq = base, bounds = base + align16(<usize>KL * <usize>D * 2), Xq = bounds + align16(<usize>n * 4);
  // R → i16 with one scale sr = max|R| / QR; rMax1 = max_j |r_j|₁ (for the bound).
  let mx = f32x4.splat(0);
  for (let i: usize = 0; i < <usize>KL * <usize>D; i += 4) mx = f32x4.max(mx, f32x4.abs(v128.load(R + (i << 2))));
  const rAbs = max<f32>(max<f32>(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max<f32>(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
  const invR: f32 = rAbs > 0 ? QR / rAbs : 1;
  const ivR = f32x4.splat(invR);
  let rMax1: f32 = 0;
  for (let j = 0; j < KL; j++) {
    const rp = R + <usize>j * rowB, qp = Rq + <usize>j * qRow;
    let s1 = f32x4.splat(0);
    for (let d = 0; d < D; d += 8) {
      const a = v128.load(rp + (<usize>d << 2)), b = v128.load(rp + (<usize>d << 2) + 16);
      s1 = f32x4.add(s1, f32x4.add(f32x4.abs(a), f32x4.abs(b)));
      v128.store(qp + (<usize>d << 1), i16x8.narrow_i32x4_s(roundI(f32x4.mul(a, ivR)), roundI(f32x4.mul(b, ivR))));
    }
    rMax1 = max<f32>(rMax1, hsum(s1));
  }
  // Keys: center, norm, per-token scale, i16 copy and integer bound
  // B = 1.01·(|x|₁·inv/2 + |r|₁max·invR/2 + D/4) + 2 in units of 1/(inv·invR).
  const QX = qx(D), bR: f32 = rMax1 * invR * 0.5 + <f32>D * 0.25;
  for (let r = r0; r < r1; r++) {
    const xp = x + <usize>r * <usize>rowStride;
    let sq = f32x4.splat(0), ab = f32x4.splat(0), m = f32x4.splat(0);
    for (let d = 0; d < D; d += 4) {
      const c = f32x4.sub(ld(xp + <usize>d * es, f16), v128.load(mu + (<usize>d << 2)));
      sq = f32x4.add(sq, f32x4.mul(c, c));
      ab = f32x4.add(ab, f32x4.abs(c));
      m = f32x4.max(m, f32x4.abs(c));
    }
    store<f32>(norms + (<usize>r << 2), Mathf.sqrt(hsum(sq)));
    const xAbs = max<f32>(max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max<f32>(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const inv: f32 = xAbs > 0 ? QX / xAbs : 1, iv = f32x4.splat(inv);
    const qp = Xq + <usize>(r - r0) * qRow;
    for (let d = 0; d < D; d += 8) {
      const a = f32x4.sub(ld(xp + <usize>d * es, f16), v128.load(mu + (<usize>d << 2)));
      const b = f32x4.sub(ld(xp + <usize>(d + 4) * es, f16), v128.load(mu + (<usize>(d + 4) << 2)));
      v128.store(qp + (<usize>d << 1), i16x8.narrow_i32x4_s(roundI(f32x4.mul(a, iv)), roundI(f32x4.mul(b, iv))));
    }
    store<i32>(bounds + (<usize>(r - r0) << 2), <i32>Mathf.ceil(1.01 * (hsum(ab) * inv * 0.5 + bR)) + 2);
  }
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const q0 = Xq + <usize>(r - r0) * qRow, q1 = q0 + qRow, q2 = q1 + qRow, q3 = q2 + qRow;
    const B = v128.load(bounds + (<usize>(r - r0) << 2)), nB = i32x4.neg(B);
    const xr = x + <usize>r * <usize>rowStride;
    for (let l = 0; l < L; l++) {
      let code = i32x4.splat(0), b = 0;
      // two directions at a time: each key vector loaded once for two dot products
      for (; b + 2 <= K; b += 2) {
        const j = l * K + b, rp = Rq + <usize>j * qRow, rp2 = rp + qRow;
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        let c0 = i32x4.splat(0), c1 = i32x4.splat(0), c2 = i32x4.splat(0), c3 = i32x4.splat(0);
        for (let d = 0; d < D; d += 8) {
          const o = <usize>d << 1, rv = v128.load(rp + o), rw = v128.load(rp2 + o);
          const v0 = v128.load(q0 + o), v1 = v128.load(q1 + o), v2 = v128.load(q2 + o), v3 = v128.load(q3 + o);
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(rv, v0)); c0 = i32x4.add(c0, i32x4.dot_i16x8_s(rw, v0));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(rv, v1)); c1 = i32x4.add(c1, i32x4.dot_i16x8_s(rw, v1));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(rv, v2)); c2 = i32x4.add(c2, i32x4.dot_i16x8_s(rw, v2));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(rv, v3)); c3 = i32x4.add(c3, i32x4.dot_i16x8_s(rw, v3));
        }
        code = v128.or(code, v128.and(decide(ihsum4(a0, a1, a2, a3), B, nB, xr, rowStride, f16, mu, R + <usize>j * rowB, D), i32x4.splat(1 << b)));
        code = v128.or(code, v128.and(decide(ihsum4(c0, c1, c2, c3), B, nB, xr, rowStride, f16, mu, R + <usize>(j + 1) * rowB, D), i32x4.splat(2 << b)));
      }
      for (; b < K; b++) {
        const j = l * K + b, rp = Rq + <usize>j * qRow;
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        for (let d = 0; d < D; d += 8) {
          const rv = v128.load(rp + (<usize>d << 1)), o = <usize>d << 1;
          a0 = i32x4.add(a0, i32x4.dot_i16x8_s(rv, v128.load(q0 + o)));
          a1 = i32x4.add(a1, i32x4.dot_i16x8_s(rv, v128.load(q1 + o)));
          a2 = i32x4.add(a2, i32x4.dot_i16x8_s(rv, v128.load(q2 + o)));
          a3 = i32x4.add(a3, i32x4.dot_i16x8_s(rv, v128.load(q3 + o)));
        }
        code = v128.or(code, v128.and(decide(ihsum4(a0, a1, a2, a3), B, nB, xr, rowStride, f16, mu, R + <usize>j * rowB, D), i32x4.splat(1 << b)));
      }
      const cp = codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1);
      store<u16>(cp, <u16>i32x4.extract_lane(code, 0));
      store<u16>(cp + 2, <u16>i32x4.extract_lane(code, 1));
      store<u16>(cp + 4, <u16>i32x4.extract_lane(code, 2));
      store<u16>(cp + 6, <u16>i32x4.extract_lane(code, 3));
    }
  }
  for (; r < r1; r++) {                                  // the last < 4 tokens: one at a time
    const q0 = Xq + <usize>(r - r0) * qRow, B = load<i32>(bounds + (<usize>(r - r0) << 2));
    for (let l = 0; l < L; l++) {
      let code: i32 = 0;
      for (let b = 0; b < K; b++) {
        const j = l * K + b, rp = Rq + <usize>j * qRow;
        let a = i32x4.splat(0);
        for (let d = 0; d < D; d += 8) a = i32x4.add(a, i32x4.dot_i16x8_s(v128.load(rp + (<usize>d << 1)), v128.load(q0 + (<usize>d << 1))));
        const acc = i32x4.extract_lane(a, 0) + i32x4.extract_lane(a, 1) + i32x4.extract_lane(a, 2) + i32x4.extract_lane(a, 3);
        const pos = acc > B || (acc >= -B && exactDot(x + <usize>r * <usize>rowStride, f16, mu, R + <usize>j * rowB, D) > 0);
        if (pos) code |= 1 << b;
      }
      store<u16>(codes + ((<usize>l * <usize>codeStride + <usize>(r - i0)) << 1), <u16>code);
    }
  }
}
