// Y (n, rows) = Xq (n, cols) · Wᵀ for rows [r0, r1), W in a repacked "x4" layout of q8_0 or q4_0
// (made at load by src/kernels/repack.ts), Xq = X quantised to q8_0 blocks by quantizeQ8.
// Four weight rows are interleaved block by block, so one activation block — loaded with its scale
// once — serves four rows, and the four rows' f16 scales lie together ahead of their quants,
// converted four at a time. Group g (rows 4g..4g+3) starts at w + g·nb·4·(2 + QB) and holds nb
// blocks of 8 + 4·QB bytes: the four rows' f16 d, then their quants — one forward stream (scales in
// a region of their own made a second stream in the same pages, which halved the speed from memory
// at 2048 columns). QB = 32 (q8_0: 32 × i8, row k's at 8 + 32k) or 16 (q4_0: GGUF's nibbles, byte
// j = q[j] | q[j+16] << 4, value d·(q − 8), in runs of 4 bytes: row k's bytes 4j..4j+3 at
// 8 + 16j + 4k, so a vector holds four consecutive values of each of the four rows).
// Arithmetic per row and block as llama.cpp's ggml_vec_dot_q{8,4}_0_q8_0: an exact integer dot
// product, then sum += f32(sumi) · (d_w · d_x) in f32, blocks in order — the same operations as the
// TypeScript twin, so results are bit-identical to it. rows % 4 == 0, cols % 32 == 0.
// Several tokens (batched decode, prefill) run as register tiles of 4 rows × 4 tokens: per block a
// group's scales are converted, and q4_0's nibbles unpacked, once for the four tokens (relaxed q8_0
// from PAIR_TILE_TOKENS tokens: 8 rows × 2 tokens, pairTileQ8_0). The per-token
// arithmetic stays the one-token kernel's, so a row's result is the same bits for any number of
// tokens (test/models/batch.test.ts relies on it).
// q8_0: lane k of the i32 sums is one row's partial sum, the four rows reduced together (hsum4i).
// q4_0: lane k is row k's from the start — one broadcast run of four activations multiplies the
// four rows' nibbles (dot4: pmaddubsw with the nibbles as the 7-bit operand), no reductions, about
// half the vector operations per block of the row-by-row form (groupTileQ4_0). Both take q4_0's
// offset (8·Σx) and the activation's scale from the block sums that quantizeQ8 writes.
// The weight type is a marker Q: i8 = q8_0, u8 = q4_0.

import { dot4, hsum4i, loadF16, loadF16x4Scaled, pairsToI32 } from './vector';
import { q8BlockSums, storeScaled16 } from './quant';

const XB: usize = 34; // bytes of one q8_0 activation block
const SB: usize = 16; // bytes of its entry in the block sums (src/kernels/types.ts Q8_SUMS_BYTES)
const PAIR_TILE_TOKENS = 8; // tokens from which relaxed q8_0 runs pairTileQ8_0

@inline function quantBytes<Q>(): usize { return isSigned<Q>() ? 32 : 16; }

/** Σ over one q8_0 row block (32 i8 at wq) × the activation block whose 32 values are widened in
 *  x0..x3: four i32 partial sums (i8·i8 products, pairs added in i32x4.dot_i16x8_s: exact). */
@inline function dotQ8(wq: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(wq), x0), i32x4.dot_i16x8_s(v128.load8x8_s(wq, 8), x1)),
    i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(wq, 16), x2), i32x4.dot_i16x8_s(v128.load8x8_s(wq, 24), x3)));
}

/** The same sums with relaxed SIMD, llama.cpp's sign trick without its second operation: w·x =
 *  (w·sign x)·|x|, with |x| (0..127: quantizeQ8 never writes −128) as the 7-bit operand of
 *  i16x8.relaxed_dot_i8x16_i7x16_s (x86 pmaddubsw) and x's sign moved onto the weight by w ^ m
 *  (m = x < 0), which is −w − 1 where x < 0: the sums miss Σ|x| over x < 0, which quantizeQ8 keeps in
 *  the block sums and blockSumsQ8 adds once for the four rows (one operation per 16 products fewer
 *  than (w ^ m) − m). Exact for every i8 weight, −128 included: a pair of products is at most
 *  2·127·128, which fits i16. ax/cx: |x| of elements 0..15 / 16..31, ma/mc: their sign masks. */
@inline function dotQ8Relaxed(wq: usize, ax: v128, cx: v128, ma: v128, mc: v128): v128 {
  return i32x4.add(pairsToI32(i16x8.relaxed_dot_i8x16_i7x16_s(v128.xor(v128.load(wq), ma), ax)),
                   pairsToI32(i16x8.relaxed_dot_i8x16_i7x16_s(v128.xor(v128.load(wq, 16), mc), cx)));
}

/** Relaxed: the four rows' (quants at wq) exact block sums against one activation block split into
 *  |x| (ax, cx) and sign masks (ma, mc), with its Σ|x| over x < 0 broadcast in c: lane k = row k's. */
@inline function sumsQ8Relaxed(wq: usize, ax: v128, cx: v128, ma: v128, mc: v128, c: v128): v128 {
  return i32x4.add(hsum4i(dotQ8Relaxed(wq, ax, cx, ma, mc), dotQ8Relaxed(wq + 32, ax, cx, ma, mc),
                          dotQ8Relaxed(wq + 64, ax, cx, ma, mc), dotQ8Relaxed(wq + 96, ax, cx, ma, mc)), c);
}

/** Σ over one q8_0 block of the four rows at wq (quants only) × one activation block at xb (its entry
 *  in the block sums at s), exact: lane k = row k's integer block sum. */
@inline function blockSumsQ8(wq: usize, xb: usize, s: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const xa = v128.load(xb, 2), xc = v128.load(xb, 18);
    const ax = i8x16.abs(xa), cx = i8x16.abs(xc), ma = i8x16.lt_s(xa, i8x16.splat(0)), mc = i8x16.lt_s(xc, i8x16.splat(0));
    return sumsQ8Relaxed(wq, ax, cx, ma, mc, v128.load32_splat(s, 8));
  }
  const x0 = v128.load8x8_s(xb, 2), x1 = v128.load8x8_s(xb, 10), x2 = v128.load8x8_s(xb, 18), x3 = v128.load8x8_s(xb, 26);
  return hsum4i(dotQ8(wq, x0, x1, x2, x3), dotQ8(wq + 32, x0, x1, x2, x3),
                dotQ8(wq + 64, x0, x1, x2, x3), dotQ8(wq + 96, x0, x1, x2, x3));
}

/** The four rows' i16 pair sums of one q4_0 run (lo / hi: its low / high nibbles, four values of
 *  each row) against the broadcast runs of four activations at x + 2 and x + 18 (x: the activation
 *  block, stepped by 4 per run). */
@inline function runSums(lo: v128, hi: v128, x: usize): v128 {
  return i16x8.add(dot4(lo, v128.load32_splat(x, 2)), dot4(hi, v128.load32_splat(x, 18)));
}

/** q4_0: acc + f32(the four rows' exact block sums) · (d_w · d_x), from the block's pair sums p
 *  (lanes 2k, 2k + 1: row k's Σ q·x) and its entry s in the activations' block sums (f32 d_x at 4,
 *  i32 8·Σx at 12): Σ (q − 8)·x = Σ q·x − 8·Σx. */
@inline function blockTermQ4(acc: v128, p: v128, s: usize, dw: v128): v128 {
  return scaledAdd(acc, i32x4.sub(pairsToI32(p), v128.load32_splat(s, 12)), dw, v128.load32_splat(s, 4));
}

/** acc + f32(sumi) · (dw · dx): one block's step of llama.cpp's (and the twin's) f32 sum, four rows
 *  (dw as value × 2^-112, dx × 2^112: the same product, one multiply per block fewer). */
@inline function scaledAdd(acc: v128, sumi: v128, dw: v128, dx: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.mul(dw, dx)));
}

/** q4_0: group g's four rows (at wg) · TN tokens (1..4, a constant after inlining; xr + j·xRow, their
 *  block sums at sr + j·sRow), stored at yp + j·yRow. A block's four runs of 16 bytes (row k's bytes
 *  4j..4j+3 at 4k: values 4j..4j+3 in the low nibbles, 16 + 4j.. in the high) are unpacked once for
 *  the TN tokens and multiply each token's broadcast runs of activations (runSums); the eight
 *  products of a block add in i16 (each pair sum is at most 2·15·128 in size, eight fit), then
 *  blockTermQ4. The same integers and f32 steps for any TN. */
@inline function groupTileQ4_0(wg: usize, xr: usize, sr: usize, xRow: usize, sRow: usize, nb: i32, TN: i32,
                               yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const BB: usize = 72, m = i8x16.splat(15);
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  // pointers stepped rather than addresses computed from b: fewer scalar instructions per block
  for (let ws = wg, x0 = xr, s0 = sr, end = wg + <usize>nb * BB; ws < end; ws += BB, x0 += XB, s0 += SB) {
    // In the four-token tile (prefill) the block's first run goes ahead of the loop, so that the pair
    // sums start from its products rather than from zero: one i16 add fewer per token and block
    // (1.02–1.05×). Narrower tiles keep the loop: peeled, the one-token tile of decode ran 0.87–0.93×
    // (the loop's machine code the same instructions; V8's placement of the function's code differs)
    const PEEL = TN == 4;
    let p0 = i16x8.splat(0), p1 = p0, p2 = p0, p3 = p0;
    if (PEEL) {
      const v = v128.load(ws, 8), lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
      p0 = runSums(lo, hi, x0);
      p1 = runSums(lo, hi, x0 + xRow);
      p2 = runSums(lo, hi, x0 + 2 * xRow);
      p3 = runSums(lo, hi, x0 + 3 * xRow);
    }
    const first: usize = PEEL ? 4 : 0;
    // the (other) runs one per iteration (written out, V8 issued all of a block's loads first and
    // spilled them), each token's activations at a pointer of its own: constant offsets, no address
    // arithmetic
    for (let q = ws + 8 + (first << 2), qe = ws + BB, t0 = x0 + first, t1 = t0 + xRow, t2 = t0 + 2 * xRow, t3 = t0 + 3 * xRow; q < qe;
         q += 16, t0 += 4, t1 += 4, t2 += 4, t3 += 4) {
      // high nibbles by a 16-bit shift and the low-nibble mask: the same bytes as i8x16.shr_u, which
      // x86 has no instruction for (V8 emits a 16-bit shift and builds a mask of its own each time)
      const v = v128.load(q), lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
      p0 = i16x8.add(p0, runSums(lo, hi, t0));
      if (TN > 1) p1 = i16x8.add(p1, runSums(lo, hi, t1));
      if (TN > 2) p2 = i16x8.add(p2, runSums(lo, hi, t2));
      if (TN > 3) p3 = i16x8.add(p3, runSums(lo, hi, t3));
    }
    const dw = loadF16x4Scaled(ws);                                   // the four rows' scales × 2^-112
    a0 = blockTermQ4(a0, p0, s0, dw);
    if (TN > 1) a1 = blockTermQ4(a1, p1, s0 + sRow, dw);
    if (TN > 2) a2 = blockTermQ4(a2, p2, s0 + 2 * sRow, dw);
    if (TN > 3) a3 = blockTermQ4(a3, p3, s0 + 3 * sRow, dw);
  }
  storeGroup(yp, a0, r, r0, r1);
  if (TN > 1) storeGroup(yp + yRow, a1, r, r0, r1);
  if (TN > 2) storeGroup(yp + 2 * yRow, a2, r, r0, r1);
  if (TN > 3) storeGroup(yp + 3 * yRow, a3, r, r0, r1);
}

/** q8_0 (relaxed): two groups' eight rows (at wg and wg + gBytes) · two tokens (xr, xr + xRow; block
 *  sums at sr, sr + sRow), stored at yp (the second group at yp + 16) + j·yRow. Per block and token the
 *  activation is split into |x| and signs once for the eight rows (in groupTileQ8_0 once per four),
 *  and the loop's own work is shared by 16 (row, token) pairs. The same integers and f32 steps per
 *  (row, token) as groupTileQ8_0, so the same bits. */
@inline function pairTileQ8_0(wg: usize, gBytes: usize, xr: usize, sr: usize, xRow: usize, sRow: usize, nb: i32,
                              yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const BB: usize = 136, zero = i8x16.splat(0);
  let a0 = f32x4.splat(0), a1 = a0, b0 = a0, b1 = a0;
  for (let ws = wg, xb = xr, s = sr, end = wg + <usize>nb * BB; ws < end; ws += BB, xb += XB, s += SB) {
    const wq = ws + 8, vq = wq + gBytes, dw = loadF16x4Scaled(ws), dv = loadF16x4Scaled(ws + gBytes);
    let xa = v128.load(xb, 2), xc = v128.load(xb, 18);
    let ax = i8x16.abs(xa), cx = i8x16.abs(xc), ma = i8x16.lt_s(xa, zero), mc = i8x16.lt_s(xc, zero);
    let c = v128.load32_splat(s, 8), d = v128.load32_splat(s, 4);
    a0 = scaledAdd(a0, sumsQ8Relaxed(wq, ax, cx, ma, mc, c), dw, d);
    b0 = scaledAdd(b0, sumsQ8Relaxed(vq, ax, cx, ma, mc, c), dv, d);
    xa = v128.load(xb + xRow, 2); xc = v128.load(xb + xRow, 18);
    ax = i8x16.abs(xa); cx = i8x16.abs(xc); ma = i8x16.lt_s(xa, zero); mc = i8x16.lt_s(xc, zero);
    c = v128.load32_splat(s + sRow, 8); d = v128.load32_splat(s + sRow, 4);
    a1 = scaledAdd(a1, sumsQ8Relaxed(wq, ax, cx, ma, mc, c), dw, d);
    b1 = scaledAdd(b1, sumsQ8Relaxed(vq, ax, cx, ma, mc, c), dv, d);
  }
  storeGroup(yp, a0, r, r0, r1);
  storeGroup(yp + 16, b0, r + 4, r0, r1);
  storeGroup(yp + yRow, a1, r, r0, r1);
  storeGroup(yp + yRow + 16, b1, r + 4, r0, r1);
}

/** q8_0: the four rows of group g (at wg) · TN activation rows (xr + j·xRow, TN = 1..4, a constant
 *  after inlining): a register tile of 4 rows × TN tokens. Per block the group's scales are converted
 *  once for all TN tokens; per (row, token) the arithmetic is the one-token kernel's: the exact
 *  integer block sum, then acc += f32(sumi) · (d_w · d_x), blocks in order — so a token's result does
 *  not depend on how many tokens share its tile. Lane k of token j's vector = row k; stored at
 *  yp + j·yRow (the rows inside [r0, r1)). */
@inline function groupTileQ8_0(wg: usize, xr: usize, sr: usize, xRow: usize, sRow: usize, nb: i32, TN: i32,
                               yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  const BB: usize = 136; // one block of the group: four f16 scales, then four rows' 32 quants
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  // pointers stepped rather than addresses computed from b: fewer scalar instructions per block;
  // the activation's scale as f32 from its block sums (s + 4): one broadcast load
  for (let ws = wg, xb = xr, s = sr, end = wg + <usize>nb * BB; ws < end; ws += BB, xb += XB, s += SB) {
    const wq = ws + 8, dw = loadF16x4Scaled(ws);                      // the four rows' scales × 2^-112
    a0 = scaledAdd(a0, blockSumsQ8(wq, xb, s), dw, v128.load32_splat(s, 4));
    if (TN > 1) a1 = scaledAdd(a1, blockSumsQ8(wq, xb + xRow, s + sRow), dw, v128.load32_splat(s + sRow, 4));
    if (TN > 2) a2 = scaledAdd(a2, blockSumsQ8(wq, xb + 2 * xRow, s + 2 * sRow), dw, v128.load32_splat(s + 2 * sRow, 4));
    if (TN > 3) a3 = scaledAdd(a3, blockSumsQ8(wq, xb + 3 * xRow, s + 3 * sRow), dw, v128.load32_splat(s + 3 * sRow, 4));
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

/** The x4 tile of the weight type Q: 4 rows × TN tokens. */
@inline function groupTile<Q>(wg: usize, xr: usize, sr: usize, xRow: usize, sRow: usize, nb: i32, TN: i32,
                              yp: usize, yRow: usize, r: i32, r0: i32, r1: i32): void {
  if (isSigned<Q>()) groupTileQ8_0(wg, xr, sr, xRow, sRow, nb, TN, yp, yRow, r, r0, r1);
  else groupTileQ4_0(wg, xr, sr, xRow, sRow, nb, TN, yp, yRow, r, r0, r1);
}

@inline function matmulQuantX4<Q>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const nb = cols >> 5;
  const groupBytes = <usize>nb * ((2 + quantBytes<Q>()) << 2);
  const xRow = <usize>nb * XB, sRow = <usize>nb * SB, sums = q8BlockSums(x, n * nb);
  const yRow = <usize>rows << 2;
  // Each group's weights are read from memory once and stay in cache for every token tile.
  let g = r0 >> 2;
  const gEnd = (r1 + 3) >> 2;
  if (ASC_FEATURE_RELAXED_SIMD && isSigned<Q>() && n >= PAIR_TILE_TOKENS) {
    // relaxed q8_0 with many tokens: tiles of two groups × two tokens (an odd last token by the
    // four-row tile). Fewer tokens keep the four-row tile: reading two groups' weights at once was
    // slower where they come from memory (a 16384×2048 matrix at 4 tokens: 0.83×)
    for (; g + 2 <= gEnd; g += 2) {
      const wg = w + <usize>g * groupBytes, r = g << 2, yg = y + (<usize>r << 2);
      let t = 0;
      for (; t + 2 <= n; t += 2) pairTileQ8_0(wg, groupBytes, x + <usize>t * xRow, sums + <usize>t * sRow, xRow, sRow, nb, yg + <usize>t * yRow, yRow, r, r0, r1);
      if (t < n) {
        const xt = x + <usize>t * xRow, st = sums + <usize>t * sRow, yt = yg + <usize>t * yRow;
        groupTile<Q>(wg, xt, st, xRow, sRow, nb, 1, yt, yRow, r, r0, r1);
        groupTile<Q>(wg + groupBytes, xt, st, xRow, sRow, nb, 1, yt + 16, yRow, r + 4, r0, r1);
      }
    }
  }
  for (; g < gEnd; g++) {
    const wg = w + <usize>g * groupBytes, r = g << 2, yg = y + (<usize>r << 2);
    let t = 0;
    for (; t + 4 <= n; t += 4) groupTile<Q>(wg, x + <usize>t * xRow, sums + <usize>t * sRow, xRow, sRow, nb, 4, yg + <usize>t * yRow, yRow, r, r0, r1);
    const left = n - t, xt = x + <usize>t * xRow, st = sums + <usize>t * sRow, yt = yg + <usize>t * yRow;
    if (left == 3) groupTile<Q>(wg, xt, st, xRow, sRow, nb, 3, yt, yRow, r, r0, r1);
    else if (left == 2) groupTile<Q>(wg, xt, st, xRow, sRow, nb, 2, yt, yRow, r, r0, r1);
    else if (left == 1) groupTile<Q>(wg, xt, st, xRow, sRow, nb, 1, yt, yRow, r, r0, r1);
  }
}

/** dst (cols f32) = row r of an x4 matrix (the embedding lookup): d·q, as toF32 of the GGUF blocks. */
@inline function rowToF32X4<Q>(w: usize, r: i32, cols: i32, dst: usize): void {
  const nb = cols >> 5, QB = quantBytes<Q>(), k = <usize>(r & 3);
  const wg = w + <usize>(r >> 2) * <usize>nb * ((2 + QB) << 2);
  for (let b = 0; b < nb; b++) {
    const ws = wg + <usize>b * (8 + (QB << 2));
    const d = f32x4.splat(loadF16(ws + (k << 1)));
    const dp = dst + (<usize>b << 7);
    if (isSigned<Q>()) {
      const q = ws + 8 + (k << 5);
      storeScaled16(dp, v128.load(q), d);
      storeScaled16(dp + 64, v128.load(q, 16), d);
    } else {
      // row k's four runs of 4 bytes (at 8 + 16j + 4k) gathered into its 16 GGUF bytes
      const q = ws + 8 + (k << 2);
      const v = i32x4(load<i32>(q), load<i32>(q, 16), load<i32>(q, 32), load<i32>(q, 48));
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
