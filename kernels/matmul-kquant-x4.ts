// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in the "x4" layout of q4_K, q5_K or q6_K
// (made at load by src/kernels/repack.ts), Xq = X quantised to q8_K (quantizeQ8K).
// Four rows are interleaved super-block by super-block. Group g (rows 4g..4g+3) holds nb super-blocks
// of 4·B bytes (B = GGUF's 144 / 176 / 210), the GGUF bits only moved, so the size is the GGUF size:
//   q4_K / q5_K: the four rows' f16 d (8 bytes), f16 dmin (8), the three 4-byte words of their packed
//                6-bit scales word by word (word w of row k at 16 + 16w + 4k), then the quants at 64:
//                q4_K's qs in runs of 4 bytes, run j of row k at 64 + 16j + 4k; q5_K's row k's qh
//                (32 bytes) then qs (128) at 64 + 160k;
//   q6_K:        the four rows' f16 d (8 bytes), their i8 scales two groups at a time (row k's of
//                groups 2p, 2p+1 at 8 + 8p + 2k), then per group of 16 values 48 bytes: three vectors,
//                byte 4k + e of vector i holding row k's value 4i + e (0..63) in bits 0..5 and bits
//                2i..2i+1 of its value 12 + e in bits 6..7.
// Decode (n = 1) takes a group's super-block at once. q4_K and q6_K: a 16-byte vector of quants holds
// four consecutive values of each of the four rows, so one broadcast run of four activations
// multiplies all four (pairSums4), each sub-block's scales of the four rows form one i16 vector, and
// lane k of the sums is row k's: no per-row reductions, and q6_K unpacks 64 values in 11 operations
// (17 from GGUF's bit fields). q5_K: each row's sums from matmul-kquant.ts's rowSumQ45, the four
// reduced together (hsum4i). Then the four rows' exact integer sums are converted and scaled together
// (superTerm's f64 steps two lanes at a time). The integer sums per super-block and the f32 operations
// on them are those of kernels/matmul-kquant.ts (the TypeScript twin's), so a row's result is the
// same bits as in GGUF's layout. Several tokens (prefill, batched decode): q4_K and q6_K in tiles of
// the group's four rows × 4 tokens whose quants are unpacked once per tile (groupTileQ4 / groupTileQ6,
// each token's integers and f32 steps the one-token kernel's); q5_K the one-token kernel per token, a
// group at a time, and from 8 tokens on that file's row × 4-token tiles (see matmulKX4) — the same
// bits again (test/models/batch.test.ts relies on a row's result not depending on the number of tokens).
// rows % 4 == 0, cols % 256 == 0. Weight types are the marker type parameters of matmul-kquant.ts.

import { hsum4i, loadSmallF16x4, pairSums4 } from './vector';
import { storeGroup } from './matmul-quant-x4';
import { XB, headBytes, isQ4, isQ5, isQ6, kBytes, partBytes, rowSumQ45, rowTiles, rowToF32KX4 } from './matmul-kquant';

/** f32 lanes f32(f64(s)·f64(i)) of f32 lanes s and i32 lanes i: superTerm's rounding, four at once. */
@inline function mulRound(s: v128, i: v128): v128 {
  const lo = f64x2.mul(f64x2.promote_low_f32x4(s), f64x2.convert_low_i32x4_s(i));
  const hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(s, s, 2, 3, 0, 1)), f64x2.convert_low_i32x4_s(i32x4.shuffle(i, i, 2, 3, 0, 1)));
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** superTerm (kernels/matmul-kquant.ts) of four rows: lanes f32(d·dx)·isum − f32(dmin·dx)·msum. */
@inline function superTerm4(d: v128, dmin: v128, dx: f32, isum: v128, msum: v128): v128 {
  const vx = f32x4.splat(dx);
  return f32x4.sub(mulRound(f32x4.mul(d, vx), isum), mulRound(f32x4.mul(dmin, vx), msum));
}

/** acc + the four rows' Σ sc·(q·x) over one q6_K group of 16 values: its 48 bytes at q (three
 *  vectors, byte 4k + e of vector i = row k's value 4i + e in bits 0..5, value 12 + e's bits 2i..2i+1
 *  in bits 6..7; src/kernels/repack.ts), activations at x, scales sc = i16 [s0, s0, s1, s1, .., s3, s3]
 *  (row k's in lanes 2k, 2k+1). Two runs' pair sums are added in i16 before widening: each is at most
 *  2·63·128, two fit i16. */
@inline function groupQ6(acc: v128, q: usize, x: usize, sc: v128): v128 {
  // one mask (V8 rematerialises each vector constant in the loop: 3 instructions apiece); the i16
  // shifts move only masked bits 6..7, so nothing crosses a byte
  const v0 = v128.load(q), v1 = v128.load(q, 16), v2 = v128.load(q, 32), top = i8x16.splat(<i8>0xc0);
  const v3 = v128.or(v128.or(i16x8.shr_u(v128.and(v0, top), 6), i16x8.shr_u(v128.and(v1, top), 4)), i16x8.shr_u(v128.and(v2, top), 2));
  const p01 = i16x8.add(pairSums4(v128.andnot(v0, top), x), pairSums4(v128.andnot(v1, top), x + 4));
  const p23 = i16x8.add(pairSums4(v128.andnot(v2, top), x + 8), pairSums4(v3, x + 12));
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(p01, sc), i32x4.dot_i16x8_s(p23, sc)));
}

/** The four rows' Σ sc·(q·x) over one q6_K group of 16 values already unpacked (w0..w2: bits 0..5 of
 *  the three vectors, w3: the fourth from their top bits; groupQ6's operations), activations at x,
 *  scales sc as in groupQ6: the i32 sums groupQ6 adds to its accumulator. */
@inline function groupDotQ6(w0: v128, w1: v128, w2: v128, w3: v128, x: usize, sc: v128): v128 {
  const p01 = i16x8.add(pairSums4(w0, x), pairSums4(w1, x + 4));
  const p23 = i16x8.add(pairSums4(w2, x + 8), pairSums4(w3, x + 12));
  return i32x4.add(i32x4.dot_i16x8_s(p01, sc), i32x4.dot_i16x8_s(p23, sc));
}

/** −32·Σ_g sc_g·bsum_g of the four rows (lane k = row k) for the q8_K block at xb: superSumQ6's start. */
@inline function bsumTermQ6(hb: usize, xb: usize): v128 {
  let bsc = i32x4.splat(0);
  for (let p: usize = 0; p < 8; p++) bsc = i32x4.add(bsc, i32x4.dot_i16x8_s(v128.load8x8_s(hb + 8 + (p << 3)), v128.load32_splat(xb + 260 + (p << 2))));
  return i32x4.sub(i32x4.splat(0), i32x4.shl(bsc, 5));
}

/** Group g's four rows (at wg) of q6_K x4 · TN tokens (2 or 4, a constant after inlining; xr + j·xRow),
 *  stored at yp + j·yRow: per 16-value group the three vectors are loaded and unpacked once for the
 *  TN tokens (groupDecode unpacks them again for every token). Each token's integer sums are
 *  superSumQ6's (integer additions in another order: the same integers) and its f32 steps
 *  groupDecode's, so a row's result is the same bits as with one token. */
@inline function groupTileQ6(wg: usize, xr: usize, xRow: usize, nb: i32, TN: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const BB = kBytes<u32>() << 2, z = i32x4.splat(0);
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
  for (let b = 0; b < nb; b++) {
    const hb = wg + <usize>b * BB, xb = xr + <usize>b * XB;
    let i0 = bsumTermQ6(hb, xb), i1 = bsumTermQ6(hb, xb + xRow), i2 = z, i3 = z;
    if (TN > 2) { i2 = bsumTermQ6(hb, xb + 2 * xRow); i3 = bsumTermQ6(hb, xb + 3 * xRow); }
    let q = hb + 72, x = xb + 4, sp = hb + 8;
    for (let g: usize = 0; g < 16; g++, q += 48, x += 16) {
      const s = v128.load8x8_s(sp + (g & 1));
      const sc = i8x16.shuffle(s, s, 0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
      const v0 = v128.load(q), v1 = v128.load(q, 16), v2 = v128.load(q, 32), top = i8x16.splat(<i8>0xc0);
      const w3 = v128.or(v128.or(i16x8.shr_u(v128.and(v0, top), 6), i16x8.shr_u(v128.and(v1, top), 4)), i16x8.shr_u(v128.and(v2, top), 2));
      const w0 = v128.andnot(v0, top), w1 = v128.andnot(v1, top), w2 = v128.andnot(v2, top);
      i0 = i32x4.add(i0, groupDotQ6(w0, w1, w2, w3, x, sc));
      i1 = i32x4.add(i1, groupDotQ6(w0, w1, w2, w3, x + xRow, sc));
      if (TN > 2) {
        i2 = i32x4.add(i2, groupDotQ6(w0, w1, w2, w3, x + 2 * xRow, sc));
        i3 = i32x4.add(i3, groupDotQ6(w0, w1, w2, w3, x + 3 * xRow, sc));
      }
      sp += (g & 1) << 3;
    }
    const d = loadSmallF16x4(hb);
    f0 = f32x4.add(f0, mulRound(f32x4.mul(d, f32x4.splat(load<f32>(xb))), i0));
    f1 = f32x4.add(f1, mulRound(f32x4.mul(d, f32x4.splat(load<f32>(xb + xRow))), i1));
    if (TN > 2) {
      f2 = f32x4.add(f2, mulRound(f32x4.mul(d, f32x4.splat(load<f32>(xb + 2 * xRow))), i2));
      f3 = f32x4.add(f3, mulRound(f32x4.mul(d, f32x4.splat(load<f32>(xb + 3 * xRow))), i3));
    }
  }
  storeGroup(yp, f0, r, r0, r1);
  storeGroup(yp + yRow, f1, r, r0, r1);
  if (TN > 2) { storeGroup(yp + 2 * yRow, f2, r, r0, r1); storeGroup(yp + 3 * yRow, f3, r, r0, r1); }
}
function groupTileQ6x4(wg: usize, xr: usize, xRow: usize, nb: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void { groupTileQ6(wg, xr, xRow, nb, 4, yp, yRow, r, r0, r1); }
function groupTileQ6x2(wg: usize, xr: usize, xRow: usize, nb: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void { groupTileQ6(wg, xr, xRow, nb, 2, yp, yRow, r, r0, r1); }

/** The four rows' exact integer sums of a q6_K x4 super-block (at hb) · the q8_K block at xb: lane k
 *  = Σ_g sc_g·(q·x)_g − 32·Σ_g sc_g·bsum_g of row k, rowSumQ6's integer. Scales come two groups at a
 *  time (8 bytes: row k's at 2k, 2k+1), which weigh a pair of bsums in one dot; group g's are lanes
 *  0, 2, 4, 6 of the 8 bytes from 8 + 8·(g >> 1) + (g & 1) (for odd g the load runs a byte on).
 *  One group per iteration: V8 issues a loop body's loads first, and two groups' 16 loaded vectors
 *  spilled. */
function superSumQ6(hb: usize, xb: usize): v128 {
  let bsc = i32x4.splat(0);
  for (let p: usize = 0; p < 8; p++) bsc = i32x4.add(bsc, i32x4.dot_i16x8_s(v128.load8x8_s(hb + 8 + (p << 3)), v128.load32_splat(xb + 260 + (p << 2))));
  let acc = i32x4.sub(i32x4.splat(0), i32x4.shl(bsc, 5));
  // pointers stepped rather than addresses computed from g: fewer scalar instructions beside the
  // vector ones (V8 adds a stack check to each back-edge as well)
  let q = hb + 72, x = xb + 4, sp = hb + 8;
  for (let g: usize = 0; g < 16; g++, q += 48, x += 16) {
    const s = v128.load8x8_s(sp + (g & 1));
    acc = groupQ6(acc, q, x, i8x16.shuffle(s, s, 0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13));
    sp += (g & 1) << 3;
  }
  return acc;
}

/** Sub-block j's (0..7, a constant after inlining) 6-bit scales of the four rows as i16 lanes
 *  [s0, s0, s1, s1, .., s3, s3], from s03 / s47 (lane k = row k's scales 0..3 / 4..7, a byte each). */
@inline function scale4(s03: v128, s47: v128, j: i32): v128 {
  const z = i32x4.splat(0);
  switch (j) { // shuffle takes constant lanes
    case 0: return i8x16.shuffle(s03, z, 0, 16, 0, 16, 4, 16, 4, 16, 8, 16, 8, 16, 12, 16, 12, 16);
    case 1: return i8x16.shuffle(s03, z, 1, 16, 1, 16, 5, 16, 5, 16, 9, 16, 9, 16, 13, 16, 13, 16);
    case 2: return i8x16.shuffle(s03, z, 2, 16, 2, 16, 6, 16, 6, 16, 10, 16, 10, 16, 14, 16, 14, 16);
    case 3: return i8x16.shuffle(s03, z, 3, 16, 3, 16, 7, 16, 7, 16, 11, 16, 11, 16, 15, 16, 15, 16);
    case 4: return i8x16.shuffle(s47, z, 0, 16, 0, 16, 4, 16, 4, 16, 8, 16, 8, 16, 12, 16, 12, 16);
    case 5: return i8x16.shuffle(s47, z, 1, 16, 1, 16, 5, 16, 5, 16, 9, 16, 9, 16, 13, 16, 13, 16);
    case 6: return i8x16.shuffle(s47, z, 2, 16, 2, 16, 6, 16, 6, 16, 10, 16, 10, 16, 14, 16, 14, 16);
    default: return i8x16.shuffle(s47, z, 3, 16, 3, 16, 7, 16, 7, 16, 11, 16, 11, 16, 15, 16, 15, 16);
  }
}

/** scale4 for a sub-block j (0..7) known only at run time: a byte swizzle (indices past 15 give 0). */
@inline function scaleAt(s03: v128, s47: v128, j: i32): v128 {
  const base = i8x16(0, -128, 0, -128, 4, -128, 4, -128, 8, -128, 8, -128, 12, -128, 12, -128);
  return i8x16.swizzle(j < 4 ? s03 : s47, i8x16.add(base, i8x16.splat(<i8>(j & 3))));
}

/** The four rows' Σ_s sc_s·(q·x)_s of a q4_K x4 super-block (quants at q, activations at x, scales
 *  s03 / s47 as in scale4): lane k = row k's rowSumQ45 total. Chunk c (0..3) is eight runs of 16
 *  bytes at q + 128c, run j holding row k's qs bytes 4j..4j+3 at 4k (src/kernels/repack.ts), so
 *  values 64c + 4j.. in the low nibbles and 64c + 32 + 4j.. in the high. Each run's pair sums add in
 *  i16 (at most 2·15·128 apiece, eight fit) and are widened once per sub-block. Run j of all four
 *  chunks per loop iteration: V8 pays each back-edge a stack check and the loop's address
 *  arithmetic, as many scalar instructions as one run's vector ones (fully unrolled, its scheduler
 *  issued all loads first and spilled them). A function of its own (see groupDecode). */
function superSumQ4(q: usize, x: usize, s03: v128, s47: v128): v128 {
  const m4 = i8x16.splat(15);
  let l0 = i16x8.splat(0), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
  let xj = x;
  for (let qj = q, end = q + 128; qj < end; qj += 16) {
    let v = v128.load(qj);
    l0 = i16x8.add(l0, pairSums4(v128.and(v, m4), xj));
    h0 = i16x8.add(h0, pairSums4(v128.and(i16x8.shr_u(v, 4), m4), xj + 32));
    v = v128.load(qj, 128);
    l1 = i16x8.add(l1, pairSums4(v128.and(v, m4), xj + 64));
    h1 = i16x8.add(h1, pairSums4(v128.and(i16x8.shr_u(v, 4), m4), xj + 96));
    v = v128.load(qj, 256);
    l2 = i16x8.add(l2, pairSums4(v128.and(v, m4), xj + 128));
    h2 = i16x8.add(h2, pairSums4(v128.and(i16x8.shr_u(v, 4), m4), xj + 160));
    v = v128.load(qj, 384);
    l3 = i16x8.add(l3, pairSums4(v128.and(v, m4), xj + 192));
    h3 = i16x8.add(h3, pairSums4(v128.and(i16x8.shr_u(v, 4), m4), xj + 224));
    xj += 4;
  }
  const a01 = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(l0, scale4(s03, s47, 0)), i32x4.dot_i16x8_s(h0, scale4(s03, s47, 1))),
                        i32x4.add(i32x4.dot_i16x8_s(l1, scale4(s03, s47, 2)), i32x4.dot_i16x8_s(h1, scale4(s03, s47, 3))));
  const a23 = i32x4.add(i32x4.add(i32x4.dot_i16x8_s(l2, scale4(s03, s47, 4)), i32x4.dot_i16x8_s(h2, scale4(s03, s47, 5))),
                        i32x4.add(i32x4.dot_i16x8_s(l3, scale4(s03, s47, 6)), i32x4.dot_i16x8_s(h3, scale4(s03, s47, 7))));
  return i32x4.add(a01, a23);
}

// q4_K / q5_K packed scales (scalesMins' bit fields, four rows at once: lane k = row k's 4-byte word)
/** Scales (or mins) 0..3 of word w: each byte's low 6 bits. */
@inline function low6(w: v128): v128 { return v128.and(w, i32x4.splat(0x3f3f3f3f)); }
/** Scales (or mins) 4..7: the low nibbles of `lo` (word 2 for scales, word 2 >> 4 for mins) with bits
 *  6..7 of word `top` (0 for scales, 1 for mins) above them. */
@inline function high6(top: v128, lo: v128): v128 {
  return v128.or(v128.and(lo, i32x4.splat(0x0f0f0f0f)), i32x4.shl(v128.and(i32x4.shr_u(top, 6), i32x4.splat(0x03030303)), 4));
}
/** Rows 0, 1 (rows01) or 2, 3 (rows23): their eight values 0..3 (from a) and 4..7 (from b) as bytes 0..7 and 8..15. */
@inline function rows01(a: v128, b: v128): v128 { return i8x16.shuffle(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23); }
@inline function rows23(a: v128, b: v128): v128 { return i8x16.shuffle(a, b, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31); }

/** The four rows' Σ_s min_s·Σx_s (lane k = row k) for the q8_K block at xb: Σ x per sub-block of 32
 *  (pairs of q8_K's 16-value bsums; |Σ| ≤ 32·127 fits i16) · the mins n01 / n23 (rows01 / rows23). */
@inline function minSums(n01: v128, n23: v128, xb: usize): v128 {
  const bs = i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 260)), i32x4.extadd_pairwise_i16x8_s(v128.load(xb, 276)));
  return hsum4i(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(n01), bs), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(n01), bs),
                i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(n23), bs), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(n23), bs));
}

/** Group g's four rows (at wg) of q4_K x4 · TN tokens (2 or 4, a constant after inlining; xr + j·xRow),
 *  stored at yp + j·yRow: per super-block the scales and mins are unpacked, and per 16-byte run of
 *  quants the nibbles, once for the TN tokens. Runs go chunk by chunk (superSumQ4 takes run j of all
 *  four chunks at once, for one token): the same i16 pair sums per sub-block, so each token's integer
 *  sums are superSumQ4's and minSums', and its f32 steps groupDecode's — the same bits as one token.
 *  A chunk's low nibbles, then its high ones, in two passes over its runs: one pass's four
 *  accumulators instead of eight left V8 room in the 16 vector registers (1.09–1.18× at 4–64 tokens,
 *  though each run is loaded twice). */
@inline function groupTileQ4(wg: usize, xr: usize, xRow: usize, nb: i32, TN: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const BB = kBytes<u8>() << 2, HB = headBytes<u8>(), z = i32x4.splat(0), m4 = i8x16.splat(15);
  let f0 = f32x4.splat(0), f1 = f0, f2 = f0, f3 = f0;
  for (let b = 0; b < nb; b++) {
    const hb = wg + <usize>b * BB, xb = xr + <usize>b * XB, q = hb + HB;
    const w0 = v128.load(hb, 16), w1 = v128.load(hb, 32), w2 = v128.load(hb, 48);
    const s03 = low6(w0), s47 = high6(w0, w2);
    let i0 = z, i1 = z, i2 = z, i3 = z;
    for (let c = 0; c < 4; c++) {
      // chunk c: sub-blocks 2c (low nibbles) and 2c + 1 (high), values 64c.. of each row
      let l0 = z, h0 = z, l1 = z, h1 = z, l2 = z, h2 = z, l3 = z, h3 = z;
      const qc = q + (<usize>c << 7), xc = xb + 4 + (<usize>c << 6);
      for (let j: usize = 0; j < 8; j++) {
        const lo = v128.and(v128.load(qc + (j << 4)), m4), xj = xc + (j << 2);
        l0 = i16x8.add(l0, pairSums4(lo, xj));
        l1 = i16x8.add(l1, pairSums4(lo, xj + xRow));
        if (TN > 2) {
          l2 = i16x8.add(l2, pairSums4(lo, xj + 2 * xRow));
          l3 = i16x8.add(l3, pairSums4(lo, xj + 3 * xRow));
        }
      }
      for (let j: usize = 0; j < 8; j++) {
        const hi = v128.and(i16x8.shr_u(v128.load(qc + (j << 4)), 4), m4), xj = xc + (j << 2) + 32;
        h0 = i16x8.add(h0, pairSums4(hi, xj));
        h1 = i16x8.add(h1, pairSums4(hi, xj + xRow));
        if (TN > 2) {
          h2 = i16x8.add(h2, pairSums4(hi, xj + 2 * xRow));
          h3 = i16x8.add(h3, pairSums4(hi, xj + 3 * xRow));
        }
      }
      const sl = scaleAt(s03, s47, c << 1), sh = scaleAt(s03, s47, (c << 1) + 1);
      i0 = i32x4.add(i0, i32x4.add(i32x4.dot_i16x8_s(l0, sl), i32x4.dot_i16x8_s(h0, sh)));
      i1 = i32x4.add(i1, i32x4.add(i32x4.dot_i16x8_s(l1, sl), i32x4.dot_i16x8_s(h1, sh)));
      if (TN > 2) {
        i2 = i32x4.add(i2, i32x4.add(i32x4.dot_i16x8_s(l2, sl), i32x4.dot_i16x8_s(h2, sh)));
        i3 = i32x4.add(i3, i32x4.add(i32x4.dot_i16x8_s(l3, sl), i32x4.dot_i16x8_s(h3, sh)));
      }
    }
    const n03 = low6(w1), n47 = high6(w1, i32x4.shr_u(w2, 4)), n01 = rows01(n03, n47), n23 = rows23(n03, n47);
    const d = loadSmallF16x4(hb), dmin = loadSmallF16x4(hb + 8);
    f0 = f32x4.add(f0, superTerm4(d, dmin, load<f32>(xb), i0, minSums(n01, n23, xb)));
    f1 = f32x4.add(f1, superTerm4(d, dmin, load<f32>(xb + xRow), i1, minSums(n01, n23, xb + xRow)));
    if (TN > 2) {
      f2 = f32x4.add(f2, superTerm4(d, dmin, load<f32>(xb + 2 * xRow), i2, minSums(n01, n23, xb + 2 * xRow)));
      f3 = f32x4.add(f3, superTerm4(d, dmin, load<f32>(xb + 3 * xRow), i3, minSums(n01, n23, xb + 3 * xRow)));
    }
  }
  storeGroup(yp, f0, r, r0, r1);
  storeGroup(yp + yRow, f1, r, r0, r1);
  if (TN > 2) { storeGroup(yp + 2 * yRow, f2, r, r0, r1); storeGroup(yp + 3 * yRow, f3, r, r0, r1); }
}
function groupTileQ4x4(wg: usize, xr: usize, xRow: usize, nb: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void { groupTileQ4(wg, xr, xRow, nb, 4, yp, yRow, r, r0, r1); }
function groupTileQ4x2(wg: usize, xr: usize, xRow: usize, nb: i32, yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void { groupTileQ4(wg, xr, xRow, nb, 2, yp, yRow, r, r0, r1); }

/** Group g's four rows (at wg) · one token (q8_K at xr): per super-block the rows' exact integer sums
 *  (isum, and msum for q4_K / q5_K), then four terms at once, summed in order; stored at yp (the rows
 *  of r..r+3 inside [r0, r1)). A function of its own, as are the row sums it calls: all inlined into
 *  one, V8 spilled and ran at half the speed. */
function groupDecode<T>(wg: usize, xr: usize, nb: i32, yp: usize, r: i32, r0: i32, r1: i32): void {
  const BB = kBytes<T>() << 2, HB = headBytes<T>(), PB = partBytes<T>();
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const hb = wg + <usize>b * BB, xb = xr + <usize>b * XB, q = hb + HB;
    let isum: v128, msum = i32x4.splat(0), dmin = f32x4.splat(0);
    if (isQ6<T>()) {
      isum = superSumQ6(hb, xb);
    } else {
      // the packed scale words of the four rows (lane k = row k), unpacked as scalesMins does
      const w0 = v128.load(hb, 16), w1 = v128.load(hb, 32), w2 = v128.load(hb, 48);
      const s03 = low6(w0), s47 = high6(w0, w2), n03 = low6(w1), n47 = high6(w1, i32x4.shr_u(w2, 4));
      const n01 = rows01(n03, n47), n23 = rows23(n03, n47);
      const x = xb + 4;
      if (isQ4<T>()) isum = superSumQ4(q, x, s03, s47);
      else {
        // q5_K, row by row: rows 0, 1 (2, 3)'s eight scales as bytes 0..7 and 8..15
        const s01 = i8x16.shuffle(s03, s47, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
        const s23 = i8x16.shuffle(s03, s47, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
        isum = hsum4i(rowSumQ45<T>(q, x, i16x8.extend_low_i8x16_u(s01)), rowSumQ45<T>(q + PB, x, i16x8.extend_high_i8x16_u(s01)),
                      rowSumQ45<T>(q + 2 * PB, x, i16x8.extend_low_i8x16_u(s23)), rowSumQ45<T>(q + 3 * PB, x, i16x8.extend_high_i8x16_u(s23)));
      }
      msum = minSums(n01, n23, xb);
      dmin = loadSmallF16x4(hb + 8);
    }
    // q6_K has no mins: superTerm's second product is ±0, and a sum from +0 gains the same bits from a as from a − (±0)
    acc = f32x4.add(acc, isQ6<T>() ? mulRound(f32x4.mul(loadSmallF16x4(hb), f32x4.splat(load<f32>(xb))), isum)
                                   : superTerm4(loadSmallF16x4(hb), dmin, load<f32>(xb), isum, msum));
  }
  storeGroup(yp, acc, r, r0, r1);
}

@inline function matmulKX4<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 8, groupBytes = <usize>nb * (kBytes<T>() << 2), xRow = <usize>nb * XB, yRow = <usize>rows << 2;
  if (n == 1) {
    for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) groupDecode<T>(w + <usize>g * groupBytes, x, nb, y + (<usize>g << 4), g << 2, r0, r1);
    return;
  }
  // Tokens per chunk: keep the chunk's activation blocks within ~256 KiB of L2 (as matmulK).
  const chunk = max<i32>(<i32>(<usize>262144 / max<usize>(xRow, 1)), 1);
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    // q4_K and q6_K: tiles of the group's four rows × 4 tokens (then 2, then one token), the quants
    // unpacked once per tile (groupTileQ6 / groupTileQ4; one-thread kernel A/B against the one-token
    // kernel per token: q6_K 1.27-1.48× at 2-64 tokens, q4_K 1.00-1.13×, BENCHMARKS §4). q5_K up to
    // 7 tokens (batched decode): the one-token kernel per token, a group at a time (its weights stay
    // in cache for the tokens); with more (prefill), row × 4-token tiles. Tiles over this layout ran
    // 0.6-0.8× GGUF's at 2-4 tokens, the one-token kernel 0.8-1.0×; at 64 tokens tiles 0.94-0.99×, the
    // one-token kernel 0.76-0.95× (q5_K's fifth bits cost more to unpack again)
    if (!isQ5<T>()) {
      for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
        const wg = w + <usize>g * groupBytes, yg = y + (<usize>g << 4);
        let t = t0;
        for (; t + 4 <= t1; t += 4) {
          if (isQ6<T>()) groupTileQ6x4(wg, x + <usize>t * xRow, xRow, nb, yg + <usize>t * yRow, yRow, g << 2, r0, r1);
          else groupTileQ4x4(wg, x + <usize>t * xRow, xRow, nb, yg + <usize>t * yRow, yRow, g << 2, r0, r1);
        }
        if (t + 2 <= t1) {
          if (isQ6<T>()) groupTileQ6x2(wg, x + <usize>t * xRow, xRow, nb, yg + <usize>t * yRow, yRow, g << 2, r0, r1);
          else groupTileQ4x2(wg, x + <usize>t * xRow, xRow, nb, yg + <usize>t * yRow, yRow, g << 2, r0, r1);
          t += 2;
        }
        if (t < t1) groupDecode<T>(wg, x + <usize>t * xRow, nb, yg + <usize>t * yRow, g << 2, r0, r1);
      }
    } else if (n < 8) {
      for (let g = r0 >> 2; g < (r1 + 3) >> 2; g++) {
        const wg = w + <usize>g * groupBytes, yg = y + (<usize>g << 4);
        for (let t = t0; t < t1; t++) groupDecode<T>(wg, x + <usize>t * xRow, nb, yg + <usize>t * yRow, g << 2, r0, r1);
      }
    } else {
      for (let r = r0; r < r1; r++) rowTiles<T>(w + <usize>(r >> 2) * groupBytes, <usize>(r & 3), true, x, xRow, nb, t0, t1, y + (<usize>r << 2), yRow);
    }
  }
}

// Exports: W (rows, cols) in the x4 layout · Xq (n, cols)ᵀ -> Y (n, rows) f32, rows [r0, r1).
export function matmulQ4_Kx4(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulKX4<u8>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ5_Kx4(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulKX4<u16>(w, xq, y, n, rows, cols, r0, r1);
}
export function matmulQ6_Kx4(w: usize, xq: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulKX4<u32>(w, xq, y, n, rows, cols, r0, r1);
}
// dst (cols) f32 = row r of W in the x4 layout.
export function rowToF32Q4_Kx4(w: usize, r: i32, cols: i32, dst: usize): void { rowToF32KX4<u8>(w, r, cols, dst); }
export function rowToF32Q5_Kx4(w: usize, r: i32, cols: i32, dst: usize): void { rowToF32KX4<u16>(w, r, cols, dst); }
export function rowToF32Q6_Kx4(w: usize, r: i32, cols: i32, dst: usize): void { rowToF32KX4<u32>(w, r, cols, dst); }
