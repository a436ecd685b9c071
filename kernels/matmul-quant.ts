// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in GGUF q8_0 or q4_0 blocks, Xq = X already
// quantised to q8_0 blocks by quantizeQ8 (as llama.cpp does). Per block of 32: an exact integer dot
// product (i8 widened to i16, i32x4.dot_i16x8_s), then f32(sumi) · (d_w · d_x), summed in f32 —
// llama.cpp's ggml_vec_dot_q8_0_q8_0 / ggml_vec_dot_q4_0_q8_0 arithmetic (only the summation order
// of the per-block terms differs).
// Block layouts: q8_0 = f16 d + 32 × i8 (34 bytes); q4_0 = f16 d + 16 bytes, byte j = q[j] | q[j+16] << 4,
// value = d·(q − 8) (18 bytes). The weight type is a marker Q: i8 = q8_0, u8 = q4_0.

import { hsum, hsum4i, f16x4, loadF16 } from './vector';

const XB: usize = 34; // bytes of one q8_0 activation block

@inline function blockBytes<Q>(): usize {
  return isSigned<Q>() ? 34 : 18;
}

/** Integer dot of one weight block (already widened to four i16x8: elements 0-7, 8-15, 16-23, 24-31)
 *  with the q8_0 block at xb: four i32 partial sums. */
@inline function blockDot(w0: v128, w1: v128, w2: v128, w3: v128, xb: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load8x8_s(xb, 2)), i32x4.dot_i16x8_s(w1, v128.load8x8_s(xb, 10))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load8x8_s(xb, 18)), i32x4.dot_i16x8_s(w3, v128.load8x8_s(xb, 26))));
}

/** Integer dot of the weight block at wb with the activation block at xb. */
@inline function blockDotAt<Q>(wb: usize, xb: usize): v128 {
  if (isSigned<Q>()) {
    return blockDot(v128.load8x8_s(wb, 2), v128.load8x8_s(wb, 10), v128.load8x8_s(wb, 18), v128.load8x8_s(wb, 26), xb);
  } else {
    const b = v128.load(wb, 2);
    const lo = i8x16.sub(v128.and(b, i8x16.splat(15)), i8x16.splat(8)); // elements 0..15, in [-8, 7]
    const hi = i8x16.sub(i8x16.shr_u(b, 4), i8x16.splat(8));            // elements 16..31
    return blockDot(i16x8.extend_low_i8x16_s(lo), i16x8.extend_high_i8x16_s(lo),
                    i16x8.extend_low_i8x16_s(hi), i16x8.extend_high_i8x16_s(hi), xb);
  }
}

/** f16 scales of four blocks `stride` bytes apart, as f32x4. */
@inline function scales4(p: usize, stride: usize): v128 {
  let h = i32x4.splat(<i32>load<u16>(p));
  h = i32x4.replace_lane(h, 1, <i32>load<u16>(p + stride));
  h = i32x4.replace_lane(h, 2, <i32>load<u16>(p + 2 * stride));
  h = i32x4.replace_lane(h, 3, <i32>load<u16>(p + 3 * stride));
  return f16x4(h);
}

@inline function isum(v: v128): i32 {
  const s = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}

/** One weight row · one activation row over nb blocks. Four blocks per step so the scales are
 *  converted four at a time and the per-block sums are reduced with one transpose. */
@inline function rowDot<Q>(wr: usize, xr: usize, nb: i32): f32 {
  const WB = blockBytes<Q>();
  let acc = f32x4.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const wb = wr + <usize>b * WB, xb = xr + <usize>b * XB;
    const s = hsum4i(blockDotAt<Q>(wb, xb), blockDotAt<Q>(wb + WB, xb + XB),
                     blockDotAt<Q>(wb + 2 * WB, xb + 2 * XB), blockDotAt<Q>(wb + 3 * WB, xb + 3 * XB));
    const d = f32x4.mul(scales4(wb, WB), scales4(xb, XB)); // d_w · d_x per block
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), d));
  }
  let sum = hsum(acc);
  for (; b < nb; b++) {
    const wb = wr + <usize>b * WB, xb = xr + <usize>b * XB;
    sum += <f32>isum(blockDotAt<Q>(wb, xb)) * (loadF16(wb) * loadF16(xb));
  }
  return sum;
}

/** One weight row against four activation rows (x + k·xRow): each weight block is widened once. */
@inline function rowDot4<Q>(wr: usize, x: usize, xRow: usize, y: usize, yRow: usize, nb: i32): void {
  const WB = blockBytes<Q>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = wr + <usize>b * WB, xb = x + <usize>b * XB;
    let w0: v128, w1: v128, w2: v128, w3: v128;
    if (isSigned<Q>()) {
      w0 = v128.load8x8_s(wb, 2); w1 = v128.load8x8_s(wb, 10);
      w2 = v128.load8x8_s(wb, 18); w3 = v128.load8x8_s(wb, 26);
    } else {
      const q = v128.load(wb, 2);
      const lo = i8x16.sub(v128.and(q, i8x16.splat(15)), i8x16.splat(8));
      const hi = i8x16.sub(i8x16.shr_u(q, 4), i8x16.splat(8));
      w0 = i16x8.extend_low_i8x16_s(lo); w1 = i16x8.extend_high_i8x16_s(lo);
      w2 = i16x8.extend_low_i8x16_s(hi); w3 = i16x8.extend_high_i8x16_s(hi);
    }
    const dw = loadF16(wb);
    a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(blockDot(w0, w1, w2, w3, xb)), f32x4.splat(dw * loadF16(xb))));
    a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(blockDot(w0, w1, w2, w3, xb + xRow)), f32x4.splat(dw * loadF16(xb + xRow))));
    a2 = f32x4.add(a2, f32x4.mul(f32x4.convert_i32x4_s(blockDot(w0, w1, w2, w3, xb + 2 * xRow)), f32x4.splat(dw * loadF16(xb + 2 * xRow))));
    a3 = f32x4.add(a3, f32x4.mul(f32x4.convert_i32x4_s(blockDot(w0, w1, w2, w3, xb + 3 * xRow)), f32x4.splat(dw * loadF16(xb + 3 * xRow))));
  }
  store<f32>(y, hsum(a0));
  store<f32>(y + yRow, hsum(a1));
  store<f32>(y + 2 * yRow, hsum(a2));
  store<f32>(y + 3 * yRow, hsum(a3));
}

@inline function matmulQuant<Q>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const wRow = <usize>nb * blockBytes<Q>();
  const xRow = <usize>nb * XB;
  const yRow = <usize>rows << 2;
  // Tokens per chunk: keep the chunk's activation blocks within ~256 KiB of L2.
  const chunk = min<i32>(max<i32>(<i32>(<usize>262144 / max<usize>(xRow, 1)) & ~3, 4), 64);
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * wRow;
      let t = t0;
      for (; t + 4 <= t1; t += 4) rowDot4<Q>(wr, x + <usize>t * xRow, xRow, y + <usize>t * yRow + (<usize>r << 2), yRow, nb);
      for (; t < t1; t++) store<f32>(y + <usize>t * yRow + (<usize>r << 2), rowDot<Q>(wr, x + <usize>t * xRow, nb));
    }
  }
}

// Exports: W (rows, cols) · Xq (n, cols)ᵀ -> Y (n, rows) f32, rows [r0, r1); cols % 32 == 0.
export function matmulQ8_0(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulQuant<i8>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ4_0(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulQuant<u8>(w, xq, y, n, rows, cols, r0, r1);
}
