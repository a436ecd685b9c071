// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in GGUF K-quant super-blocks (q4_K, q5_K,
// q6_K; layouts in src/kernels/k-quants.ts), Xq = X already quantised to q8_K by quantizeQ8K — as
// llama.cpp does, and with its arithmetic: per super-block, the integer sums Σ_s sc_s·(q·x)_s and
// Σ_s m_s·(Σx)_s are exact (i32), then d_x·d_w and d_x·dmin scale them in f32 (superTerm) and the
// super-blocks' terms are summed in order — the TypeScript twin's operations, so the same bits (only
// the f32 summation order differs from llama.cpp's SIMD code).
// Inner step: 16 weights (unsigned, 0..63) against 16 activations give eight i16 pair sums (pairSums:
// pmaddubsw with relaxed SIMD), which one i32x4.dot_i16x8_s against the group's scale in every lane
// widens and weighs at once (the widening costs that instruction anyway), so Σ sc·(q·x) accumulates
// in one i32x4 with no transposes or i32 multiplies; q4_K / q5_K add a sub-block's two halves in i16
// first. One token (decode): a row's super-block at a time (rowSumQ6 / rowSumQ45; rowSumQ45 is
// shared with q5_K's x4 layout in kernels/matmul-kquant-x4.ts). Several tokens (prefill, batched decode) run in tiles
// of one row × 4 tokens: a super-block's weights are unpacked from their bit fields, and its scales
// spread over lanes, once for the four tokens (rowTile), for GGUF's layout or q5_K's x4 one (through
// the address helpers below).
// Some pieces are functions of their own rather than inlined: V8 (TurboFan) allocates registers per
// function, and these kernels keep 24-32 vectors live; inlined into their callers' loops they spilled
// and ran 1.3-2× slower (the comments say where).
// Also here: quantizeQ8K (f32 -> q8_K) and dequantisation of the three types (bit-exact with ggml's
// dequantize_row_*: wasm f32 arithmetic is IEEE single, no fused multiply-add).

import { loadF16 } from './vector';

export const XB: usize = 292; // bytes of one q8_K block: f32 d, 256 × i8, 16 × i16 bsums

// Weight types are marker type parameters (AssemblyScript generics take types): u8 = q4_K,
// u16 = q5_K, u32 = q6_K; every test below folds at compile time.
@inline export function isQ4<T>(): bool { return sizeof<T>() == 1; }
@inline export function isQ5<T>(): bool { return sizeof<T>() == 2; }
@inline export function isQ6<T>(): bool { return sizeof<T>() == 4; }
/** Bytes of one super-block of the weight type T. */
@inline export function kBytes<T>(): usize { return isQ4<T>() ? 144 : isQ5<T>() ? 176 : 210; }

// Where a row's super-block b lies: in GGUF's layout (x4 false: the row at base) or in the x4 layout
// of kernels/matmul-kquant-x4.ts (base = the row's group of four, k = its place in it).
/** Bytes of a super-block's quants per row (GGUF's block less d, dmin and scales), as the x4 layout keeps them. */
@inline export function partBytes<T>(): usize { return kBytes<T>() - (isQ6<T>() ? 18 : 16); }
/** Bytes ahead of the four rows' quants in one x4 super-block: d ×4, dmin ×4 and 3 × 4 scale words, or q6_K's d ×4 and 4 × 16 scales. */
@inline export function headBytes<T>(): usize { return (kBytes<T>() - partBytes<T>()) << 2; }
/** The address weightVec reads as its super-block (q4_K / q5_K: 16 bytes ahead of qh / qs). */
// q4_K's and q6_K's x4 super-blocks interleave the four rows' quants (src/kernels/repack.ts; for
// them quantsAt gives the group's, less 16 for q4_K, plus 4k): only dequantBlock reads them here.
@inline function quantsAt<T>(base: usize, b: i32, k: usize, x4: bool): usize {
  if (!x4) return base + <usize>b * kBytes<T>();
  return base + <usize>b * (kBytes<T>() << 2) + headBytes<T>() + (isQ5<T>() ? partBytes<T>() * k : k << 2) - (isQ6<T>() ? 0 : 16);
}
/** The f16 d (dmin: q4_K / q5_K's f16 dmin). */
@inline function scaleAt<T>(base: usize, b: i32, k: usize, x4: bool, dmin: bool): usize {
  if (!x4) return base + <usize>b * kBytes<T>() + (isQ6<T>() ? 208 : dmin ? 2 : 0);
  return base + <usize>b * (kBytes<T>() << 2) + (dmin ? 8 : 0) + (k << 1);
}
/** q6_K's 16 i8 scales (x4: the first, group g's at + 8·(g >> 1) + (g & 1)), or the first of q4_K /
 *  q5_K's three packed scale words (the next at + scaleStep). */
@inline function scalesAt<T>(base: usize, b: i32, k: usize, x4: bool): usize {
  if (!x4) return base + <usize>b * kBytes<T>() + (isQ6<T>() ? 192 : 4);
  return base + <usize>b * (kBytes<T>() << 2) + (isQ6<T>() ? 8 + (k << 1) : 16 + (k << 2));
}
@inline function scaleStep(x4: bool): usize { return x4 ? 16 : 4; }

/** The four i32 lanes of v added (exact). */
@inline function hsumI(v: v128): i32 {
  const t = i32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return i32x4.extract_lane(t, 0) + i32x4.extract_lane(t, 1);
}

/** A super-block's term as ggml's reference computes it: f32(d·d_x)·isum − f32(dmin·d_x)·msum, each
 *  product of the f32 scale and the exact integer rounded once (in f64, where it is exact), then the
 *  difference in f32 — the same bits as the TypeScript twin. */
@inline function superTerm(d: f32, dmin: f32, dx: f32, isum: i32, msum: i32): f32 {
  const a = <f32>(<f64>(d * dx) * <f64>isum), b = <f32>(<f64>(dmin * dx) * <f64>msum);
  return a - b;
}

/** The i16 pair sums w[2j]·x[2j] + w[2j+1]·x[2j+1] of 16 weights (u8 lanes, at most 63) and the 16 q8
 *  activations at x. Relaxed SIMD: i16x8.relaxed_dot_i8x16_i7x16_s (x86 pmaddubsw) — exact, the
 *  weights fit 7 bits unsigned; plain SIMD: widened to i16, i32x4.dot_i16x8_s, narrowed back (a pair
 *  is at most 2·63·128, no saturation). Both builds give the same lanes. */
@inline function pairSums(w: v128, x: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(x), w);
  return i16x8.narrow_i32x4_s(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(w), v128.load8x8_s(x)),
                              i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(w), v128.load8x8_s(x, 8)));
}

/** acc + sc · (pair sums p), widened in one i32x4.dot_i16x8_s (x86 pmaddwd, the same instruction a
 *  plain widening costs): lane j gains sc·(p[2j] + p[2j+1]), exact (|p| ≤ 2^15, |sc| ≤ 128). */
@inline function addScaled(acc: v128, p: v128, sc: v128): v128 {
  return i32x4.add(acc, i32x4.dot_i16x8_s(p, sc));
}

/** The 12 packed scale bytes (words at p, p + step, p + 2·step) as i8x16: bytes 0-7 the eight 6-bit
 *  scales, 8-15 the eight mins. */
@inline function scalesMins(p: usize, step: usize): v128 {
  const w0 = load<u32>(p), w1 = load<u32>(p + step), w2 = load<u32>(p + 2 * step);
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

/** Vector i (0..15, a constant after inlining) of the super-block at wb: its 16 weights that meet
 *  activations 16i..16i+15 of a q8_K block, unpacked to u8 lanes (q4_K 0..15, q5_K 0..31, q6_K 0..63).
 *  q4_K / q5_K: chunk c = i/4 of 32 quant bytes holds sub-blocks 2c (low nibbles) and 2c+1 (high);
 *  q5_K's fifth bit of sub-block s is bit s of the 32 qh bytes. q6_K: half h = i/8, group j = i%8:
 *  the low 4 bits from ql (low nibbles for j < 4, high ones after), the top 2 from qh >> 2·(j/2). */
@inline function weightVec<T>(wb: usize, i: i32): v128 {
  const m4 = i8x16.splat(15);
  if (isQ6<T>()) {
    const h = i >> 3, j = i & 7;
    const a = v128.load(wb + <usize>(64 * h + 16 * (j & 3)));
    const top = v128.and(i8x16.shr_u(v128.load(wb + <usize>(128 + 32 * h + 16 * (j & 1))), <u32>(2 * (j >> 1))), i8x16.splat(3));
    return v128.or(j < 4 ? v128.and(a, m4) : i8x16.shr_u(a, 4), i8x16.shl(top, 4));
  }
  const c = i >> 2, kind = i & 3;
  const b = v128.load(wb + (isQ4<T>() ? 16 : 48) + <usize>(32 * c + 16 * (kind & 1)));
  const v = kind < 2 ? v128.and(b, m4) : i8x16.shr_u(b, 4);
  if (!isQ5<T>()) return v;
  const bit = i8x16.shr_u(v128.load(wb + 16 + <usize>(16 * (kind & 1))), <u32>(2 * c + (kind >> 1)));
  return v128.or(v, i8x16.shl(v128.and(bit, i8x16.splat(1)), 4));
}

/** One q4_K / q5_K super-block (its weights unpacked in v0..v15, sub-block s's scale as i16 lanes
 *  in c_s, its scales and mins in sm, its d and dmin) · the q8_K block at xb: f32 lanes
 *  d_x·d·isum − d_x·dmin·msum, isum = Σ sc·dot (a sub-block's two halves of pair sums added in i16
 *  first: 2·(2·31·128) fits), msum = Σ m·bsum; returns the super-block's f32 term (superTerm). */
@inline function blockQ45(xb: usize, v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128,
                          v8: v128, v9: v128, v10: v128, v11: v128, v12: v128, v13: v128, v14: v128, v15: v128,
                          c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128, c6: v128, c7: v128, sm: v128, d: f32, dmin: f32): f32 {
  const x = xb + 4;
  // sub-blocks 2c (low nibbles: v[4c], v[4c+1]) and 2c+1 (high: v[4c+2], v[4c+3]) of chunk c
  let isum = i32x4.dot_i16x8_s(i16x8.add(pairSums(v0, x), pairSums(v1, x + 16)), c0);
  isum = addScaled(isum, i16x8.add(pairSums(v2, x + 32), pairSums(v3, x + 48)), c1);
  isum = addScaled(isum, i16x8.add(pairSums(v4, x + 64), pairSums(v5, x + 80)), c2);
  isum = addScaled(isum, i16x8.add(pairSums(v6, x + 96), pairSums(v7, x + 112)), c3);
  isum = addScaled(isum, i16x8.add(pairSums(v8, x + 128), pairSums(v9, x + 144)), c4);
  isum = addScaled(isum, i16x8.add(pairSums(v10, x + 160), pairSums(v11, x + 176)), c5);
  isum = addScaled(isum, i16x8.add(pairSums(v12, x + 192), pairSums(v13, x + 208)), c6);
  isum = addScaled(isum, i16x8.add(pairSums(v14, x + 224), pairSums(v15, x + 240)), c7);
  // Σ x over each sub-block of 32 = pairs of q8_K's 16-value bsums
  const bs0 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 260)), bs1 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 276));
  const msum = weigh8(bs0, bs1, sm, true);
  return superTerm(d, dmin, load<f32>(xb), hsumI(isum), hsumI(msum));
}

/** One q6_K super-block (weights unpacked in v0..v15, 0..63; group g's i8 scale as i16 lanes in
 *  c_g, the 16 scales at sp, its d) · the q8_K block at xb: the f32 term d_x·d·Σ_g sc_g·(q·x − 32·Σx)_g
 *  (superTerm, dmin 0). The 6-bit q is dotted as it is; 32·Σ_g sc_g·bsum_g (q8_K's 16-value sums) is
 *  taken off after. */
@inline function blockQ6(xb: usize, v0: v128, v1: v128, v2: v128, v3: v128, v4: v128, v5: v128, v6: v128, v7: v128,
                         v8: v128, v9: v128, v10: v128, v11: v128, v12: v128, v13: v128, v14: v128, v15: v128,
                         c0: v128, c1: v128, c2: v128, c3: v128, c4: v128, c5: v128, c6: v128, c7: v128,
                         c8: v128, c9: v128, c10: v128, c11: v128, c12: v128, c13: v128, c14: v128, c15: v128, sp: usize, d: f32): f32 {
  const x = xb + 4;
  let isum = i32x4.dot_i16x8_s(pairSums(v0, x), c0);
  isum = addScaled(isum, pairSums(v1, x + 16), c1);
  isum = addScaled(isum, pairSums(v2, x + 32), c2);
  isum = addScaled(isum, pairSums(v3, x + 48), c3);
  isum = addScaled(isum, pairSums(v4, x + 64), c4);
  isum = addScaled(isum, pairSums(v5, x + 80), c5);
  isum = addScaled(isum, pairSums(v6, x + 96), c6);
  isum = addScaled(isum, pairSums(v7, x + 112), c7);
  isum = addScaled(isum, pairSums(v8, x + 128), c8);
  isum = addScaled(isum, pairSums(v9, x + 144), c9);
  isum = addScaled(isum, pairSums(v10, x + 160), c10);
  isum = addScaled(isum, pairSums(v11, x + 176), c11);
  isum = addScaled(isum, pairSums(v12, x + 192), c12);
  isum = addScaled(isum, pairSums(v13, x + 208), c13);
  isum = addScaled(isum, pairSums(v14, x + 224), c14);
  isum = addScaled(isum, pairSums(v15, x + 240), c15);
  const sc = v128.load(sp);
  const bsc = i32x4.add(i32x4.dot_i16x8_s(v128.load(xb, 260), i16x8.extend_low_i8x16_s(sc)),
                        i32x4.dot_i16x8_s(v128.load(xb, 276), i16x8.extend_high_i8x16_s(sc)));
  return superTerm(d, 0, load<f32>(xb), hsumI(isum) - (hsumI(bsc) << 5), 0);
}

/** Scale k (0..15) of a super-block as i16 lanes: q6_K's i8 scales (at sp); q4_K / q5_K's 6-bit
 *  sub-block scales (k < 8, bytes 0..7 of sm, scalesMins). */
@inline function scaleSplat<T>(sp: usize, sm: v128, k: i32): v128 {
  if (isQ6<T>()) return i16x8.splat(<i16>load<i8>(sp + <usize>k));
  let b: u8;
  switch (k) { // extract_lane takes a constant lane
    case 0: b = i8x16.extract_lane_u(sm, 0); break;
    case 1: b = i8x16.extract_lane_u(sm, 1); break;
    case 2: b = i8x16.extract_lane_u(sm, 2); break;
    case 3: b = i8x16.extract_lane_u(sm, 3); break;
    case 4: b = i8x16.extract_lane_u(sm, 4); break;
    case 5: b = i8x16.extract_lane_u(sm, 5); break;
    case 6: b = i8x16.extract_lane_u(sm, 6); break;
    default: b = i8x16.extract_lane_u(sm, 7);
  }
  return i16x8.splat(<i16>b);
}

// ---- one token: a row's super-block at a time (the x4 kernels' decode uses these too) ---------------

/** i16 lane g (0..7, a constant after inlining) of v in all eight lanes. */
@inline function dup16(v: v128, g: i32): v128 {
  switch (g) { // shuffle takes constant lanes
    case 0: return i8x16.shuffle(v, v, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
    case 1: return i8x16.shuffle(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    case 2: return i8x16.shuffle(v, v, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5);
    case 3: return i8x16.shuffle(v, v, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7);
    case 4: return i8x16.shuffle(v, v, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9);
    case 5: return i8x16.shuffle(v, v, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11);
    case 6: return i8x16.shuffle(v, v, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13);
    default: return i8x16.shuffle(v, v, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15);
  }
}

/** acc + Σ_g sc_g·(q·x)_g over one half (128 values, 8 groups of 16) of a q6_K row: low nibbles at
 *  ql (64 bytes: bytes 0..31 hold values 0..31 low, 64..95 high; 32..63 values 32..63 and 96..127),
 *  top bits at qh (32 bytes: bit pairs 0-1, 2-3, 4-5, 6-7 for values +0, +32, +64, +96), activations
 *  at x, the groups' scales as i16 lanes sc. One qh vector serves four weight vectors. */
@inline function halfQ6(acc: v128, ql: usize, qh: usize, x: usize, sc: v128): v128 {
  const m4 = i8x16.splat(15), top = i8x16.splat(0x30);
  const a = v128.load(ql), b = v128.load(ql, 16), c = v128.load(ql, 32), d = v128.load(ql, 48);
  const h0 = v128.load(qh), h1 = v128.load(qh, 16);
  acc = addScaled(acc, pairSums(v128.or(v128.and(a, m4), v128.and(i16x8.shl(h0, 4), top)), x), dup16(sc, 0));
  acc = addScaled(acc, pairSums(v128.or(v128.and(b, m4), v128.and(i16x8.shl(h1, 4), top)), x + 16), dup16(sc, 1));
  acc = addScaled(acc, pairSums(v128.or(v128.and(c, m4), v128.and(i16x8.shl(h0, 2), top)), x + 32), dup16(sc, 2));
  acc = addScaled(acc, pairSums(v128.or(v128.and(d, m4), v128.and(i16x8.shl(h1, 2), top)), x + 48), dup16(sc, 3));
  acc = addScaled(acc, pairSums(v128.or(v128.and(i16x8.shr_u(a, 4), m4), v128.and(h0, top)), x + 64), dup16(sc, 4));
  acc = addScaled(acc, pairSums(v128.or(v128.and(i16x8.shr_u(b, 4), m4), v128.and(h1, top)), x + 80), dup16(sc, 5));
  acc = addScaled(acc, pairSums(v128.or(v128.and(i16x8.shr_u(c, 4), m4), v128.and(i16x8.shr_u(h0, 2), top)), x + 96), dup16(sc, 6));
  return addScaled(acc, pairSums(v128.or(v128.and(i16x8.shr_u(d, 4), m4), v128.and(i16x8.shr_u(h1, 2), top)), x + 112), dup16(sc, 7));
}

/** One q6_K row's super-block (ql | qh at q, 16 i8 scales at s) · the q8_K block at xb: four i32
 *  lanes summing to Σ_g sc_g·(q·x)_g − 32·Σ_g sc_g·bsum_g, exact — blockQ6's integer. The one-token
 *  form: a qh vector serves four weight vectors, the bit fields cut with i16 shifts (x86 has no 8-bit
 *  ones; the masks drop what crosses a byte), each group's scale spread by one shuffle. A function of
 *  its own (see the top of this file). */
export function rowSumQ6(q: usize, s: usize, xb: usize): v128 {
  const sc = v128.load(s);
  const lo = i16x8.extend_low_i8x16_s(sc), hi = i16x8.extend_high_i8x16_s(sc);
  const bsc = i32x4.add(i32x4.dot_i16x8_s(v128.load(xb, 260), lo), i32x4.dot_i16x8_s(v128.load(xb, 276), hi));
  const acc = halfQ6(i32x4.sub(i32x4.splat(0), i32x4.shl(bsc, 5)), q, q + 128, xb + 4, lo);
  return halfQ6(acc, q + 64, q + 160, xb + 132, hi);
}

/** q5_K's fifth bit of sub-block s (0..7, a constant after inlining) from the qh bytes h, at bit 4. */
@inline function fifthBit(h: v128, s: i32): v128 {
  return v128.and(s <= 4 ? i16x8.shl(h, <i32>(4 - s)) : i16x8.shr_u(h, <i32>(s - 4)), i8x16.splat(0x10));
}

/** acc + sc_{2c}·(q·x) + sc_{2c+1}·(q·x) over chunk c (0..3, a constant after inlining) of a q4_K /
 *  q5_K row: 32 quant bytes at qs + 32c hold sub-blocks 2c (low nibbles) and 2c+1 (high); q5_K's
 *  fifth bits come from h0 / h1 (qh bytes 0..15 / 16..31). A sub-block's two halves of pair sums are
 *  added in i16 first (2·(2·31·127) fits). */
@inline function chunkQ45<T>(acc: v128, qs: usize, h0: v128, h1: v128, x: usize, sc: v128, c: i32): v128 {
  const m4 = i8x16.splat(15);
  const l0 = v128.load(qs + <usize>(32 * c)), l1 = v128.load(qs + <usize>(32 * c + 16));
  let w0 = v128.and(l0, m4), w1 = v128.and(l1, m4);
  let w2 = v128.and(i16x8.shr_u(l0, 4), m4), w3 = v128.and(i16x8.shr_u(l1, 4), m4);
  if (isQ5<T>()) {
    w0 = v128.or(w0, fifthBit(h0, 2 * c)); w1 = v128.or(w1, fifthBit(h1, 2 * c));
    w2 = v128.or(w2, fifthBit(h0, 2 * c + 1)); w3 = v128.or(w3, fifthBit(h1, 2 * c + 1));
  }
  const xc = x + <usize>(64 * c);
  acc = addScaled(acc, i16x8.add(pairSums(w0, xc), pairSums(w1, xc + 16)), dup16(sc, 2 * c));
  return addScaled(acc, i16x8.add(pairSums(w2, xc + 32), pairSums(w3, xc + 48)), dup16(sc, 2 * c + 1));
}

/** One q4_K / q5_K row's super-block (quants at q: q5_K's qh then qs, q4_K's qs; its 8 scales as
 *  i16 lanes sc) · the activations at x: four i32 lanes summing to Σ_s sc_s·(q·x)_s — blockQ45's isum. */
export function rowSumQ45<T>(q: usize, x: usize, sc: v128): v128 {
  const z = i32x4.splat(0);
  const h0 = isQ5<T>() ? v128.load(q) : z, h1 = isQ5<T>() ? v128.load(q, 16) : z;
  const qs = isQ5<T>() ? q + 32 : q;
  let acc = chunkQ45<T>(z, qs, h0, h1, x, sc, 0);
  acc = chunkQ45<T>(acc, qs, h0, h1, x, sc, 1);
  acc = chunkQ45<T>(acc, qs, h0, h1, x, sc, 2);
  return chunkQ45<T>(acc, qs, h0, h1, x, sc, 3);
}

/** Row wr (GGUF's layout) · one token (q8_K at xr): per super-block the exact integer sums of
 *  rowSumQ6 / rowSumQ45, then superTerm, the terms summed in order — rowTile's arithmetic. */
function rowDecode<T>(wr: usize, xr: usize, nb: i32): f32 {
  let a: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = wr + <usize>b * kBytes<T>(), xb = xr + <usize>b * XB;
    if (isQ6<T>()) {
      a += superTerm(loadF16(wb + 208), 0, load<f32>(xb), hsumI(rowSumQ6(wb, wb + 192, xb)), 0);
    } else {
      const sm = scalesMins(wb + 4, 4);
      const isum = hsumI(rowSumQ45<T>(wb + 16, xb + 4, i16x8.extend_low_i8x16_u(sm)));
      const bs0 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 260)), bs1 = i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 276));
      a += superTerm(loadF16(wb), loadF16(wb + 2), load<f32>(xb), isum, hsumI(weigh8(bs0, bs1, sm, true)));
    }
  }
  return a;
}

// ---- several tokens: one row × up to 4 tokens per super-block ----------------------------------------

/** q6_K super-block b of one row (at base; GGUF's layout) · TN tokens (q8_K blocks
 *  at xb + j·xRow, TN = 1..4): lane j = token j's f32 term (superTerm), lanes from TN on 0. The
 *  weights are unpacked, and the scales spread over lanes, once for the TN tokens; per token the
 *  arithmetic is the one-token kernel's. A function of its own, TN a run-time value: inlined into its
 *  callers' loops, or compiled once per TN as straight-line code, V8 spilled far more of its 32 live
 *  vectors (measured 1.3-2× slower); q4_K / q5_K (24) run fastest inlined (rowTile). */
function termsQ6(base: usize, b: i32, xb: usize, xRow: usize, TN: i32): v128 {
  const wb = quantsAt<u32>(base, b, 0, false), sp = scalesAt<u32>(base, b, 0, false), d = loadF16(scaleAt<u32>(base, b, 0, false, false));
  const v0 = weightVec<u32>(wb, 0), v1 = weightVec<u32>(wb, 1), v2 = weightVec<u32>(wb, 2), v3 = weightVec<u32>(wb, 3);
  const v4 = weightVec<u32>(wb, 4), v5 = weightVec<u32>(wb, 5), v6 = weightVec<u32>(wb, 6), v7 = weightVec<u32>(wb, 7);
  const v8 = weightVec<u32>(wb, 8), v9 = weightVec<u32>(wb, 9), v10 = weightVec<u32>(wb, 10), v11 = weightVec<u32>(wb, 11);
  const v12 = weightVec<u32>(wb, 12), v13 = weightVec<u32>(wb, 13), v14 = weightVec<u32>(wb, 14), v15 = weightVec<u32>(wb, 15);
  const sm = i32x4.splat(0);
  const c0 = scaleSplat<u32>(sp, sm, 0), c1 = scaleSplat<u32>(sp, sm, 1), c2 = scaleSplat<u32>(sp, sm, 2), c3 = scaleSplat<u32>(sp, sm, 3);
  const c4 = scaleSplat<u32>(sp, sm, 4), c5 = scaleSplat<u32>(sp, sm, 5), c6 = scaleSplat<u32>(sp, sm, 6), c7 = scaleSplat<u32>(sp, sm, 7);
  const c8 = scaleSplat<u32>(sp, sm, 8), c9 = scaleSplat<u32>(sp, sm, 9), c10 = scaleSplat<u32>(sp, sm, 10), c11 = scaleSplat<u32>(sp, sm, 11);
  const c12 = scaleSplat<u32>(sp, sm, 12), c13 = scaleSplat<u32>(sp, sm, 13), c14 = scaleSplat<u32>(sp, sm, 14), c15 = scaleSplat<u32>(sp, sm, 15);
  let t = f32x4.splat(0);
  t = f32x4.replace_lane(t, 0, blockQ6(xb, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, sp, d));
  if (TN > 1) t = f32x4.replace_lane(t, 1, blockQ6(xb + xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, sp, d));
  if (TN > 2) t = f32x4.replace_lane(t, 2, blockQ6(xb + 2 * xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, sp, d));
  if (TN > 3) t = f32x4.replace_lane(t, 3, blockQ6(xb + 3 * xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, sp, d));
  return t;
}

/** Stores lanes 0..TN−1 of v (token j's value of one row) at yp + j·yRow. */
@inline function storeTokens(yp: usize, yRow: usize, v: v128, TN: i32): void {
  store<f32>(yp, f32x4.extract_lane(v, 0));
  if (TN > 1) store<f32>(yp + yRow, f32x4.extract_lane(v, 1));
  if (TN > 2) store<f32>(yp + 2 * yRow, f32x4.extract_lane(v, 2));
  if (TN > 3) store<f32>(yp + 3 * yRow, f32x4.extract_lane(v, 3));
}

/** One row (at base, or for q5_K row k of the x4 group at base) · TN tokens (xr + j·xRow, TN = 1..4, a
 *  constant after inlining), stored at yp + j·yRow. Each super-block's weights are unpacked, and its
 *  scales spread over lanes, once for the TN tokens; per token the arithmetic is the one-token
 *  kernel's (the super-blocks' terms summed in order, as the twin does), so a token's result is the
 *  same bits however many tokens share its tile. */
@inline function rowTile<T>(base: usize, k: usize, x4: bool, xr: usize, xRow: usize, nb: i32, TN: i32, yp: usize, yRow: usize): void {
  if (isQ6<T>()) { // GGUF's layout only: q6_K's x4 layout regroups the bits (kernels/matmul-kquant-x4.ts)
    let a = f32x4.splat(0); // lane j: token j (f32 additions lane by lane, as the scalar sum)
    for (let b = 0; b < nb; b++) a = f32x4.add(a, termsQ6(base, b, xr + <usize>b * XB, xRow, TN));
    storeTokens(yp, yRow, a, TN);
    return;
  }
  let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const wb = quantsAt<T>(base, b, k, x4), xb = xr + <usize>b * XB, sp = scalesAt<T>(base, b, k, x4);
    const d = loadF16(scaleAt<T>(base, b, k, x4, false)), dmin = loadF16(scaleAt<T>(base, b, k, x4, true));
    const v0 = weightVec<T>(wb, 0), v1 = weightVec<T>(wb, 1), v2 = weightVec<T>(wb, 2), v3 = weightVec<T>(wb, 3);
    const v4 = weightVec<T>(wb, 4), v5 = weightVec<T>(wb, 5), v6 = weightVec<T>(wb, 6), v7 = weightVec<T>(wb, 7);
    const v8 = weightVec<T>(wb, 8), v9 = weightVec<T>(wb, 9), v10 = weightVec<T>(wb, 10), v11 = weightVec<T>(wb, 11);
    const v12 = weightVec<T>(wb, 12), v13 = weightVec<T>(wb, 13), v14 = weightVec<T>(wb, 14), v15 = weightVec<T>(wb, 15);
    const sm = scalesMins(sp, scaleStep(x4));
    const c0 = scaleSplat<T>(sp, sm, 0), c1 = scaleSplat<T>(sp, sm, 1), c2 = scaleSplat<T>(sp, sm, 2), c3 = scaleSplat<T>(sp, sm, 3);
    const c4 = scaleSplat<T>(sp, sm, 4), c5 = scaleSplat<T>(sp, sm, 5), c6 = scaleSplat<T>(sp, sm, 6), c7 = scaleSplat<T>(sp, sm, 7);
    a0 += blockQ45(xb, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, sm, d, dmin);
    if (TN > 1) a1 += blockQ45(xb + xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, sm, d, dmin);
    if (TN > 2) a2 += blockQ45(xb + 2 * xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, sm, d, dmin);
    if (TN > 3) a3 += blockQ45(xb + 3 * xRow, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14, v15, c0, c1, c2, c3, c4, c5, c6, c7, sm, d, dmin);
  }
  store<f32>(yp, a0);
  if (TN > 1) store<f32>(yp + yRow, a1);
  if (TN > 2) store<f32>(yp + 2 * yRow, a2);
  if (TN > 3) store<f32>(yp + 3 * yRow, a3);
}

/** A row's tiles of 4 tokens (the last one 1..3) over tokens [t0, t1): rowTile for each. */
@inline export function rowTiles<T>(wr: usize, k: usize, x4: bool, x: usize, xRow: usize, nb: i32, t0: i32, t1: i32, yr: usize, yRow: usize): void {
  let t = t0;
  for (; t + 4 <= t1; t += 4) rowTile<T>(wr, k, x4, x + <usize>t * xRow, xRow, nb, 4, yr + <usize>t * yRow, yRow);
  const left = t1 - t, xt = x + <usize>t * xRow, yt = yr + <usize>t * yRow;
  if (left == 3) rowTile<T>(wr, k, x4, xt, xRow, nb, 3, yt, yRow);
  else if (left == 2) rowTile<T>(wr, k, x4, xt, xRow, nb, 2, yt, yRow);
  else if (left == 1) rowTile<T>(wr, k, x4, xt, xRow, nb, 1, yt, yRow);
}

@inline function matmulK<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 8;
  const wRow = <usize>nb * kBytes<T>();
  const xRow = <usize>nb * XB;
  const yRow = <usize>rows << 2;
  if (n == 1) {
    for (let r = r0; r < r1; r++) store<f32>(y + (<usize>r << 2), rowDecode<T>(w + <usize>r * wRow, x, nb));
    return;
  }
  // Tokens per chunk: keep the chunk's activation blocks within ~256 KiB of L2.
  const chunk = max<i32>(<i32>(<usize>262144 / max<usize>(xRow, 1)), 1);
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    for (let r = r0; r < r1; r++) rowTiles<T>(w + <usize>r * wRow, 0, false, x, xRow, nb, t0, t1, y + (<usize>r << 2), yRow);
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

/** Byte i (0..11) of the packed scales whose words lie at p, p + step, p + 2·step. */
@inline function scaleByte(p: usize, step: usize, i: i32): u32 {
  return <u32>load<u8>(p + <usize>(i >> 2) * step + <usize>(i & 3));
}

/** 6-bit scale (mins = false) or min of sub-block j of the packed scales at p. */
@inline function scaleOrMin(p: usize, step: usize, j: i32, mins: bool): f32 {
  const o = mins ? 4 : 0;
  if (j < 4) return <f32>(scaleByte(p, step, j + o) & 63);
  return <f32>(mins ? (scaleByte(p, step, j + 4) >> 4) | ((scaleByte(p, step, j) >> 6) << 4)
                    : (scaleByte(p, step, j + 4) & 15) | ((scaleByte(p, step, j - 4) >> 6) << 4));
}

/** dst (256 f32) = super-block b of the row at base (GGUF's layout, or row k of an x4 group). */
@inline function dequantBlock<T>(base: usize, b: i32, k: usize, x4: bool, dp: usize): void {
  const wb = quantsAt<T>(base, b, k, x4), sp = scalesAt<T>(base, b, k, x4), d = loadF16(scaleAt<T>(base, b, k, x4, false));
  if (isQ6<T>()) {
    for (let i = 0; i < 256; i++) {
      let v: i32, sc: f32;
      if (x4) { // value i's byte in vector j of its group (j = 3: bits 6..7 of the three vectors)
        const p = wb + <usize>(48 * (i >> 4) + (i & 3)), j = (i >> 2) & 3;
        v = j < 3 ? <i32>load<u8>(p + <usize>(16 * j)) & 63
                  : (<i32>load<u8>(p) >> 6) | ((<i32>load<u8>(p + 16) >> 6) << 2) | ((<i32>load<u8>(p + 32) >> 6) << 4);
        sc = <f32>load<i8>(sp + <usize>(8 * (i >> 5) + ((i >> 4) & 1)));
      } else {
        const h = i >> 7, q = (i >> 5) & 3, l = i & 31;
        const lowByte = <i32>load<u8>(wb + <usize>(64 * h + l + 32 * (q & 1)));
        const low = q < 2 ? lowByte & 15 : lowByte >> 4;
        v = low | (((<i32>load<u8>(wb + <usize>(128 + 32 * h + l)) >> (2 * q)) & 3) << 4);
        sc = <f32>load<i8>(sp + <usize>(i >> 4));
      }
      store<f32>(dp + (<usize>i << 2), (d * sc) * <f32>(v - 32));
    }
    return;
  }
  const dmin = loadF16(scaleAt<T>(base, b, k, x4, true)), step = scaleStep(x4);
  const qs = isQ4<T>() ? wb + 16 : wb + 48;
  for (let j = 0; j < 8; j++) {
    const d1 = d * scaleOrMin(sp, step, j, false), m1 = dmin * scaleOrMin(sp, step, j, true);
    for (let l = 0; l < 32; l++) {
      const m = 32 * (j >> 1) + l; // q4_K x4: qs byte m of the row in run m >> 2 of 16 bytes
      const byte = <u32>load<u8>(qs + <usize>(isQ4<T>() && x4 ? 16 * (m >> 2) + (m & 3) : m));
      let q = (j & 1) ? byte >> 4 : byte & 15;
      if (isQ5<T>()) q |= ((<u32>load<u8>(wb + 16 + <usize>l) >> <u32>j) & 1) << 4;
      store<f32>(dp + (<usize>(32 * j + l) << 2), d1 * <f32>q - m1);
    }
  }
}

@inline function toF32K<T>(src: usize, dst: usize, count: i32): void {
  const nb = count >> 8;
  for (let b = 0; b < nb; b++) dequantBlock<T>(src, b, 0, false, dst + (<usize>b << 10));
}

/** dst (cols f32) = row r of an x4 matrix (the embedding lookup). */
@inline export function rowToF32KX4<T>(w: usize, r: i32, cols: i32, dst: usize): void {
  const nb = cols >> 8, base = w + <usize>(r >> 2) * <usize>nb * (kBytes<T>() << 2);
  for (let b = 0; b < nb; b++) dequantBlock<T>(base, b, <usize>(r & 3), true, dst + (<usize>b << 10));
}

export function toF32Q4_K(src: usize, dst: usize, count: i32): void { toF32K<u8>(src, dst, count); }
export function toF32Q5_K(src: usize, dst: usize, count: i32): void { toF32K<u16>(src, dst, count); }
export function toF32Q6_K(src: usize, dst: usize, count: i32): void { toF32K<u32>(src, dst, count); }
