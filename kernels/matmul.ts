// Y (n, rows) = X (n, cols) · Wᵀ for output rows [r0, r1), W (rows, cols) in f32, f16 or bf16, X f32.
// The weight type is a compile-time marker T: f32 = f32, u16 = f16, i16 = bf16 (AssemblyScript has
// no f16 type); the branches on T fold away, so each export is a specialised loop.
// Blocking: two weight rows × four tokens per pass (8 accumulators) so every loaded weight vector is
// used four times and every X vector twice. One token (decode) reads one row at a time: the weights
// then come from memory in one sequential stream, about twice as fast on one core as two rows read
// side by side (two streams a row apart; BENCHMARKS §4). With the rows in cache the pair is faster
// (four add chains, not two), but decode reads its weights from memory. Tokens are processed in
// chunks whose X fits in L2 while the rows stream past.

import { hsum, loadF16, loadF16x4, loadBF16x4 } from './vector';

@inline function loadW<T>(p: usize): v128 {
  if (isFloat<T>()) return v128.load(p);
  else if (isSigned<T>()) return loadBF16x4(p);
  else return loadF16x4(p);
}

@inline function loadW1<T>(p: usize): f32 {
  if (isFloat<T>()) return load<f32>(p);
  else if (isSigned<T>()) return reinterpret<f32>(<u32>load<u16>(p) << 16);
  else return loadF16(p);
}

@inline function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Stores a dot product, or adds it to what is there (a later panel of a row, below). */
@inline function put(y: usize, s: f32, acc: bool): void {
  store<f32>(y, acc ? load<f32>(y) + s : s);
}

/** y = w · x for one row and one token; 16 columns per step with 4 accumulators. */
@inline function dot1x1<T>(w: usize, x: usize, cols: i32): f32 {
  const es = <usize>sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let c = 0;
  for (; c + 16 <= cols; c += 16) {
    const wp = w + <usize>c * es, xp = x + (<usize>c << 2);
    a0 = madd(a0, loadW<T>(wp), v128.load(xp));
    a1 = madd(a1, loadW<T>(wp + 4 * es), v128.load(xp, 16));
    a2 = madd(a2, loadW<T>(wp + 8 * es), v128.load(xp, 32));
    a3 = madd(a3, loadW<T>(wp + 12 * es), v128.load(xp, 48));
  }
  for (; c + 4 <= cols; c += 4) a0 = madd(a0, loadW<T>(w + <usize>c * es), v128.load(x + (<usize>c << 2)));
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  for (; c < cols; c++) s += loadW1<T>(w + <usize>c * es) * load<f32>(x + (<usize>c << 2));
  return s;
}

/** One row against one token, y = w · x with dot2x1's sums for a row (two accumulators over 8
 *  columns, then 4, then one by one): the same bits as when the row is read beside another. */
@inline function dot1x1Pair<T>(w: usize, x: usize, y: usize, cols: i32, acc: bool): void {
  const es = <usize>sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let c = 0;
  for (; c + 8 <= cols; c += 8) {
    const wp = w + <usize>c * es, xp = x + (<usize>c << 2);
    a0 = madd(a0, loadW<T>(wp), v128.load(xp));
    a1 = madd(a1, loadW<T>(wp + 4 * es), v128.load(xp, 16));
  }
  if (c + 4 <= cols) { a0 = madd(a0, loadW<T>(w + <usize>c * es), v128.load(x + (<usize>c << 2))); c += 4; }
  let s = hsum(f32x4.add(a0, a1));
  for (; c < cols; c++) s += loadW1<T>(w + <usize>c * es) * load<f32>(x + (<usize>c << 2));
  put(y, s, acc);
}

/** Two rows (w, w + wRow) against one token: y[0], y[1] (4 bytes apart). */
@inline function dot2x1<T>(w: usize, wRow: usize, x: usize, y: usize, cols: i32, acc: bool): void {
  const es = <usize>sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
  let c = 0;
  for (; c + 8 <= cols; c += 8) {
    const wp = w + <usize>c * es, xp = x + (<usize>c << 2);
    const x0 = v128.load(xp), x1 = v128.load(xp, 16);
    a0 = madd(a0, loadW<T>(wp), x0);
    a1 = madd(a1, loadW<T>(wp + 4 * es), x1);
    b0 = madd(b0, loadW<T>(wp + wRow), x0);
    b1 = madd(b1, loadW<T>(wp + wRow + 4 * es), x1);
  }
  for (; c + 4 <= cols; c += 4) {
    const wp = w + <usize>c * es, x0 = v128.load(x + (<usize>c << 2));
    a0 = madd(a0, loadW<T>(wp), x0);
    b0 = madd(b0, loadW<T>(wp + wRow), x0);
  }
  let sa = hsum(f32x4.add(a0, a1)), sb = hsum(f32x4.add(b0, b1));
  for (; c < cols; c++) {
    const xv = load<f32>(x + (<usize>c << 2));
    sa += loadW1<T>(w + <usize>c * es) * xv;
    sb += loadW1<T>(w + wRow + <usize>c * es) * xv;
  }
  put(y, sa, acc);
  put(y + 4, sb, acc);
}

/** One row against four tokens (x + k·xRow), outputs at y + k·yRow. */
@inline function dot1x4<T>(w: usize, x: usize, xRow: usize, y: usize, yRow: usize, cols: i32, acc: bool): void {
  const es = <usize>sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const wv = loadW<T>(w + <usize>c * es), xp = x + (<usize>c << 2);
    a0 = madd(a0, wv, v128.load(xp));
    a1 = madd(a1, wv, v128.load(xp + xRow));
    a2 = madd(a2, wv, v128.load(xp + 2 * xRow));
    a3 = madd(a3, wv, v128.load(xp + 3 * xRow));
  }
  let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
  for (; c < cols; c++) {
    const wv = loadW1<T>(w + <usize>c * es), xp = x + (<usize>c << 2);
    s0 += wv * load<f32>(xp);
    s1 += wv * load<f32>(xp + xRow);
    s2 += wv * load<f32>(xp + 2 * xRow);
    s3 += wv * load<f32>(xp + 3 * xRow);
  }
  put(y, s0, acc);
  put(y + yRow, s1, acc);
  put(y + 2 * yRow, s2, acc);
  put(y + 3 * yRow, s3, acc);
}

/** Two rows against four tokens: 8 accumulators, each weight vector used 4×, each X vector 2×. */
@inline function dot2x4<T>(w: usize, wRow: usize, x: usize, xRow: usize, y: usize, yRow: usize, cols: i32, acc: bool): void {
  const es = <usize>sizeof<T>();
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= cols; c += 4) {
    const wp = w + <usize>c * es, xp = x + (<usize>c << 2);
    const wa = loadW<T>(wp), wb = loadW<T>(wp + wRow);
    let xv = v128.load(xp);
    a0 = madd(a0, wa, xv); b0 = madd(b0, wb, xv);
    xv = v128.load(xp + xRow);
    a1 = madd(a1, wa, xv); b1 = madd(b1, wb, xv);
    xv = v128.load(xp + 2 * xRow);
    a2 = madd(a2, wa, xv); b2 = madd(b2, wb, xv);
    xv = v128.load(xp + 3 * xRow);
    a3 = madd(a3, wa, xv); b3 = madd(b3, wb, xv);
  }
  let sa0 = hsum(a0), sa1 = hsum(a1), sa2 = hsum(a2), sa3 = hsum(a3);
  let sb0 = hsum(b0), sb1 = hsum(b1), sb2 = hsum(b2), sb3 = hsum(b3);
  for (; c < cols; c++) {
    const wa = loadW1<T>(w + <usize>c * es), wb = loadW1<T>(w + wRow + <usize>c * es);
    const xp = x + (<usize>c << 2);
    let xv = load<f32>(xp);
    sa0 += wa * xv; sb0 += wb * xv;
    xv = load<f32>(xp + xRow);
    sa1 += wa * xv; sb1 += wb * xv;
    xv = load<f32>(xp + 2 * xRow);
    sa2 += wa * xv; sb2 += wb * xv;
    xv = load<f32>(xp + 3 * xRow);
    sa3 += wa * xv; sb3 += wb * xv;
  }
  put(y, sa0, acc); put(y + 4, sb0, acc);
  put(y + yRow, sa1, acc); put(y + yRow + 4, sb1, acc);
  put(y + 2 * yRow, sa2, acc); put(y + 2 * yRow + 4, sb2, acc);
  put(y + 3 * yRow, sa3, acc); put(y + 3 * yRow + 4, sb3, acc);
}

/** Tokens per chunk: a multiple of 4 whose X (chunk × cols f32) fits in ~256 KiB of L2. */
@inline export function tokenChunk(xRowBytes: usize): i32 {
  const t = <i32>(<usize>262144 / max<usize>(xRowBytes, 1)) & ~3;
  return min<i32>(max<i32>(t, 4), 64);
}

/** Chunks of fewer tokens than this read the rows one at a time (dot1x1Pair has dot2x1's bits), so
 *  the weights stay one sequential stream: one token in row-major matrices, up to two in panels,
 *  whose pairs read runs of a panel's 8 KiB (two tokens in panels, cold, 2048×8192: 0.84× row-major's
 *  speed in pairs, 0.91–1.0× row by row; three row by row 0.71–0.78×: then each token's pass is
 *  bound by its two accumulators' add latency, not by memory). */
const ROW_BY_ROW_TOKENS = 2, PANEL_ROW_BY_ROW_TOKENS = 3;

/** Rows [r0, r1) of a matrix whose row r starts at w + (r >> gShift)·gStride + (r mod 2^gShift)·wRow
 *  (row-major: gShift 0, gStride = wRow; a panel of the panel layout: gShift 5), `cols` values from
 *  each, X rows xRow bytes apart; acc: add to Y instead of storing (a later panel). */
@inline function matmulRows<T>(w: usize, wRow: usize, gShift: i32, gStride: usize, x: usize, xRow: usize, y: usize,
                               n: i32, rows: i32, cols: i32, r0: i32, r1: i32, acc: bool): void {
  const yRow = <usize>rows << 2;
  const chunk = tokenChunk(<usize>cols << 2);
  const gMask = (1 << gShift) - 1;
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    let r = r0;
    if (t1 - t0 < (gShift > 0 ? PANEL_ROW_BY_ROW_TOKENS : ROW_BY_ROW_TOKENS)) { // row by row, pairs' bits; an odd last row below
      for (const e = r1 - ((r1 - r0) & 1); r < e; r++) {
        const wr = w + <usize>(r >> gShift) * gStride + <usize>(r & gMask) * wRow;
        for (let t = t0; t < t1; t++) dot1x1Pair<T>(wr, x + <usize>t * xRow, y + <usize>t * yRow + (<usize>r << 2), cols, acc);
      }
    }
    // a pair (r, r + 1) lies wRow apart unless r + 1 starts a group: a group's first row starts a pair
    if (gShift > 0 && r < r1 && (r & 1) != 0) {
      matmulRow<T>(w + <usize>(r >> gShift) * gStride + <usize>(r & gMask) * wRow, x, xRow, y, yRow, t0, t1, r, cols, acc);
      r++;
    }
    for (; r + 2 <= r1; r += 2) {
      const wr = w + <usize>(r >> gShift) * gStride + <usize>(r & gMask) * wRow;
      let t = t0;
      for (; t + 4 <= t1; t += 4) dot2x4<T>(wr, wRow, x + <usize>t * xRow, xRow, y + <usize>t * yRow + (<usize>r << 2), yRow, cols, acc);
      for (; t < t1; t++) dot2x1<T>(wr, wRow, x + <usize>t * xRow, y + <usize>t * yRow + (<usize>r << 2), cols, acc);
    }
    if (r < r1) matmulRow<T>(w + <usize>(r >> gShift) * gStride + <usize>(r & gMask) * wRow, x, xRow, y, yRow, t0, t1, r, cols, acc);
  }
}

/** One row (at wr) against tokens [t0, t1). */
@inline function matmulRow<T>(wr: usize, x: usize, xRow: usize, y: usize, yRow: usize, t0: i32, t1: i32, r: i32, cols: i32, acc: bool): void {
  let t = t0;
  for (; t + 4 <= t1; t += 4) dot1x4<T>(wr, x + <usize>t * xRow, xRow, y + <usize>t * yRow + (<usize>r << 2), yRow, cols, acc);
  for (; t < t1; t++) put(y + <usize>t * yRow + (<usize>r << 2), dot1x1<T>(wr, x + <usize>t * xRow, cols), acc);
}

@inline function matmulFloat<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const wRow = <usize>cols * <usize>sizeof<T>();
  matmulRows<T>(w, wRow, 0, wRow, x, <usize>cols << 2, y, n, rows, cols, r0, r1, false);
}

// The panel layout (src/kernels/repack.ts): groups of PANEL_ROWS rows, each group PANEL_ROWS·cols
// values in a row; inside a group, panels of PANEL_COLS columns, each the group's rows' PANEL_COLS
// values row after row. A row's dot product is the sum, in panel order, of its panels' dot products
// (each as the row-major kernels sum PANEL_COLS columns). One token reads group after group and,
// inside a group, panel after panel: one sequential stream, while the panel's 8 KiB of X stays in L1
// (a row-major row of 8192 f32 columns walks 32 KiB of X, which the weight stream evicts from a
// 48 KiB L1 before the next row comes back to it: half the stream speed; docs/BENCHMARKS.md §4).
export const PANEL_ROWS = 32;
export const PANEL_COLS = 2048;

@inline function matmulPanels<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const es = <usize>sizeof<T>(), wRow = <usize>PANEL_COLS * es;
  const gStride = <usize>PANEL_ROWS * <usize>cols * es, panelBytes = <usize>PANEL_ROWS * <usize>PANEL_COLS * es;
  const xRow = <usize>cols << 2, panels = cols / PANEL_COLS;
  // Up to one chunk of tokens (decode, a small batch): group by group, panel by panel, memory order,
  // each group's panel read once. More (a prefill chunk): panel by panel over all the rows, each
  // chunk of tokens' X panel reused over every row (8 tokens read 0.8× as fast this way, 64 1.4×).
  if (n <= tokenChunk(<usize>PANEL_COLS << 2)) {
    for (let g0 = r0 - r0 % PANEL_ROWS; g0 < r1; g0 += PANEL_ROWS) {
      const a = max<i32>(r0, g0), b = min<i32>(r1, g0 + PANEL_ROWS);
      for (let p = 0; p < panels; p++) {
        matmulRows<T>(w + <usize>p * panelBytes, wRow, 5, gStride, x + (<usize>(p * PANEL_COLS) << 2), xRow, y, n, rows, PANEL_COLS, a, b, p > 0);
      }
    }
    return;
  }
  for (let p = 0; p < panels; p++) {
    matmulRows<T>(w + <usize>p * panelBytes, wRow, 5, gStride, x + (<usize>(p * PANEL_COLS) << 2), xRow, y, n, rows, PANEL_COLS, r0, r1, p > 0);
  }
}

// Exports: W (rows, cols) · X (n, cols)ᵀ -> Y (n, rows), rows [r0, r1).
export function matmulF32(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulFloat<f32>(w, x, y, n, rows, cols, r0, r1);
}
export function matmulF16(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulFloat<u16>(w, x, y, n, rows, cols, r0, r1);
}
export function matmulBF16(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulFloat<i16>(w, x, y, n, rows, cols, r0, r1);
}
export function matmulF32Panels(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulPanels<f32>(w, x, y, n, rows, cols, r0, r1);
}
export function matmulF16Panels(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulPanels<u16>(w, x, y, n, rows, cols, r0, r1);
}
export function matmulBF16Panels(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulPanels<i16>(w, x, y, n, rows, cols, r0, r1);
}
