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
// The weight type is a marker Q: i8 = q8_0, u8 = q4_0.

import { hsum4i, loadF16 } from './vector';
import { storeScaled16 } from './quant';

const XB: usize = 34; // bytes of one q8_0 activation block

@inline function quantBytes<Q>(): usize { return isSigned<Q>() ? 32 : 16; }

/** Four f16 at p (one group's scales of one block) as f32x4. */
@inline function scales4(p: usize): v128 {
  // sign-extending load, then the f16 fields moved into f32 position and rebiased by 2^112
  const bits = v128.and(i32x4.shl(v128.load16x4_s(p), 13), i32x4.splat(<i32>0x8fffe000));
  return f32x4.mul(bits, f32x4.splat(reinterpret<f32>(<u32>0x77800000)));
}

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

/** Σ q·x over one q4_0 row block (16 nibble bytes at wq, q in 0..15 unsigned) × the activation
 *  block xa (elements 0..15) and xb (16..31): four i32 partial sums; the caller takes off 8·Σx.
 *  With relaxed SIMD: i16x8.relaxed_dot_i8x16_i7x16_s (x86 pmaddubsw) with the nibbles as the 7-bit
 *  operand — exact: a pair of products is at most 2·15·127, two such fit i16 — then one pairwise
 *  widening. Otherwise widened to i16 and i32x4.dot_i16x8_s. Both give the same integers. */
@inline function dotQ4(wq: usize, xa: v128, xb: v128): v128 {
  const b = v128.load(wq);
  const lo = v128.and(b, i8x16.splat(15)), hi = i8x16.shr_u(b, 4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(xa, lo), i16x8.relaxed_dot_i8x16_i7x16_s(xb, hi)));
  }
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

/** The four rows of group g (at wg) · one activation row (at xr) over nb blocks: f32x4, lane k = row k. */
@inline function groupDot<Q>(wg: usize, xr: usize, nb: i32): v128 {
  const QB = quantBytes<Q>();
  const BB = 8 + (QB << 2); // one block of the group: four f16 scales, then four rows' quants
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const ws = wg + <usize>b * BB, xb = xr + <usize>b * XB, wq = ws + 8;
    let sumi: v128;
    if (isSigned<Q>() && ASC_FEATURE_RELAXED_SIMD) {
      const xa = v128.load(xb, 2), xc = v128.load(xb, 18);
      const ax = i8x16.abs(xa), cx = i8x16.abs(xc), ma = i8x16.lt_s(xa, i8x16.splat(0)), mc = i8x16.lt_s(xc, i8x16.splat(0));
      sumi = hsum4i(dotQ8Relaxed(wq, ax, cx, ma, mc), dotQ8Relaxed(wq + 32, ax, cx, ma, mc),
                    dotQ8Relaxed(wq + 64, ax, cx, ma, mc), dotQ8Relaxed(wq + 96, ax, cx, ma, mc));
    } else if (isSigned<Q>()) {
      const x0 = v128.load8x8_s(xb, 2), x1 = v128.load8x8_s(xb, 10), x2 = v128.load8x8_s(xb, 18), x3 = v128.load8x8_s(xb, 26);
      sumi = hsum4i(dotQ8(wq, x0, x1, x2, x3), dotQ8(wq + 32, x0, x1, x2, x3),
                    dotQ8(wq + 64, x0, x1, x2, x3), dotQ8(wq + 96, x0, x1, x2, x3));
    } else {
      const xa = v128.load(xb, 2), xc = v128.load(xb, 18);
      sumi = i32x4.sub(hsum4i(dotQ4(wq, xa, xc), dotQ4(wq + 16, xa, xc), dotQ4(wq + 32, xa, xc), dotQ4(wq + 48, xa, xc)),
                       i32x4.splat(blockSum(xa, xc) << 3));
    }
    const d = f32x4.mul(scales4(ws), f32x4.splat(loadF16(xb))); // d_w · d_x per row
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), d));
  }
  return acc;
}

@inline function matmulQuantX4<Q>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const groupBytes = <usize>nb * ((2 + quantBytes<Q>()) << 2);
  const xRow = <usize>nb * XB;
  const yRow = <usize>rows << 2;
  // Each group's weights are read from memory once and stay in cache for the other tokens.
  for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
    const wg = w + <usize>g * groupBytes;
    const r = g << 2;
    const whole = r >= r0 && r + 4 <= r1;
    for (let t = 0; t < n; t++) {
      const v = groupDot<Q>(wg, x + <usize>t * xRow, nb);
      const yp = y + <usize>t * yRow + (<usize>r << 2);
      if (whole) { v128.store(yp, v); continue; }
      if (r >= r0 && r < r1) store<f32>(yp, f32x4.extract_lane(v, 0));
      if (r + 1 >= r0 && r + 1 < r1) store<f32>(yp, f32x4.extract_lane(v, 1), 4);
      if (r + 2 >= r0 && r + 2 < r1) store<f32>(yp, f32x4.extract_lane(v, 2), 8);
      if (r + 3 >= r0 && r + 3 < r1) store<f32>(yp, f32x4.extract_lane(v, 3), 12);
    }
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
