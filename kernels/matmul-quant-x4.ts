// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in a repacked "x4" layout of q8_0 or q4_0
// (made at load by src/kernels/repack.ts), Xq = X quantised to q8_0 blocks by quantizeQ8.
// Four weight rows are interleaved block by block, so one activation block — loaded, widened and
// with its scale once — serves four rows, and the four rows' f16 scales lie together ahead of their
// quants, converted four at a time. Group g (rows 4g..4g+3) starts at w + g·nb·4·(2 + QB) and holds
// nb blocks of 8 + 4·QB bytes, in order: block b at b·(8 + 4·QB) holds the four rows' f16 d, then
// row k's QB quant bytes at 8 + QB·k — one forward stream (scales in a region of their own made a
// second stream in the same pages, which halved the speed from memory at 2048 columns),
// QB = 32 (q8_0: 32 × i8) or 16 (q4_0: GGUF's nibbles, byte j = q[j] | q[j+16] << 4, value d·(q − 8)).
// Arithmetic per row and block as llama.cpp's ggml_vec_dot_q{8,4}_0_q8_0: an exact integer dot
// product, then sum += f32(sumi) · (d_w · d_x) in f32, blocks in order — the same operations as the
// TypeScript twin, so results are bit-identical to it. rows % 4 == 0, cols % 32 == 0; q8_0x4 quants
// in −127..127 (see dotQ8Relaxed).
// Several tokens (batched decode, prefill) run as register tiles of 4 rows × 4 tokens (groupTile):
// per block a group's scales are converted, and q4_0's nibbles unpacked, once for the four tokens.
// The per-token arithmetic stays the one-token kernel's, so a row's result is the same bits for any
// number of tokens (test/models/batch.test.ts relies on it).
// The weight type is a marker Q: i8 = q8_0, u8 = q4_0.

import { hsum4i, loadF16, loadF16Splat, loadF16x4 } from './vector';
import { storeScaled16 } from './quant';

const XB: usize = 34; // bytes of one q8_0 activation block

@inline function quantBytes<Q>(): usize { return isSigned<Q>() ? 32 : 16; }

/** Σ over one q8_0 row block (32 i8 at wq) × the activation block whose 32 values are widened in
 *  x0..x3: four i32 partial sums (i8·i8 products, pairs added in i32x4.dot_i16x8_s: exact). */
@inline function dotQ8(wq: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(wq), x0), i32x4.dot_i16x8_s(v128.load8x8_s(wq, 8), x1)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(wq, 16), x2), i32x4.dot_i16x8_s(v128.load8x8_s(wq, 24), x3)));
}

/** The same sums with relaxed SIMD, llama.cpp's sign trick: w·x = (w·sign x)·|x|, with |x| (0..127:
 *  quantizeQ8 never writes −128) as the 7-bit operand of i16x8.relaxed_dot_i8x16_i7x16_s (x86
 *  pmaddubsw) and x's sign moved onto the weight ((w ^ m) − m, m = x < 0). Exact when no weight is
 *  −128 (repackForMatmul keeps such matrices in GGUF's layout): a pair of products is at most
 *  2·127·127, which fits i16. ax/cx: |x| of elements 0..15 / 16..31, ma/mc: their sign masks. */
@inline function dotQ8Relaxed(wq: usize, ax: v128, cx: v128, ma: v128, mc: v128): v128 {
  const w0 = i8x16.sub(v128.xor(v128.load(wq), ma), ma), w1 = i8x16.sub(v128.xor(v128.load(wq, 16), mc), mc);
  return i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(w0, ax)),
                   i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(w1, cx)));
}

/** Σ (q − 8)·x over one q4_0 row block with relaxed SIMD (see dotQ4): the pairs' sums of q·x less
 *  s8 = the pairs' sums of 8·x, then widened: four i32 partial sums. */
@inline function dotQ4Relaxed(lo: v128, hi: v128, xa: v128, xb: v128, s8: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.sub(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xb, hi)), s8));
}

/** Σ q·x over one q4_0 row block (its nibbles unpacked: lo = elements 0..15, hi = 16..31, q in
 *  0..15 unsigned) × the activation block xa (elements 0..15) and xb (16..31), without relaxed SIMD:
 *  widened to i16 and i32x4.dot_i16x8_s, four i32 partial sums; the caller takes off 8·Σx. With
 *  relaxed SIMD, dotQ4Relaxed: i16x8.relaxed_dot_i8x16_i7x16_s (x86 pmaddubsw) with the nibbles as
 *  the 7-bit operand — exact: a pair of products is at most 2·15·128 in size. Both give the same
 *  integers. */
@inline function dotQ4(lo: v128, hi: v128, xa: v128, xb: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), i16x8.extend_low_i8x16_s(xa)),
              i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), i16x8.extend_high_i8x16_s(xa))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), i16x8.extend_low_i8x16_s(xb)),
              i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), i16x8.extend_high_i8x16_s(xb))));
}

/** Σx of one activation block as i32 (its 32 values in xa, xb). */
@inline function blockSum(xa: v128, xb: v128): i32 {
  const s = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(xa), i16x8.extadd_pairwise_i8x16_s(xb)));
  const t = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
}

/** Σ over one block of the four rows at wq (quants only) × one activation block at xb, exact: lane k
 *  = row k's integer block sum. `lo`/`hi`: q4_0's nibbles of the four rows, unpacked once per block
 *  by the caller (unused for q8_0, whose quants are read at wq). */
@inline function blockSums<Q>(wq: usize, xb: usize, lo0: v128, hi0: v128, lo1: v128, hi1: v128,
                              lo2: v128, hi2: v128, lo3: v128, hi3: v128): v128 {
  if (isSigned<Q>() && ASC_FEATURE_RELAXED_SIMD) {
    const xa = v128.load(xb, 2), xc = v128.load(xb, 18);
    const ax = i8x16.abs(xa), cx = i8x16.abs(xc), ma = i8x16.lt_s(xa, i8x16.splat(0)), mc = i8x16.lt_s(xc, i8x16.splat(0));
    return hsum4i(dotQ8Relaxed(wq, ax, cx, ma, mc), dotQ8Relaxed(wq + 32, ax, cx, ma, mc),
                  dotQ8Relaxed(wq + 64, ax, cx, ma, mc), dotQ8Relaxed(wq + 96, ax, cx, ma, mc));
  } else if (isSigned<Q>()) {
    const x0 = v128.load8x8_s(xb, 2), x1 = v128.load8x8_s(xb, 10), x2 = v128.load8x8_s(xb, 18), x3 = v128.load8x8_s(xb, 26);
    return hsum4i(dotQ8(wq, x0, x1, x2, x3), dotQ8(wq + 32, x0, x1, x2, x3),
                  dotQ8(wq + 64, x0, x1, x2, x3), dotQ8(wq + 96, x0, x1, x2, x3));
  } else if (ASC_FEATURE_RELAXED_SIMD) {
    // 8·Σx as i16 pairs, 8·(x[2i] + x[2i+1]) (|·| ≤ 2048), taken off each row's i16 pair sums before
    // they are widened: |Σ q·x pairs − 8·Σx pairs| ≤ 7680 + 4096 fits i16, so the integers are
    // blockSum's — computed once per block for the four rows, with no reduction to a scalar
    const xa = v128.load(xb, 2), xc = v128.load(xb, 18), e = i8x16.splat(8);
    const s8 = i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, e), i16x8.relaxed_dot_i8x16_i7x16_s(xc, e));
    return hsum4i(dotQ4Relaxed(lo0, hi0, xa, xc, s8), dotQ4Relaxed(lo1, hi1, xa, xc, s8),
                  dotQ4Relaxed(lo2, hi2, xa, xc, s8), dotQ4Relaxed(lo3, hi3, xa, xc, s8));
  } else {
    const xa = v128.load(xb, 2), xc = v128.load(xb, 18);
    return i32x4.sub(hsum4i(dotQ4(lo0, hi0, xa, xc), dotQ4(lo1, hi1, xa, xc), dotQ4(lo2, hi2, xa, xc), dotQ4(lo3, hi3, xa, xc)),
                     i32x4.splat(blockSum(xa, xc) << 3));
  }
}

/** The four rows of group g (at wg) · TN activation rows (xr + j·xRow, TN = 1..4, a constant after
 *  inlining): a register tile of 4 rows × TN tokens. Per block the group's scales are converted and
 *  (q4_0) its nibbles unpacked once for all TN tokens; per (row, token) the arithmetic is the one-token
 *  kernel's: the exact integer block sum, then acc += f32(sumi) · (d_w · d_x), blocks in order — so a
 *  token's result does not depend on how many tokens share its tile. Lane k of token j's vector =
 *  row k; stored at yp + j·yRow (the rows inside [r0, r1)). */
@inline function groupTile<Q>(wg: usize, xr: usize, xRow: usize, nb: i32, TN: i32,
                              yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const QB = quantBytes<Q>();
  const BB = 8 + (QB << 2); // one block of the group: four f16 scales, then four rows' quants
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  const z = i32x4.splat(0);
  let lo0 = z, hi0 = z, lo1 = z, hi1 = z, lo2 = z, hi2 = z, lo3 = z, hi3 = z;
  // pointers stepped rather than addresses computed from b: fewer scalar instructions per block
  for (let ws = wg, xb = xr, end = wg + <usize>nb * BB; ws < end; ws += BB, xb += XB) {
    const wq = ws + 8;
    if (!isSigned<Q>()) {
      const n0 = v128.load(wq), n1 = v128.load(wq, 16), n2 = v128.load(wq, 32), n3 = v128.load(wq, 48);
      // high nibbles by a 16-bit shift and the low-nibble mask: the same bytes as i8x16.shr_u, which
      // x86 has no instruction for (V8 emits a 16-bit shift and builds a mask of its own each time)
      const m = i8x16.splat(15);
      lo0 = v128.and(n0, m); hi0 = v128.and(i16x8.shr_u(n0, 4), m); lo1 = v128.and(n1, m); hi1 = v128.and(i16x8.shr_u(n1, 4), m);
      lo2 = v128.and(n2, m); hi2 = v128.and(i16x8.shr_u(n2, 4), m); lo3 = v128.and(n3, m); hi3 = v128.and(i16x8.shr_u(n3, 4), m);
    }
    const dw = loadF16x4(ws);                                         // the four rows' scales
    a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(blockSums<Q>(wq, xb, lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3)),
                                 f32x4.mul(dw, loadF16Splat(xb))));
    if (TN > 1) a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(blockSums<Q>(wq, xb + xRow, lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3)),
                                             f32x4.mul(dw, loadF16Splat(xb + xRow))));
    if (TN > 2) a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(blockSums<Q>(wq, xb + 2 * xRow, lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3)),
                                             f32x4.mul(dw, loadF16Splat(xb + 2 * xRow))));
    if (TN > 3) a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(blockSums<Q>(wq, xb + 3 * xRow, lo0, hi0, lo1, hi1, lo2, hi2, lo3, hi3)),
                                             f32x4.mul(dw, loadF16Splat(xb + 3 * xRow))));
  }
  storeGroup(yp, a0, r, r0, r1);
  if (TN > 1) storeGroup(yp + yRow, a1, r, r0, r1);
  if (TN > 2) storeGroup(yp + 2 * yRow, a2, r, r0, r1);
  if (TN > 3) storeGroup(yp + 3 * yRow, a3, r, r0, r1);
}

/** Stores the four rows r..r+3 of one token (v, lane k = row r + k) at yp, only those in [r0, r1). */
@inline export function storeGroup(yp: usize, v: v128, r: i32, r0: i32, r1: i32): void {
  if (r >= r0 && r + 4 <= r1) { v128.store(yp, v); return; }
  if (r >= r0 && r < r1) store<f32>(yp, f32x4.extract_lane(v, 0));
  if (r + 1 >= r0 && r + 1 < r1) store<f32>(yp, f32x4.extract_lane(v, 1), 4);
  if (r + 2 >= r0 && r + 2 < r1) store<f32>(yp, f32x4.extract_lane(v, 2), 8);
  if (r + 3 >= r0 && r + 3 < r1) store<f32>(yp, f32x4.extract_lane(v, 3), 12);
}

@inline function matmulQuantX4<Q>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const groupBytes = <usize>nb * ((2 + quantBytes<Q>()) << 2);
  const xRow = <usize>nb * XB;
  const yRow = <usize>rows << 2;
  // Each group's weights are read from memory once and stay in cache for every token tile.
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * groupBytes, r = g << 2, yg = y + (<usize>r << 2);
    let t = 0;
    for (; t + 4 <= n; t += 4) groupTile<Q>(wg, x + <usize>t * xRow, xRow, nb, 4, yg + <usize>t * yRow, yRow, r, r0, r1);
    const left = n - t, xt = x + <usize>t * xRow, yt = yg + <usize>t * yRow;
    if (left == 3) groupTile<Q>(wg, xt, xRow, nb, 3, yt, yRow, r, r0, r1);
    else if (left == 2) groupTile<Q>(wg, xt, xRow, nb, 2, yt, yRow, r, r0, r1);
    else if (left == 1) groupTile<Q>(wg, xt, xRow, nb, 1, yt, yRow, r, r0, r1);
  }
}

/** dst (cols f32) = row r of an x4 matrix (the embedding lookup): d·q, as toF32 of the GGUF blocks. */
@inline function rowToF32X4<Q>(w: usize, r: i32, cols: i32, dst: usize): void {
  const nb = cols >> 5, QB = quantBytes<Q>(), k = <usize>(r & 3);
  const wg = w + <usize>(r >> 2) * <usize>nb * ((2 + QB) << 2);
  for (let b = 0; b < nb; b++) {
    const ws = wg + <usize>b * (8 + (QB << 2));
    const d = f32x4.splat(loadF16(ws + (k << 1)));
    const q = ws + 8 + k * QB, dp = dst + (<usize>b << 7);
    if (isSigned<Q>()) {
      storeScaled16(dp, v128.load(q), d);
      storeScaled16(dp + 64, v128.load(q, 16), d);
    } else {
      const v = v128.load(q);
      storeScaled16(dp, i8x16.sub(v128.and(v, i8x16.splat(15)), i8x16.splat(8)), d);
      storeScaled16(dp + 64, i8x16.sub(i8x16.shr_u(v, 4), i8x16.splat(8)), d);
    }
  }
}

// Exports: W (rows, cols) in the x4 layout · Xq (n, cols)ᵀ -> Y (n, rows) f32, rows [r0, r1).
export function matmulQ8_0x4(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulQuantX4<i8>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ4_0x4(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulQuantX4<u8>(w, xq, y, n, rows, cols, r0, r1);
}
// dst (cols) f32 = row r of W in the x4 layout.
export function rowToF32Q8_0x4(w: usize, r: i32, cols: i32, dst: usize): void { rowToF32X4<i8>(w, r, cols, dst); }
export function rowToF32Q4_0x4(w: usize, r: i32, cols: i32, dst: usize): void { rowToF32X4<u8>(w, r, cols, dst); }
