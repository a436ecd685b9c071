// Quantisation and widening: X -> q8_0 blocks (activations before a quantised matmul), any weight
// dtype -> f32 (dequantisation), f32 -> cache dtype (K/V append). Block layouts as in matmul-quant.ts.
// quantizeQ8 follows llama.cpp's quantize_row_q8_0_ref: d = amax/127, id = 1/d (0 if d == 0),
// q = roundf(x·id) (half away from zero), d stored as f16.

import { F16_REBIAS, loadF16, loadF16x4, loadBF16x4, f32ToF16Bits } from './vector';

/** roundf on four lanes (half away from zero), for |v| < 2^23 or ±inf or NaN, still as f32 except for
 *  the final truncation, which the caller's conversion does: v + copysign(0.49999997, v) rounds (in
 *  f32) to a value whose truncation is roundf(v) — at most 2^-25 below the next integer when v's
 *  fraction is ≥ 0.5 (its spacing there is ≥ 2^-24, ties to even reach the integer), and at most
 *  1 − 2^-24 (representable, so below the next integer) when it is < 0.5. */
@inline function roundAwayBiased(v: v128): v128 {
  return f32x4.add(v, v128.or(f32x4.splat(0.49999997), v128.and(v, i32x4.splat(0x80000000))));
}

/** Where q8_0 activations' block sums start (src/kernels/types.ts q8BlockSumsOffset): after the nb
 *  blocks of 34 bytes, rounded up to 16. */
@inline export function q8BlockSums(xq: usize, nb: i32): usize {
  return xq + ((<usize>nb * 34 + 15) & ~<usize>15);
}

/** i32 Σ of the eight i16 lanes of v. */
@inline function sumI16x8(v: v128): i32 {
  const s = i32x4.extadd_pairwise_i16x8_s(v), t = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
}

/** xq (count/32 blocks of 34 bytes) = q8_0 of x (count f32), zeros up to q8BlockSums, then per block
 *  16 bytes: the i32 Σq of its quants, its d × 2^112 as f32 (exact and finite for every finite f16; the x4
 *  kernels' weight scales come as value × 2^-112, loadF16x4Scaled), the i32 Σ|q| of its negative quants, and the
 *  i32 8·Σq, q4_0's offset (activationBytes); count % 32 == 0. Only blocks [b0, b1) and their sums
 *  are written (the padding by the range that ends at the last block), so threads can share one
 *  call's blocks. */
export function quantizeQ8(x: usize, xq: usize, count: i32, b0: i32, b1: i32): void {
  const nb = count >> 5, sums = q8BlockSums(xq, nb), end = xq + <usize>nb * 34;
  if (b1 == nb) memory.fill(end, 0, sums - end); // the padding too: every byte of activationBytes defined
  for (let b = b0; b < b1; b++) {
    const xp = x + (<usize>b << 7), qp = xq + <usize>b * 34, sp = sums + (<usize>b << 4);
    // amax over the block as the largest |x| bit pattern (for non-negative floats the integer order
    // is the float order; a NaN's bits exceed inf's, so a NaN still wins), in a tree of i32x4.max_s
    const abs = i32x4.splat(0x7fffffff);
    const m0 = i32x4.max_s(v128.and(v128.load(xp), abs), v128.and(v128.load(xp, 16), abs));
    const m1 = i32x4.max_s(v128.and(v128.load(xp, 32), abs), v128.and(v128.load(xp, 48), abs));
    const m2 = i32x4.max_s(v128.and(v128.load(xp, 64), abs), v128.and(v128.load(xp, 80), abs));
    const m3 = i32x4.max_s(v128.and(v128.load(xp, 96), abs), v128.and(v128.load(xp, 112), abs));
    const m = i32x4.max_s(i32x4.max_s(m0, m1), i32x4.max_s(m2, m3));
    const h = i32x4.max_s(m, i32x4.shuffle(m, m, 2, 3, 0, 1));
    const d: f32 = reinterpret<f32>(max<i32>(i32x4.extract_lane(h, 0), i32x4.extract_lane(h, 1))) / 127.0;
    const id: f32 = d != 0 ? 1.0 / d : 0.0;
    store<u16>(qp, <u16>f32ToF16Bits(d));
    store<f32>(sp, loadF16(qp) * reinterpret<f32>(F16_REBIAS), 4);
    const idv = f32x4.splat(id);
    let qsum = i16x8.splat(0), nsum = i16x8.splat(0);
    for (let k: usize = 0; k < 2; k++) {
      const p = xp + (k << 6);
      const q0 = i32x4.trunc_sat_f32x4_s(roundAwayBiased(f32x4.mul(v128.load(p), idv)));
      const q1 = i32x4.trunc_sat_f32x4_s(roundAwayBiased(f32x4.mul(v128.load(p, 16), idv)));
      const q2 = i32x4.trunc_sat_f32x4_s(roundAwayBiased(f32x4.mul(v128.load(p, 32), idv)));
      const q3 = i32x4.trunc_sat_f32x4_s(roundAwayBiased(f32x4.mul(v128.load(p, 48), idv)));
      const q = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
      v128.store(qp + 2 + (k << 4), q);
      qsum = i16x8.add(qsum, i16x8.extadd_pairwise_i8x16_s(q));
      nsum = i16x8.add(nsum, i16x8.extadd_pairwise_i8x16_s(i8x16.min_s(q, i8x16.splat(0))));
    }
    const qs = sumI16x8(qsum);
    store<i32>(sp, qs);
    store<i32>(sp, -sumI16x8(nsum), 8);
    store<i32>(sp, qs << 3, 12);
  }
}

// dst (count) f32 = src (count) in the named dtype.
export function toF32F32(src: usize, dst: usize, count: i32): void {
  memory.copy(dst, src, <usize>count << 2);
}

export function toF32F16(src: usize, dst: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(dst + (<usize>i << 2), loadF16x4(src + (<usize>i << 1)));
  for (; i < count; i++) store<f32>(dst + (<usize>i << 2), loadF16(src + (<usize>i << 1)));
}

export function toF32BF16(src: usize, dst: usize, count: i32): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) v128.store(dst + (<usize>i << 2), loadBF16x4(src + (<usize>i << 1)));
  for (; i < count; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}

/** Stores 16 i8 (as i8x16) times d as 16 f32 at p. */
@inline export function storeScaled16(p: usize, q: v128, d: v128): void {
  const lo = i16x8.extend_low_i8x16_s(q), hi = i16x8.extend_high_i8x16_s(q);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), d));
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), d), 16);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), d), 32);
  v128.store(p, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), d), 48);
}

/** q8_0: x = d·q. */
export function toF32Q8_0(src: usize, dst: usize, count: i32): void {
  const nb = count >> 5;
  for (let b = 0; b < nb; b++) {
    const bp = src + <usize>b * 34, dp = dst + (<usize>b << 7);
    const d = f32x4.splat(loadF16(bp));
    storeScaled16(dp, v128.load(bp, 2), d);
    storeScaled16(dp + 64, v128.load(bp, 18), d);
  }
}

/** q4_0: x = d·(q − 8), low nibbles are elements 0..15, high nibbles 16..31. */
export function toF32Q4_0(src: usize, dst: usize, count: i32): void {
  const nb = count >> 5;
  for (let b = 0; b < nb; b++) {
    const bp = src + <usize>b * 18, dp = dst + (<usize>b << 7);
    const d = f32x4.splat(loadF16(bp));
    const q = v128.load(bp, 2);
    storeScaled16(dp, i8x16.sub(v128.and(q, i8x16.splat(15)), i8x16.splat(8)), d);
    storeScaled16(dp + 64, i8x16.sub(i8x16.shr_u(q, 4), i8x16.splat(8)), d);
  }
}

/** dst (count) f16 = src (count) f32, round to nearest even (K/V rows into an f16 cache); the same bits
 *  as f32ToF16Bits, four lanes at a time: normal results by integer rounding of the bits (adding
 *  0xfff plus the lowest kept bit, then the carry may reach the exponent, up to inf), subnormal and
 *  zero results by an f32 add of 0.5 (whose spacing, 2^-24, is the f16 subnormals'; the add rounds
 *  to nearest even), ±inf and NaN (quiet, sign kept) by selection. */
@inline function f32ToF16Bits4(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const sign = v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(<i32>0xc8000fff)), v128.and(i32x4.shr_u(a, 13), i32x4.splat(1))), 13);
  const sub = i32x4.sub(f32x4.add(a, f32x4.splat(0.5)), i32x4.splat(0x3f000000));
  const big = v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_s(a, i32x4.splat(0x7f800000)));
  const h = v128.bitselect(big, v128.bitselect(sub, normal, i32x4.lt_s(a, i32x4.splat(0x38800000))), i32x4.ge_s(a, i32x4.splat(0x47800000)));
  return v128.or(h, sign);
}

export function storeRowsF16(src: usize, dst: usize, count: i32): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const p = src + (<usize>i << 2);
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(f32ToF16Bits4(v128.load(p)), f32ToF16Bits4(v128.load(p, 16))));
  }
  for (; i < count; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16Bits(load<f32>(src + (<usize>i << 2))));
}
