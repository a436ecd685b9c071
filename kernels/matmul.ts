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
@inline function dot1x1Pair<T>(w: usize, x: usize, y: usize, cols: i32): void {
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
  store<f32>(y, s);
}

/** Two rows (w, w + wRow) against one token: y[0], y[1] (4 bytes apart). */
@inline function dot2x1<T>(w: usize, wRow: usize, x: usize, y: usize, cols: i32): void {
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
  store<f32>(y, sa);
  store<f32>(y + 4, sb);
}

/** One row against four tokens (x + k·xRow), outputs at y + k·yRow. */
@inline function dot1x4<T>(w: usize, x: usize, xRow: usize, y: usize, yRow: usize, cols: i32): void {
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
  store<f32>(y, s0);
  store<f32>(y + yRow, s1);
  store<f32>(y + 2 * yRow, s2);
  store<f32>(y + 3 * yRow, s3);
}

/** Two rows against four tokens: 8 accumulators, each weight vector used 4×, each X vector 2×. */
@inline function dot2x4<T>(w: usize, wRow: usize, x: usize, xRow: usize, y: usize, yRow: usize, cols: i32): void {
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
  store<f32>(y, sa0); store<f32>(y + 4, sb0);
  store<f32>(y + yRow, sa1); store<f32>(y + yRow + 4, sb1);
  store<f32>(y + 2 * yRow, sa2); store<f32>(y + 2 * yRow + 4, sb2);
  store<f32>(y + 3 * yRow, sa3); store<f32>(y + 3 * yRow + 4, sb3);
}

/** Tokens per chunk: a multiple of 4 whose X (chunk × cols f32) fits in ~256 KiB of L2. */
@inline export function tokenChunk(xRowBytes: usize): i32 {
  const t = <i32>(<usize>262144 / max<usize>(xRowBytes, 1)) & ~3;
  return min<i32>(max<i32>(t, 4), 64);
}

@inline function matmulFloat<T>(w: usize, x: usize, y: usize, n: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  const wRow = <usize>cols * <usize>sizeof<T>();
  const xRow = <usize>cols << 2;
  const yRow = <usize>rows << 2;
  const chunk = tokenChunk(xRow);
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = min<i32>(n, t0 + chunk);
    let r = r0;
    if (t1 - t0 == 1) { // one token: row by row (one sequential stream), pairs' bits; an odd last row below
      const xp = x + <usize>t0 * xRow, yp = y + <usize>t0 * yRow;
      for (const e = r1 - ((r1 - r0) & 1); r < e; r++) dot1x1Pair<T>(w + <usize>r * wRow, xp, yp + (<usize>r << 2), cols);
    }
    for (; r + 2 <= r1; r += 2) {
      const wr = w + <usize>r * wRow;
      let t = t0;
      for (; t + 4 <= t1; t += 4) dot2x4<T>(wr, wRow, x + <usize>t * xRow, xRow, y + <usize>t * yRow + (<usize>r << 2), yRow, cols);
      for (; t < t1; t++) dot2x1<T>(wr, wRow, x + <usize>t * xRow, y + <usize>t * yRow + (<usize>r << 2), cols);
    }
    if (r < r1) {
      const wr = w + <usize>r * wRow;
      let t = t0;
      for (; t + 4 <= t1; t += 4) dot1x4<T>(wr, x + <usize>t * xRow, xRow, y + <usize>t * yRow + (<usize>r << 2), yRow, cols);
      for (; t < t1; t++) store<f32>(y + <usize>t * yRow + (<usize>r << 2), dot1x1<T>(wr, x + <usize>t * xRow, cols));
    }
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
