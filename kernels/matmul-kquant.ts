// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in GGUF K-quant super-blocks (q4_K, q5_K,
// q6_K; layouts in src/kernels/k-quants.ts), Xq = X already quantised to q8_K by quantizeQ8K — as
// llama.cpp does, and with its arithmetic: per super-block, the integer sums Σ_s sc_s·(q·x)_s and
// Σ_s m_s·(Σx)_s are exact (i32), then d_x·d_w and d_x·dmin scale them in f32 (only the f32 summation
// order across super-blocks differs from llama.cpp's).
// Inner step: 16 weights widened to i16 against 16 activations with i32x4.dot_i16x8_s; the sub-block
// sums are transposed four at a time (hsum4i) and multiplied by their scales as one vector.
// Also here: quantizeQ8K (f32 -> q8_K) and dequantisation of the three types (bit-exact with ggml's
// dequantize_row_*: wasm f32 arithmetic is IEEE single, no fused multiply-add).

import { hsum, hsum4i, loadF16 } from './vector';

const XB: usize = 292; // bytes of one q8_K block: f32 d, 256 × i8, 16 × i16 bsums

// Weight types are marker type parameters (AssemblyScript generics take types): u8 = q4_K,
// u16 = q5_K, u32 = q6_K; every test below folds at compile time.
@inline function isQ4<T>(): bool { return sizeof<T>() == 1; }
@inline function isQ5<T>(): bool { return sizeof<T>() == 2; }
@inline function isQ6<T>(): bool { return sizeof<T>() == 4; }
/** Bytes of one super-block of the weight type T. */
@inline function kBytes<T>(): usize { return isQ4<T>() ? 144 : isQ5<T>() ? 176 : 210; }

/** acc + 16 weights in 0..63 (u8 lanes) · the 16 q8 activations at x, as four i32 partial sums.
 *  With relaxed SIMD: i16x8.relaxed_dot_i8x16_i7x16_s (x86: pmaddubsw) and a pairwise widening —
 *  exact, because the weights fit 7 bits unsigned and a pair of products (≤ 2·63·127) fits i16.
 *  (Not the fused i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's V8 returns twice the dot product
 *  when its accumulator is a constant zero.) Otherwise widened to i16 and i32x4.dot_i16x8_s. Both
 *  builds give the same integers. */
@inline function dotU(w: v128, x: usize, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), w)));
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(w), v128.load8x8_s(x)),
                                  i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(w), v128.load8x8_s(x, 8))));
}

/** The 12 packed scale bytes at p as i8x16: bytes 0-7 the eight 6-bit scales, 8-15 the eight mins. */
@inline function scalesMins(p: usize): v128 {
  const w0 = load<u32>(p), w1 = load<u32>(p, 4), w2 = load<u32>(p, 8);
  let v = i32x4.splat(<i32>(w0 & 0x3f3f3f3f));                                                  // scales 0-3
  v = i32x4.replace_lane(v, 1, <i32>((w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4)));       // scales 4-7
  v = i32x4.replace_lane(v, 2, <i32>(w1 & 0x3f3f3f3f));                                           // mins 0-3
  v = i32x4.replace_lane(v, 3, <i32>(((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4))); // mins 4-7
  return v;
}

/** Σ_s c_s · v_s for eight i32 sums (lo: s = 0..3, hi: 4..7) and eight u8 coefficients in the low
 *  (or high, when high) half of c8: four i32 lanes. */
@inline function weigh8(lo: v128, hi: v128, c8: v128, high: bool): v128 {
  const c16 = high ? i16x8.extend_high_i8x16_u(c8) : i16x8.extend_low_i8x16_u(c8);
  return i32x4.add(i32x4.mul(lo, i32x4.extend_low_i16x8_u(c16)), i32x4.mul(hi, i32x4.extend_high_i16x8_u(c16)));
}

/** One q4_K / q5_K super-block at wb · the q8_K block at xb: [Σ sc·dot (i32x4), Σ m·bsum (i32x4)]
 *  combined into f32 lanes d_x·d·isum − d_x·dmin·msum. */
@inline function blockQ45<T>(wb: usize, xb: usize): v128 {
  const qs = isQ4<T>() ? wb + 16 : wb + 48;
  const x = xb + 4;
  const m4 = i8x16.splat(15);
  let h0 = i8x16.splat(0), h1 = i8x16.splat(0);
  if (isQ5<T>()) { h0 = v128.load(wb, 16); h1 = v128.load(wb, 32); }
  const one = i8x16.splat(1), z = i32x4.splat(0);
  // sub-blocks 2c (low nibbles) and 2c+1 (high nibbles) of chunk c
  let s0: v128, s1: v128, s2: v128, s3: v128, s4: v128, s5: v128, s6: v128, s7: v128;
  {
    const b0 = v128.load(qs), b1 = v128.load(qs, 16);
    let l0 = v128.and(b0, m4), l1 = v128.and(b1, m4), u0 = i8x16.shr_u(b0, 4), u1 = i8x16.shr_u(b1, 4);
    if (isQ5<T>()) {
      l0 = v128.or(l0, i8x16.shl(v128.and(h0, one), 4)); l1 = v128.or(l1, i8x16.shl(v128.and(h1, one), 4));
      u0 = v128.or(u0, i8x16.shl(v128.and(i8x16.shr_u(h0, 1), one), 4)); u1 = v128.or(u1, i8x16.shl(v128.and(i8x16.shr_u(h1, 1), one), 4));
    }
    s0 = dotU(l1, x + 16, dotU(l0, x, z));
    s1 = dotU(u1, x + 48, dotU(u0, x + 32, z));
  }
  {
    const b0 = v128.load(qs, 32), b1 = v128.load(qs, 48);
    let l0 = v128.and(b0, m4), l1 = v128.and(b1, m4), u0 = i8x16.shr_u(b0, 4), u1 = i8x16.shr_u(b1, 4);
    if (isQ5<T>()) {
      l0 = v128.or(l0, i8x16.shl(v128.and(i8x16.shr_u(h0, 2), one), 4)); l1 = v128.or(l1, i8x16.shl(v128.and(i8x16.shr_u(h1, 2), one), 4));
      u0 = v128.or(u0, i8x16.shl(v128.and(i8x16.shr_u(h0, 3), one), 4)); u1 = v128.or(u1, i8x16.shl(v128.and(i8x16.shr_u(h1, 3), one), 4));
    }
    s2 = dotU(l1, x + 80, dotU(l0, x + 64, z));
    s3 = dotU(u1, x + 112, dotU(u0, x + 96, z));
  }
  {
    const b0 = v128.load(qs, 64), b1 = v128.load(qs, 80);
    let l0 = v128.and(b0, m4), l1 = v128.and(b1, m4), u0 = i8x16.shr_u(b0, 4), u1 = i8x16.shr_u(b1, 4);
    if (isQ5<T>()) {
      l0 = v128.or(l0, i8x16.shl(v128.and(i8x16.shr_u(h0, 4), one), 4)); l1 = v128.or(l1, i8x16.shl(v128.and(i8x16.shr_u(h1, 4), one), 4));
      u0 = v128.or(u0, i8x16.shl(v128.and(i8x16.shr_u(h0, 5), one), 4)); u1 = v128.or(u1, i8x16.shl(v128.and(i8x16.shr_u(h1, 5), one), 4));
    }
    s4 = dotU(l1, x + 144, dotU(l0, x + 128, z));
    s5 = dotU(u1, x + 176, dotU(u0, x + 160, z));
  }
  {
    const b0 = v128.load(qs, 96), b1 = v128.load(qs, 112);
    let l0 = v128.and(b0, m4), l1 = v128.and(b1, m4), u0 = i8x16.shr_u(b0, 4), u1 = i8x16.shr_u(b1, 4);
    if (isQ5<T>()) {
      l0 = v128.or(l0, i8x16.shl(v128.and(i8x16.shr_u(h0, 6), one), 4)); l1 = v128.or(l1, i8x16.shl(v128.and(i8x16.shr_u(h1, 6), one), 4));
      u0 = v128.or(u0, i8x16.shl(i8x16.shr_u(h0, 7), 4)); u1 = v128.or(u1, i8x16.shl(i8x16.shr_u(h1, 7), 4));
    }
    s6 = dotU(l1, x + 208, dotU(l0, x + 192, z));
    s7 = dotU(u1, x + 240, dotU(u0, x + 224, z));
  }
  const sm = scalesMins(wb + 4);
  const isum = weigh8(hsum4i(s0, s1, s2, s3), hsum4i(s4, s5, s6, s7), sm, false);
  // Σ x over each sub-block of 32 = pairs of q8_K's 16-value bsums
  const bs0 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 260)), bs1 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 276));
  const msum = weigh8(bs0, bs1, sm, true);
  const dx = load<f32>(xb);
  const d = dx * loadF16(wb), dmin = dx * loadF16(wb + 2);
  return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(d)), f32x4.mul(f32x4.convert_i32x4_s(msum), f32x4.splat(dmin)));
}

/** Eight groups of 16 of one q6_K half (ql: 64 bytes, qh: 32 bytes) · activations at x (their
 *  16-value sums at bs), reduced to [g0..g3] and [g4..g7] and weighted by the eight i8 scales at sc:
 *  four i32 lanes. The 6-bit q (0..63) is dotted as it is and 32·Σx taken off per group after. */
@inline function halfQ6(ql: usize, qh: usize, sc: usize, x: usize, bs: usize): v128 {
  const m4 = i8x16.splat(15), m2 = i8x16.splat(3), z = i32x4.splat(0);
  const a0 = v128.load(ql), a1 = v128.load(ql, 16), a2 = v128.load(ql, 32), a3 = v128.load(ql, 48);
  const h0 = v128.load(qh), h1 = v128.load(qh, 16);
  // value 32k + l: low 4 bits from a(l, k), top 2 from (qh[l] >> 2k) & 3
  const g0 = dotU(v128.or(v128.and(a0, m4), i8x16.shl(v128.and(h0, m2), 4)), x, z);
  const g1 = dotU(v128.or(v128.and(a1, m4), i8x16.shl(v128.and(h1, m2), 4)), x + 16, z);
  const g2 = dotU(v128.or(v128.and(a2, m4), i8x16.shl(v128.and(i8x16.shr_u(h0, 2), m2), 4)), x + 32, z);
  const g3 = dotU(v128.or(v128.and(a3, m4), i8x16.shl(v128.and(i8x16.shr_u(h1, 2), m2), 4)), x + 48, z);
  const g4 = dotU(v128.or(i8x16.shr_u(a0, 4), i8x16.shl(v128.and(i8x16.shr_u(h0, 4), m2), 4)), x + 64, z);
  const g5 = dotU(v128.or(i8x16.shr_u(a1, 4), i8x16.shl(v128.and(i8x16.shr_u(h1, 4), m2), 4)), x + 80, z);
  const g6 = dotU(v128.or(i8x16.shr_u(a2, 4), i8x16.shl(i8x16.shr_u(h0, 6), 4)), x + 96, z);
  const g7 = dotU(v128.or(i8x16.shr_u(a3, 4), i8x16.shl(i8x16.shr_u(h1, 6), 4)), x + 112, z);
  const b16 = v128.load(bs);
  const lo = i32x4.sub(hsum4i(g0, g1, g2, g3), i32x4.shl(i32x4.extend_low_i16x8_s(b16), 5));
  const hi = i32x4.sub(hsum4i(g4, g5, g6, g7), i32x4.shl(i32x4.extend_high_i16x8_s(b16), 5));
  const s16 = i16x8.extend_low_i8x16_s(v128.load64_zero(sc));
  return i32x4.add(i32x4.mul(lo, i32x4.extend_low_i16x8_s(s16)), i32x4.mul(hi, i32x4.extend_high_i16x8_s(s16)));
}

/** One q6_K super-block at wb · the q8_K block at xb: f32 lanes d_x·d·Σ sc·dot. */
@inline function blockQ6(wb: usize, xb: usize): v128 {
  const isum = i32x4.add(halfQ6(wb, wb + 128, wb + 192, xb + 4, xb + 260), halfQ6(wb + 64, wb + 160, wb + 200, xb + 132, xb + 276));
  return f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(load<f32>(xb) * loadF16(wb + 208)));
}

@inline function rowDot<T>(wr: usize, xr: usize, nb: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const wb = wr + <usize>b * kBytes<T>(), xb = xr + <usize>b * XB;
    acc = f32x4.add(acc, isQ6<T>() ? blockQ6(wb, xb) : blockQ45<T>(wb, xb));
  }
  return hsum(acc);
}

@inline function matmulK<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 8;
  const wRow = <usize>nb * kBytes<T>();
  const xRow = <usize>nb * XB;
  const yRow = <usize>rows << 2;
  // Tokens per chunk: keep the chunk's activation blocks within ~256 KiB of L2.
  const chunk = max<i32>(<i32>(<usize>262144 / max<usize>(xRow, 1)), 1);
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * wRow;
      for (let t = t0; t < t1; t++) store<f32>(y + <usize>t * yRow + (<usize>r << 2), rowDot<T>(wr, x + <usize>t * xRow, nb));
    }
  }
}

// Exports: W (rows, cols) · Xq (n, cols)ᵀ -> Y (n, rows) f32, rows [r0, r1); cols % 256 == 0.
export function matmulQ4_K(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulK<u8>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ5_K(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulK<u16>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ6_K(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulK<u32>(w, xq, y, n, rows, cols, r0, r1);
}

// ---- q8_K activations (ggml quantize_row_q8_K_ref) ----------------------------------------------

/** xq (count/256 blocks of 292 bytes) = q8_K of x (count f32); count % 256 == 0. max = the first
 *  value of largest magnitude, iscale = −127/max, q = min(127, round-half-even(iscale·x)), d = 1/iscale. */
export function quantizeQ8K(x: usize, xq: usize, count: i32): void {
  const nb = count >> 8;
  for (let b = 0; b < nb; b++) {
    const xp = x + (<usize>b << 10), qp = xq + <usize>b * XB;
    let amax: f32 = 0, mx: f32 = 0;
    for (let j: usize = 0; j < 256; j++) {
      const v = load<f32>(xp + (j << 2));
      if (abs<f32>(v) > amax) { amax = abs<f32>(v); mx = v; }
    }
    if (amax == 0) { memory.fill(qp, 0, XB); continue; }
    const iscale: f32 = <f32>-127.0 / mx;
    const iv = f32x4.splat(iscale), cap = i32x4.splat(127);
    for (let g: usize = 0; g < 16; g++) {
      const p = xp + (g << 6);
      const q0 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), iv))), cap);
      const q1 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), iv))), cap);
      const q2 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), iv))), cap);
      const q3 = i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), iv))), cap);
      const q = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
      v128.store(qp + 4 + (g << 4), q);
      const s = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(q));
      const s2 = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
      store<i16>(qp + 260 + (g << 1), <i16>(i32x4.extract_lane(s2, 0) + i32x4.extract_lane(s2, 1)));
    }
    store<f32>(qp, <f32>1.0 / iscale);
  }
}

// ---- dequantisation (ggml dequantize_row_q{4,5,6}_K, same f32 operations) -----------------------

/** 6-bit scale (mins = false) or min of sub-block j of the packed bytes at p. */
@inline function scaleOrMin(p: usize, j: i32, mins: bool): f32 {
  const o = mins ? 4 : 0;
  if (j < 4) return <f32>(load<u8>(p + <usize>(j + o)) & 63);
  return <f32>(mins ? (load<u8>(p + <usize>(j + 4)) >> 4) | ((load<u8>(p + <usize>j) >> 6) << 4)
                    : (load<u8>(p + <usize>(j + 4)) & 15) | ((load<u8>(p + <usize>(j - 4)) >> 6) << 4));
}

@inline function toF32Q45<T>(src: usize, dst: usize, count: i32): void {
  const nb = count >> 8;
  for (let b = 0; b < nb; b++) {
    const bp = src + <usize>b * kBytes<T>(), dp = dst + (<usize>b << 10);
    const d = loadF16(bp), dmin = loadF16(bp + 2);
    const qs = isQ4<T>() ? bp + 16 : bp + 48;
    for (let j = 0; j < 8; j++) {
      const d1 = d * scaleOrMin(bp + 4, j, false), m1 = dmin * scaleOrMin(bp + 4, j, true);
      for (let l = 0; l < 32; l++) {
        const byte = <u32>load<u8>(qs + <usize>(32 * (j >> 1) + l));
        let q = (j & 1) ? byte >> 4 : byte & 15;
        if (isQ5<T>()) q |= ((<u32>load<u8>(bp + 16 + <usize>l) >> <u32>j) & 1) << 4;
        store<f32>(dp + (<usize>(32 * j + l) << 2), d1 * <f32>q - m1);
      }
    }
  }
}

export function toF32Q4_K(src: usize, dst: usize, count: i32): void { toF32Q45<u8>(src, dst, count); }
export function toF32Q5_K(src: usize, dst: usize, count: i32): void { toF32Q45<u16>(src, dst, count); }

export function toF32Q6_K(src: usize, dst: usize, count: i32): void {
  const nb = count >> 8;
  for (let b = 0; b < nb; b++) {
    const bp = src + <usize>b * 210, dp = dst + (<usize>b << 10);
    const d = loadF16(bp + 208);
    for (let i = 0; i < 256; i++) {
      const h = i >> 7, k = (i >> 5) & 3, l = i & 31;
      const lowByte = <i32>load<u8>(bp + <usize>(64 * h + l + 32 * (k & 1)));
      const low = k < 2 ? lowByte & 15 : lowByte >> 4;
      const high = (<i32>load<u8>(bp + <usize>(128 + 32 * h + l)) >> (2 * k)) & 3;
      const sc = <f32>load<i8>(bp + 192 + <usize>(i >> 4));
      store<f32>(dp + (<usize>i << 2), (d * sc) * <f32>((low | (high << 4)) - 32));
    }
  }
}
