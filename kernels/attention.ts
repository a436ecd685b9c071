// Causal attention over a KV cache, flash-attention style (Dao et al. 2022, on a CPU): the query rows
// that read one KV head — the heads of a GQA group × the call's queries — walk the keys together in
// tiles of TILE keys, the tile loop outermost over all the slice's KV heads (one pass over the cache
// rows). Per tile: the scores S = Q·Kᵀ of every row (register-blocked: up to four rows ×
// two keys per inner loop, so each K vector is loaded and widened once for all of them), then the
// online softmax row by row over the whole tile (Milakov & Gimelshein 2018: running max m and sum l,
// the output row itself the accumulator, rescaled by e^(m_old − m_new) when a tile raises the max)
// with vector exps over the keys, then O += P·V (up to four rows × two 4-value chunks per inner
// loop, so each V vector feeds every row of the block), with fused multiply-adds in the relaxed
// build (madd). An f16 row is widened in registers to value
// × 2^-112 (f16Bits: three operations instead of loadF16x4's four); the queries × 2^100 with the
// scores × 2^12, and p × 2^112, make up for it exactly (powers of two). Decode (n = 1) and several
// queries (a prefill chunk, a speculative verification) are the same code; tiles start at multiples
// of TILE whatever n, the heads or the thread slice, so a row's result bits do not depend on which
// rows share its block.
//   q   (n, H, D) f32,  qPos (n) i32
//   k,v (S, Hkv, D) f32 or f16, contiguous (pages = 0) or paged: row s lies at
//       k + pages[s >> pageShift] + (s & (2^pageShift − 1))·rowBytes (u32 byte offsets; K and V pools
//       share one layout, so one table serves both; pages hold at least 4 rows)
//   out (n, H, D) f32
//   state: scratch, attentionStateBytes(n, H, Hkv, D, S) in src/kernels/types.ts: each (query, head)'s
//       running max and sum (n·H·2 f32), then per query head the scratch of one block (scores and
//       scaled queries), used by the thread slice that starts at that head; past one chunk of keys
//       (CHUNK) the chunks' partial results and the (chunk, KV head) units' block scratch.
// Past CHUNK keys, the keys are cut at fixed multiples of CHUNK and each chunk's partial result is
// folded into the rows in chunk order (foldRows): by one call walking the chunks (attentionF32/F16)
// or, flash-decoding style, by units that threads share (attentionChunks*) and attentionMerge.
// Token t attends to rows s <= qPos[t], s < S; query head h reads KV head h / (H / Hkv).

import { F16_REBIAS, expS, expV, hmax, hsum } from './vector';

/** Keys per tile (a multiple of 4). */
const TILE = 32;
/** Most query rows (query, head) in one block; a GQA group of more heads is split. */
const ROWS = 32;

/** c + a·b. The relaxed build fuses it (x86 with FMA: one vfmadd instead of a multiply and an add,
 *  measured 1.3–1.7× faster with an f16 cache, BENCHMARKS §4); the plain build rounds the product
 *  first, so the two builds differ in the last bits. Within a build every row of every call gets the
 *  same operations, so a row's result does not depend on the other rows. */
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(c, f32x4.mul(a, b));
}

/** Four sign-extended f16 (one per i32 lane) as f32 bit patterns worth value × 2^-112 (loadF16x4
 *  before its × 2^112 rebias): exact, normal f32 for every normal f16. */
@inline function f16Bits(h: v128): v128 {
  return v128.and(i32x4.shl(h, 13), i32x4.splat(<i32>0x8fffe000));
}

/** Four V values at p: f32 rows as they are, f16 rows as value × 2^-112 (one operation fewer than
 *  widening; the p they are multiplied by carries the 2^112). */
@inline function vAt(p: usize, f16: bool): v128 {
  return f16 ? f16Bits(v128.load16x4_s(p)) : v128.load(p);
}

/** Base address from which row s of the page holding key s0 lies at base + s·kvRow (the
 *  subtraction wraps like the addition it undoes). */
@inline function pageBase(p: usize, pages: usize, shift: i32, s0: i32, kvRow: usize): usize {
  if (pages == 0) return p;
  const first = s0 & ~((1 << shift) - 1);
  return p + <usize>load<u32>(pages + (<usize>(s0 >> shift) << 2)) - <usize>first * kvRow;
}

/** Four K values at p as scores read them: f32 rows as they are, f16 rows as value × 2^-112
 *  (f16Bits; the q rows are scaled by 2^100 and the scores by 2^12 to make up for it, powers of two,
 *  so the products are those of the widened values). */
@inline function kAt(p: usize, f16: bool): v128 {
  return f16 ? f16Bits(v128.load16x4_s(p)) : v128.load(p);
}

/** One K value at p, scaled as kAt scales it. */
@inline function kScalar(p: usize, f16: bool): f32 {
  return f16 ? reinterpret<f32>((<i32>load<i16>(p) << 13) & <i32>0x8fffe000) : load<f32>(p);
}

/** Halves of the dot products of query rows q0 … q(R−1) (R = 1…4, a constant after inlining) with
 *  the two keys whose rows start at kr and kr + kvRow, over the D & ~3 leading values: per row the
 *  two keys' lane sums x, y (4-value chunks in order) folded to [x0+x2, x1+x3, y0+y2, y1+y3],
 *  stored at h0 … h(R−1). Two such halves make hsum4's sums (scoresFinish); two keys per pass keep
 *  2R accumulators, R q vectors and two K vectors within the 16 SIMD registers. */
@inline function scoreHalves(R: i32, q0: usize, q1: usize, q2: usize, q3: usize, kr: usize, kvRow: usize, D: i32, f16: bool,
                             h0: usize, h1: usize, h2: usize, h3: usize): void {
  const step: usize = f16 ? 8 : 16;
  let ka = kr, kb = kr + kvRow;
  let x0 = f32x4.splat(0), y0 = x0, x1 = x0, y1 = x0, x2 = x0, y2 = x0, x3 = x0, y3 = x0;
  const end = <usize>(D & ~3) << 2;
  for (let d: usize = 0; d < end; d += 16) {
    const ca = kAt(ka, f16), cb = kAt(kb, f16);
    const a = v128.load(q0 + d);
    x0 = madd(a, ca, x0); y0 = madd(a, cb, y0);
    if (R > 1) { const b = v128.load(q1 + d); x1 = madd(b, ca, x1); y1 = madd(b, cb, y1); }
    if (R > 2) { const b = v128.load(q2 + d); x2 = madd(b, ca, x2); y2 = madd(b, cb, y2); }
    if (R > 3) { const b = v128.load(q3 + d); x3 = madd(b, ca, x3); y3 = madd(b, cb, y3); }
    ka += step; kb += step;
  }
  v128.store(h0, fold(x0, y0));
  if (R > 1) v128.store(h1, fold(x1, y1));
  if (R > 2) v128.store(h2, fold(x2, y2));
  if (R > 3) v128.store(h3, fold(x3, y3));
}

/** [x0+x2, x1+x3, y0+y2, y1+y3]: the first step of hsum4. */
@inline function fold(x: v128, y: v128): v128 {
  return f32x4.add(f32x4.shuffle(x, y, 0, 1, 4, 5), f32x4.shuffle(x, y, 2, 3, 6, 7));
}

/** The scores of the 4-key groups of row pr (halves of keys s0 + 2i at pr + 16·i, written by
 *  scoreHalves), in key order over the halves they replace: hsum4's last step, then the D − D4
 *  remaining products one by one (keys from kb + s·kvRow, query row q), then × sc. */
@inline function scoresFinish(pr: usize, groups: i32, q: usize, kb: usize, kvRow: usize, s0: i32, D: i32, f16: bool,
                              sc: f32, pages: usize, pageShift: i32): void {
  const es: usize = f16 ? 2 : 4;
  const D4 = D & ~3, scv = f32x4.splat(sc);
  for (let g = 0; g < groups; g++) {
    const ab = v128.load(pr + (<usize>g << 5)), cd = v128.load(pr + (<usize>g << 5), 16);
    let s = f32x4.add(f32x4.shuffle(ab, cd, 0, 2, 4, 6), f32x4.shuffle(ab, cd, 1, 3, 5, 7));
    if (D4 < D) {
      const key = s0 + 4 * g, kr = pageBase(kb, pages, pageShift, key, kvRow) + <usize>key * kvRow;
      for (let d = D4; d < D; d++) {
        const o = <usize>d * es, qs = load<f32>(q + (<usize>d << 2));
        let t = f32x4.splat(qs * kScalar(kr + o, f16));
        t = f32x4.replace_lane(t, 1, qs * kScalar(kr + kvRow + o, f16));
        t = f32x4.replace_lane(t, 2, qs * kScalar(kr + 2 * kvRow + o, f16));
        t = f32x4.replace_lane(t, 3, qs * kScalar(kr + 3 * kvRow + o, f16));
        s = f32x4.add(s, t);
      }
    }
    v128.store(pr + (<usize>g << 4), f32x4.mul(s, scv));
  }
}

/** The score × sc of one key (row at kr) for query row q: a lane of scoreHalves + scoresFinish. */
@inline function scoreOne(q: usize, kr: usize, D: i32, f16: bool, sc: f32): f32 {
  const es: usize = f16 ? 2 : 4;
  const D4 = D & ~3;
  let acc = f32x4.splat(0), kp = kr;
  for (let a = q, qe = q + (<usize>D4 << 2); a < qe; a += 16) {
    acc = madd(v128.load(a), kAt(kp, f16), acc);
    kp += 4 * es;
  }
  let s = hsum(acc);
  for (let d = D4; d < D; d++) s += load<f32>(q + (<usize>d << 2)) * kScalar(kr + <usize>d * es, f16);
  return s * sc;
}

/** Chunk i (i = 0 or 1, a constant after inlining) of four V values at p + 16·i bytes of f32 or
 *  8·i of f16, with a constant offset instead of an address add; see vAt. */
@inline function vChunk(p: usize, f16: bool, i: i32): v128 {
  if (f16) return i == 0 ? f16Bits(v128.load16x4_s(p, 0)) : f16Bits(v128.load16x4_s(p, 8));
  return i == 0 ? v128.load(p, 0) : v128.load(p, 16);
}

/** One V value at p, scaled as vAt scales it. */
@inline function vScalar(p: usize, f16: bool): f32 {
  return f16 ? reinterpret<f32>((<i32>load<i16>(p) << 13) & <i32>0x8fffe000) : load<f32>(p);
}

/** Out rows o0 … o(R−1) (R = 1…4, a constant after inlining) += Σ p_r[s] · V row s over the keys
 *  s of [a, b), V row a at va and each next one kvRow further, p_r[a] at pr_r and each next one 4
 *  bytes further. Each row's values get their products added key by key, in order, whatever R:
 *  a row's bits are those of the row alone. Two 4-value chunks per pass keep R·2 accumulators, two
 *  V vectors and a broadcast p within the 16 SIMD registers. */
@inline function accumulate(R: i32, o0: usize, o1: usize, o2: usize, o3: usize, p0: usize, p1: usize, p2: usize, p3: usize,
                            va: usize, kvRow: usize, a: i32, b: i32, D: i32, f16: bool): void {
  const es: usize = f16 ? 2 : 4;
  const D8 = D & ~7, D4 = D & ~3;
  const keys = b - a;
  let d = 0;
  for (; d < D8; d += 8) {
    const od = <usize>d << 2;
    let a00 = v128.load(o0 + od, 0), a01 = v128.load(o0 + od, 16);
    let a10 = a00, a11 = a01, a20 = a00, a21 = a01, a30 = a00, a31 = a01;
    if (R > 1) { a10 = v128.load(o1 + od, 0); a11 = v128.load(o1 + od, 16); }
    if (R > 2) { a20 = v128.load(o2 + od, 0); a21 = v128.load(o2 + od, 16); }
    if (R > 3) { a30 = v128.load(o3 + od, 0); a31 = v128.load(o3 + od, 16); }
    let vr = va + <usize>d * es;
    for (let i = 0, pk: usize = 0; i < keys; i++, pk += 4) {
      const u0 = vChunk(vr, f16, 0), u1 = vChunk(vr, f16, 1);
      const w0 = v128.load32_splat(p0 + pk);
      a00 = madd(w0, u0, a00); a01 = madd(w0, u1, a01);
      if (R > 1) { const w = v128.load32_splat(p1 + pk); a10 = madd(w, u0, a10); a11 = madd(w, u1, a11); }
      if (R > 2) { const w = v128.load32_splat(p2 + pk); a20 = madd(w, u0, a20); a21 = madd(w, u1, a21); }
      if (R > 3) { const w = v128.load32_splat(p3 + pk); a30 = madd(w, u0, a30); a31 = madd(w, u1, a31); }
      vr += kvRow;
    }
    v128.store(o0 + od, a00, 0); v128.store(o0 + od, a01, 16);
    if (R > 1) { v128.store(o1 + od, a10, 0); v128.store(o1 + od, a11, 16); }
    if (R > 2) { v128.store(o2 + od, a20, 0); v128.store(o2 + od, a21, 16); }
    if (R > 3) { v128.store(o3 + od, a30, 0); v128.store(o3 + od, a31, 16); }
  }
  if (d < D4) { // one 4-value chunk left (D % 8 == 4..7)
    const od = <usize>d << 2;
    let a0 = v128.load(o0 + od), a1 = a0, a2 = a0, a3 = a0;
    if (R > 1) a1 = v128.load(o1 + od);
    if (R > 2) a2 = v128.load(o2 + od);
    if (R > 3) a3 = v128.load(o3 + od);
    let vr = va + <usize>d * es;
    for (let i = 0, pk: usize = 0; i < keys; i++, pk += 4) {
      const u = vChunk(vr, f16, 0);
      a0 = madd(v128.load32_splat(p0 + pk), u, a0);
      if (R > 1) a1 = madd(v128.load32_splat(p1 + pk), u, a1);
      if (R > 2) a2 = madd(v128.load32_splat(p2 + pk), u, a2);
      if (R > 3) a3 = madd(v128.load32_splat(p3 + pk), u, a3);
      vr += kvRow;
    }
    v128.store(o0 + od, a0);
    if (R > 1) v128.store(o1 + od, a1);
    if (R > 2) v128.store(o2 + od, a2);
    if (R > 3) v128.store(o3 + od, a3);
    d += 4;
  }
  for (; d < D; d++) { // D % 4 != 0: the last values one by one, keys in order
    const od = <usize>d << 2;
    let vr = va + <usize>d * es;
    let x0 = load<f32>(o0 + od), x1 = R > 1 ? load<f32>(o1 + od) : 0, x2 = R > 2 ? load<f32>(o2 + od) : 0, x3 = R > 3 ? load<f32>(o3 + od) : 0;
    for (let i = 0, pk: usize = 0; i < keys; i++, pk += 4) {
      const u = vScalar(vr, f16);
      x0 += load<f32>(p0 + pk) * u;
      if (R > 1) x1 += load<f32>(p1 + pk) * u;
      if (R > 2) x2 += load<f32>(p2 + pk) * u;
      if (R > 3) x3 += load<f32>(p3 + pk) * u;
      vr += kvRow;
    }
    store<f32>(o0 + od, x0);
    if (R > 1) store<f32>(o1 + od, x1);
    if (R > 2) store<f32>(o2 + od, x2);
    if (R > 3) store<f32>(o3 + od, x3);
  }
}

/** The online-softmax step of one row over its tile scores at pr (nv vectors; keys past the row's
 *  limit hold −inf), state (m, l) at sp, output row op: the new max over the tile, the output row
 *  and l rescaled when it rose, p = e^(score − m) summed into l and written over the scores
 *  (× 2^112 for an f16 cache, see vAt). The row must have at least one key in the tile. */
@inline function softmaxRow(pr: usize, nv: i32, sp: usize, op: usize, D: i32, f16: bool): void {
  const m = load<f32>(sp);
  let mx = v128.load(pr);
  // pmax: one maxps (f32x4.max is a NaN- and ±0-exact sequence of ~8 instructions on x86); the
  // same maximum for scores that are not NaN (a ±0 tie may keep −0: e^(s − m) is the same)
  for (let i = 1; i < nv; i++) mx = f32x4.pmax(mx, v128.load(pr + (<usize>i << 4)));
  const mt = max<f32>(m, hmax(mx));
  const corr: f32 = mt == m ? 1 : expS(m - mt); // 0 on the row's first tile (m = −inf)
  // an f16 V vector is read as value × 2^-112 (f16Bits), so p is stored × 2^112
  const mv = f32x4.splat(mt), pf = f32x4.splat(reinterpret<f32>(F16_REBIAS));
  let sum = f32x4.splat(0);
  for (let i = 0; i < nv; i++) {
    const at = pr + (<usize>i << 4);
    const p = expV(f32x4.sub(v128.load(at), mv));
    sum = f32x4.add(sum, p);
    v128.store(at, f16 ? f32x4.mul(p, pf) : p);
  }
  store<f32>(sp, mt);
  store<f32>(sp, load<f32>(sp, 4) * corr + hsum(sum), 4);
  if (corr != 1) {
    const D4 = D & ~3, cv = f32x4.splat(corr);
    let d = 0;
    for (; d < D4; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(op + (<usize>d << 2)), cv));
    for (; d < D; d++) store<f32>(op + (<usize>d << 2), load<f32>(op + (<usize>d << 2)) * corr);
  }
}

/** out row op /= l (the softmax denominator); an empty key range leaves the zeros. */
@inline function finishRow(op: usize, D: i32, l: f32): void {
  if (l == 0) return;
  const D4 = D & ~3;
  const inv = f32x4.splat(1.0 / l);
  let d = 0;
  for (; d < D4; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(op + (<usize>d << 2)), inv));
  for (; d < D; d++) store<f32>(op + (<usize>d << 2), load<f32>(op + (<usize>d << 2)) / l);
}

/** Most rows one block holds for n queries of a GQA group of `group` heads (ROWS at most). */
@inline function blockRows(n: i32, group: i32): i32 {
  return min<i32>(ROWS, n * min<i32>(group, ROWS));
}

/** Bytes of one row's scores: two f32 per key (scoreHalves' halves; the scores then fill the first half). */
const ROW_SCORES: usize = <usize>TILE << 3;

/** Bytes of one block's scratch: blockRows rows of scores (ROW_SCORES each) then, for an f16 cache,
 *  the rows' queries × 2^100 (D f32 each). */
@inline function blockBytes(n: i32, group: i32, D: i32): usize {
  return <usize>blockRows(n, group) * (ROW_SCORES + (<usize>D << 2));
}

@inline function align16(p: usize): usize { return (p + 15) & ~(<usize>15); }

/** The scratch of the head slice that starts at head h0: after the (n, H, 2) f32 softmax state,
 *  16-byte aligned, one block's scratch per query head. attentionStateBytes in src/kernels/types.ts
 *  declares the same layout (this and the partials below). */
@inline function sliceScratch(state: usize, n: i32, H: i32, group: i32, D: i32, h0: i32): usize {
  return align16(state + (<usize>n * <usize>H << 3)) + <usize>h0 * blockBytes(n, group, D);
}

/** Keys per chunk. Past one chunk, each chunk's keys give a partial result of their own (running
 *  max, sum and unnormalised output per row), folded into the rows in chunk order: chunks are the
 *  units that threads share when there are few queries (attentionChunks), and their boundaries are
 *  fixed, so the result bits do not depend on the thread count, the batch or the split mode. */
const CHUNK = 2048;
/** Most queries a call split by key chunks may have (its partials are sized for them). */
const SPLIT_QUERIES = 8;

@inline function chunkCount(S: i32): i32 { return S <= CHUNK ? 1 : (S + CHUNK - 1) / CHUNK; }

/** Whether n queries over S keys run as (chunk, KV head) units: attentionChunks + attentionMerge. */
@inline function splitsKeys(n: i32, S: i32): bool { return S > CHUNK && n <= SPLIT_QUERIES; }

/** Partial slot j (j = 0 …): (n, H, D) f32 unnormalised outputs, then (n, H, 2) f32 max and sum.
 *  After the head slices' scratch, 16-byte aligned; the area holds H·max(n, min(n, SPLIT_QUERIES)·
 *  (chunks − 1)) rows: one slot for the head slices (reused chunk after chunk), chunks − 1 for
 *  attentionChunks. */
@inline function partialSlot(state: usize, n: i32, H: i32, group: i32, D: i32, j: i32): usize {
  const slotBytes = <usize>n * <usize>H * (<usize>(D + 2) << 2);
  return align16(sliceScratch(state, n, H, group, D, H)) + <usize>j * slotBytes;
}

/** The block scratch of the attentionChunks slice that starts at unit u: after the partials, one
 *  block's scratch (for min(n, SPLIT_QUERIES) queries) per (chunk, KV head) unit. */
@inline function chunkScratch(state: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32, u: i32): usize {
  const group = H / Hkv;
  const rows = <usize>H * <usize>max<i32>(n, min<i32>(n, SPLIT_QUERIES) * (chunkCount(S) - 1));
  const base = align16(partialSlot(state, n, H, group, D, 0) + rows * (<usize>(D + 2) << 2));
  return base + <usize>u * blockBytes(min<i32>(n, SPLIT_QUERIES), group, D);
}

/** One tile, keys [s0, e), for the block's R rows: row r is query t0 + r / cnt, head h + r % cnt;
 *  its query (× 2^100 for an f16 cache) at qs + r·D·4 when qs != 0, else in q. */
@inline function attendTile(q: usize, qs: usize, qPos: usize, k: usize, v: usize, out: usize, f16: bool, t0: i32, R: i32, h: i32, cnt: i32,
                            S: i32, H: i32, D: i32, sc: f32, kvo: usize, kvRow: usize, pages: usize, pageShift: i32,
                            state: usize, scores: usize, s0: i32, e: i32): void {
  const headBytes = <usize>D << 2;
  const e4 = s0 + ((e - s0) & ~3);
  const kb = k + kvo;
  // 1. scores of every row: halves two keys at a time for up to four rows per pass, then per row
  //    the sums, the keys of a last partial group, and −inf past the row's limit (zeros for a row
  //    whose limit lies before the tile, so that P·V adds nothing)
  for (let r = 0; r < R;) {
    const left = R - r, take = min<i32>(left, 3);
    const q0 = blockQuery(q, qs, t0, r, h, cnt, H, D), p0 = scores + <usize>r * ROW_SCORES;
    const q1 = blockQuery(q, qs, t0, r + 1, h, cnt, H, D), q2 = blockQuery(q, qs, t0, r + 2, h, cnt, H, D);
    const q3 = blockQuery(q, qs, t0, r + 3, h, cnt, H, D);
    for (let s = s0; s < e4; s += 2) {
      const kr = pageBase(kb, pages, pageShift, s, kvRow) + <usize>s * kvRow, o = <usize>(s - s0) << 3;
      if (take == 4) scoreHalves(4, q0, q1, q2, q3, kr, kvRow, D, f16, p0 + o, p0 + ROW_SCORES + o, p0 + 2 * ROW_SCORES + o, p0 + 3 * ROW_SCORES + o);
      else if (take == 3) scoreHalves(3, q0, q1, q2, 0, kr, kvRow, D, f16, p0 + o, p0 + ROW_SCORES + o, p0 + 2 * ROW_SCORES + o, 0);
      else if (take == 2) scoreHalves(2, q0, q1, 0, 0, kr, kvRow, D, f16, p0 + o, p0 + ROW_SCORES + o, 0, 0);
      else scoreHalves(1, q0, 0, 0, 0, kr, kvRow, D, f16, p0 + o, 0, 0, 0);
    }
    r += take;
  }
  for (let r = 0; r < R; r++) {
    const t = t0 + r / cnt, pr = scores + <usize>r * ROW_SCORES;
    const limit = min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1);
    if (limit <= s0) { memory.fill(pr, 0, <usize>TILE << 2); continue; }
    const qr = blockQuery(q, qs, t0, r, h, cnt, H, D);
    scoresFinish(pr, (e4 - s0) >> 2, qr, kb, kvRow, s0, D, f16, sc, pages, pageShift);
    for (let s = e4; s < e; s++) {
      const kr = pageBase(kb, pages, pageShift, s, kvRow) + <usize>s * kvRow;
      store<f32>(pr + (<usize>(s - s0) << 2), scoreOne(qr, kr, D, f16, sc));
    }
    for (let s = limit - s0; s < TILE; s++) store<f32>(pr + (<usize>s << 2), -Infinity);
  }
  // 2. the online softmax, row by row, over the whole tile
  const nv = (e - s0 + 3) >> 2;
  for (let r = 0; r < R; r++) {
    const t = t0 + r / cnt, j = r % cnt;
    if (min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1) <= s0) continue;
    const row = <usize>t * <usize>H + <usize>(h + j);
    softmaxRow(scores + <usize>r * ROW_SCORES, nv, state + (row << 3), out + row * headBytes, D, f16);
  }
  // 3. O += P·V, up to four rows per pass over the V rows, page by page
  const pageKeys = pages == 0 ? TILE : 1 << pageShift;
  for (let a = s0; a < e;) {
    const b = min<i32>(e, (a & ~(pageKeys - 1)) + pageKeys);
    const va = pageBase(v + kvo, pages, pageShift, a, kvRow) + <usize>a * kvRow, po = <usize>(a - s0) << 2;
    let r = 0;
    for (; r + 4 <= R; r += 4) {
      const p0 = scores + <usize>r * ROW_SCORES + po;
      accumulate(4, rowOut(out, t0, r, h, cnt, H, D), rowOut(out, t0, r + 1, h, cnt, H, D), rowOut(out, t0, r + 2, h, cnt, H, D),
                 rowOut(out, t0, r + 3, h, cnt, H, D), p0, p0 + ROW_SCORES, p0 + 2 * ROW_SCORES, p0 + 3 * ROW_SCORES, va, kvRow, a, b, D, f16);
    }
    const left = R - r, p0 = scores + <usize>r * ROW_SCORES + po;
    if (left == 3) {
      accumulate(3, rowOut(out, t0, r, h, cnt, H, D), rowOut(out, t0, r + 1, h, cnt, H, D), rowOut(out, t0, r + 2, h, cnt, H, D), 0,
                 p0, p0 + ROW_SCORES, p0 + 2 * ROW_SCORES, 0, va, kvRow, a, b, D, f16);
    } else if (left == 2) {
      accumulate(2, rowOut(out, t0, r, h, cnt, H, D), rowOut(out, t0, r + 1, h, cnt, H, D), 0, 0,
                 p0, p0 + ROW_SCORES, 0, 0, va, kvRow, a, b, D, f16);
    } else if (left == 1) {
      accumulate(1, rowOut(out, t0, r, h, cnt, H, D), 0, 0, 0, p0, 0, 0, 0, va, kvRow, a, b, D, f16);
    }
    a = b;
  }
}

/** How many tiles ahead of the one being worked on the K/V rows are touched (touchAhead). */
const AHEAD = 2;

/** Loads one word of every 64-byte line of the K and V rows of the tile at s0 (when it lies below
 *  limit), so that those lines' cache misses overlap the arithmetic of the tiles before it.
 *  WebAssembly has no prefetch instruction, and in decode a layer's rows come from memory (the
 *  other layers' weights and rows went through the caches since the last step): with the touches a
 *  cold call reads 4096–16384 f16 keys ~1.25× faster (BENCHMARKS §4); results are unchanged. */
@inline function touchAhead(k: usize, v: usize, s0: i32, limit: i32, kvRow: usize, pages: usize, pageShift: i32): i32 {
  let x: i32 = 0;
  const e = min<i32>(limit, s0 + TILE);
  for (let s = s0; s < e; s++) {
    const kr = pageBase(k, pages, pageShift, s, kvRow) + <usize>s * kvRow;
    const vr = pageBase(v, pages, pageShift, s, kvRow) + <usize>s * kvRow;
    for (let o: usize = 0; o < kvRow; o += 64) x ^= load<i32>(kr + o) ^ load<i32>(vr + o);
  }
  return x;
}

/** Query of block row r: its scaled copy at qs + r·D·4 (f16 cache), else its row of q. Rows past
 *  the block give a pointer that is never read. */
@inline function blockQuery(q: usize, qs: usize, t0: i32, r: i32, h: i32, cnt: i32, H: i32, D: i32): usize {
  if (qs != 0) return qs + <usize>r * (<usize>D << 2);
  return q + (<usize>(t0 + r / cnt) * <usize>H + <usize>(h + r % cnt)) * (<usize>D << 2);
}

/** Out row of block row r (query t0 + r / cnt, head h + r % cnt). */
@inline function rowOut(out: usize, t0: i32, r: i32, h: i32, cnt: i32, H: i32, D: i32): usize {
  return out + (<usize>(t0 + r / cnt) * <usize>H + <usize>(h + r % cnt)) * (<usize>D << 2);
}

/** dst (D f32) = src × 2^100 (exact for |src| < 2^28). */
@inline function scaleRow(dst: usize, src: usize, D: i32): void {
  const f = reinterpret<f32>(<u32>(127 + 100) << 23), fv = f32x4.splat(f), D4 = D & ~3;
  let d = 0;
  for (; d < D4; d += 4) v128.store(dst + (<usize>d << 2), f32x4.mul(v128.load(src + (<usize>d << 2)), fv));
  for (; d < D; d++) store<f32>(dst + (<usize>d << 2), load<f32>(src + (<usize>d << 2)) * f);
}

/** Keys [cs, ce) for the query rows of heads [h0, h1): tile by tile over the keys, and within a
 *  tile per KV head its heads in the slice × blocks of queries (at most ROWS rows), one pass over
 *  the cache rows, each tile's K/V rows (all KV heads) read from memory once and then found in cache
 *  by the other KV heads. Each row's running max and sum go to st (n, H, 2) f32, its unnormalised
 *  output to o (n, H, D) f32; a row with no key in the range keeps max −inf, sum 0, zeros.
 *  `scores`: the block scratch this call may use. */
@inline function attendRange(q: usize, qPos: usize, k: usize, v: usize, o: usize, st: usize, f16: bool,
                             n: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32, pages: usize, pageShift: i32,
                             scores: usize, h0: i32, h1: i32, cs: i32, ce: i32): void {
  const es: usize = f16 ? 2 : 4;
  const group = H / Hkv;
  const kvRow = <usize>Hkv * <usize>D * es;
  const headBytes = <usize>D << 2;
  const qs: usize = f16 ? scores + <usize>blockRows(n, group) * ROW_SCORES : 0; // a block's queries × 2^100
  // f16: q × 2^100 and the scores × 2^12 make up for the 2^-112 that kAt leaves in K
  const sc: f32 = f16 ? scale * reinterpret<f32>(<u32>(127 + 12) << 23) : scale;
  let maxLimit = 0, touchLimit = 0; // keys of the range; keys of the whole call (the touches run on into the next chunk)
  for (let t = 0; t < n; t++) {
    maxLimit = max<i32>(maxLimit, min<i32>(ce, load<i32>(qPos + (<usize>t << 2)) + 1));
    touchLimit = max<i32>(touchLimit, min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1));
    for (let hh = h0; hh < h1; hh++) {
      const row = <usize>t * <usize>H + <usize>hh;
      memory.fill(o + row * headBytes, 0, headBytes);
      store<f32>(st + (row << 3), -Infinity); store<f32>(st + (row << 3), 0, 4);
    }
  }
  let touched: i32 = 0;
  for (let s0 = cs; s0 < maxLimit; s0 += TILE) {
    touched ^= touchAhead(k, v, s0 + AHEAD * TILE, touchLimit, kvRow, pages, pageShift);
    let h = h0;
    while (h < h1) {
      const kvh = h / group;
      const hEnd = min<i32>(min<i32>(h1, (kvh + 1) * group), h + ROWS); // heads [h, hEnd) read KV head kvh
      const cnt = hEnd - h, kvo = <usize>kvh * <usize>D * es;
      const perBlock = max<i32>(1, ROWS / cnt);
      for (let t0 = 0; t0 < n; t0 += perBlock) {
        const t1 = min<i32>(n, t0 + perBlock);
        let blockLimit = 0;
        for (let t = t0; t < t1; t++) blockLimit = max<i32>(blockLimit, min<i32>(ce, load<i32>(qPos + (<usize>t << 2)) + 1));
        if (blockLimit <= s0) continue;
        if (f16) { // the block's queries × 2^100 (again per tile: the scratch holds one block)
          for (let t = t0; t < t1; t++) {
            for (let j = 0; j < cnt; j++) {
              scaleRow(qs + <usize>((t - t0) * cnt + j) * headBytes, q + (<usize>t * <usize>H + <usize>(h + j)) * headBytes, D);
            }
          }
        }
        // keys past ce belong to the next chunk: ce is the limit attendTile masks to
        attendTile(q, qs, qPos, k, v, o, f16, t0, (t1 - t0) * cnt, h, cnt, ce, H, D, sc, kvo, kvRow, pages, pageShift, st, scores,
                   s0, min<i32>(blockLimit, s0 + TILE));
      }
      h = hEnd;
    }
  }
  store<i32>(scores, touched); // the touches' values go to scratch, so that no load is dropped
}

/** Folds the partial (po, ps) of the chunk starting at key cs into the rows (out, state) of heads
 *  [h0, h1): m = max(m, m'), then o and l rescaled by e^(m_old − m) and the partial's by
 *  e^(m' − m) (1 exactly when that max is the larger), added. Rows whose keys end before cs have
 *  nothing to fold. Every split mode folds the chunks of a row in the same order with this code. */
@inline function foldRows(qPos: usize, out: usize, state: usize, po: usize, ps: usize, n: i32, H: i32, D: i32, h0: i32, h1: i32,
                          cs: i32): void {
  const headBytes = <usize>D << 2, D4 = D & ~3;
  for (let t = 0; t < n; t++) {
    if (load<i32>(qPos + (<usize>t << 2)) + 1 <= cs) continue;
    for (let h = h0; h < h1; h++) {
      const row = <usize>t * <usize>H + <usize>h;
      const sp = state + (row << 3), pp = ps + (row << 3), op = out + row * headBytes, pop = po + row * headBytes;
      const m = load<f32>(sp), mp = load<f32>(pp), mt = max<f32>(m, mp);
      const a: f32 = m == mt ? 1 : expS(m - mt), b: f32 = mp == mt ? 1 : expS(mp - mt);
      store<f32>(sp, mt);
      store<f32>(sp, load<f32>(sp, 4) * a + load<f32>(pp, 4) * b, 4);
      const av = f32x4.splat(a), bv = f32x4.splat(b);
      let d = 0;
      for (; d < D4; d += 4) {
        const at = <usize>d << 2;
        v128.store(op + at, madd(v128.load(pop + at), bv, f32x4.mul(v128.load(op + at), av)));
      }
      for (; d < D; d++) {
        const at = <usize>d << 2;
        store<f32>(op + at, load<f32>(op + at) * a + load<f32>(pop + at) * b);
      }
    }
  }
}

/** Out rows of heads [h0, h1) /= their softmax sums. */
@inline function finishRows(out: usize, state: usize, n: i32, H: i32, D: i32, h0: i32, h1: i32): void {
  for (let t = 0; t < n; t++) {
    for (let h = h0; h < h1; h++) {
      const row = <usize>t * <usize>H + <usize>h;
      finishRow(out + row * (<usize>D << 2), D, load<f32>(state + (row << 3), 4));
    }
  }
}

/** Query heads [h0, h1), whole: the first chunk's keys into the rows, each later chunk's into the
 *  partial slot and folded (the bits attentionChunks + attentionMerge give). */
@inline function attentionAny(q: usize, qPos: usize, k: usize, v: usize, out: usize, f16: bool,
                              n: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32, pages: usize, pageShift: i32,
                              state: usize, h0: i32, h1: i32): void {
  if (state == 0) unreachable(); // the caller gives scratch (Kernels.attention), checked in src/kernels/wasm.ts
  const group = H / Hkv;
  const scores = sliceScratch(state, n, H, group, D, h0);
  attendRange(q, qPos, k, v, out, state, f16, n, S, H, Hkv, D, scale, pages, pageShift, scores, h0, h1, 0, min<i32>(S, CHUNK));
  const chunks = chunkCount(S);
  if (chunks > 1) {
    const po = partialSlot(state, n, H, group, D, 0), ps = po + <usize>n * <usize>H * (<usize>D << 2);
    for (let c = 1; c < chunks; c++) {
      const cs = c * CHUNK;
      attendRange(q, qPos, k, v, po, ps, f16, n, S, H, Hkv, D, scale, pages, pageShift, scores, h0, h1, cs, min<i32>(S, cs + CHUNK));
      foldRows(qPos, out, state, po, ps, n, H, D, h0, h1, cs);
    }
  }
  finishRows(out, state, n, H, D, h0, h1);
}

/** Units [u0, u1) of a call split by key chunks (splitsKeys): unit u is chunk u / Hkv of KV head
 *  u mod Hkv, all its query heads; chunk 0 goes into out and the softmax state, chunk c > 0 into
 *  partial slot c − 1. attentionMerge then folds them. */
@inline function attentionChunksAny(q: usize, qPos: usize, k: usize, v: usize, out: usize, f16: bool,
                                    n: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32, pages: usize, pageShift: i32,
                                    state: usize, u0: i32, u1: i32): void {
  if (state == 0 || !splitsKeys(n, S)) unreachable(); // checked in src/kernels/wasm.ts
  const group = H / Hkv;
  const scores = chunkScratch(state, n, S, H, Hkv, D, u0);
  for (let u = u0; u < u1;) {
    const c = u / Hkv, g = u - c * Hkv, gEnd = min<i32>(Hkv, g + (u1 - u));
    const cs = c * CHUNK, ce = min<i32>(S, cs + CHUNK);
    let o = out, st = state;
    if (c > 0) { o = partialSlot(state, n, H, group, D, c - 1); st = o + <usize>n * <usize>H * (<usize>D << 2); }
    attendRange(q, qPos, k, v, o, st, f16, n, S, H, Hkv, D, scale, pages, pageShift, scores, g * group, gEnd * group, cs, ce);
    u += gEnd - g;
  }
}

// Not inlined into their callers (the batch form calls them too): one function per cache type.
export function attentionF32(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                             scale: f32, pages: usize, pageShift: i32, state: usize, h0: i32, h1: i32): void {
  attentionAny(q, qPos, k, v, out, false, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
}

export function attentionF16(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                             scale: f32, pages: usize, pageShift: i32, state: usize, h0: i32, h1: i32): void {
  attentionAny(q, qPos, k, v, out, true, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
}

export function attentionChunksF32(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                                   scale: f32, pages: usize, pageShift: i32, state: usize, u0: i32, u1: i32): void {
  attentionChunksAny(q, qPos, k, v, out, false, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1);
}

export function attentionChunksF16(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                                   scale: f32, pages: usize, pageShift: i32, state: usize, u0: i32, u1: i32): void {
  attentionChunksAny(q, qPos, k, v, out, true, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1);
}

/** After attentionChunks over all Hkv·chunkCount(S) units: folds chunks 1 … in order into the rows,
 *  then divides them by their sums (the bits attentionF32/F16 give for the whole head range). */
export function attentionMerge(qPos: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32, state: usize): void {
  const group = H / Hkv, chunks = chunkCount(S);
  for (let c = 1; c < chunks; c++) {
    const po = partialSlot(state, n, H, group, D, c - 1), ps = po + <usize>n * <usize>H * (<usize>D << 2);
    foldRows(qPos, out, state, po, ps, n, H, D, 0, H, c * CHUNK);
  }
  finishRows(out, state, n, H, D, 0, H);
}

// attentionBatch: one job for the attention of many sequences over one layer's K/V pool. Each item
// of the table is one sequence's call (src/kernels/types.ts ATTENTION_ITEM writes the same word
// layout) with the index of its first work unit: an item split by key chunks (splitsKeys) has
// Hkv·chunkCount(S) units as attentionChunks numbers them, any other H, one per query head. A
// thread's slice runs whole calls of the kernels above over unit ranges, and every item gets the
// bits it would get alone.
const ITEM_Q = 0, ITEM_QPOS = 1, ITEM_OUT = 2, ITEM_N = 3, ITEM_S = 4, ITEM_PAGES = 5, ITEM_STATE = 6, ITEM_FIRST = 7, ITEM_WORDS = 8;

@inline function itemWord(item: usize, i: i32): usize { return <usize>load<u32>(item + (<usize>i << 2)); }

@inline function itemAt(table: usize, i: i32): usize { return table + <usize>i * (<usize>ITEM_WORDS << 2); }

@inline function attentionBatchAny(table: usize, count: i32, k: usize, v: usize, f16: bool, H: i32, Hkv: i32, D: i32, scale: f32,
                                   pageShift: i32, u0: i32, u1: i32): void {
  let i = 0; // the item holding unit u0 (items in order of their first unit)
  while (i + 1 < count && <i32>itemWord(itemAt(table, i + 1), ITEM_FIRST) <= u0) i++;
  for (let u = u0; u < u1 && i < count; i++) {
    const it = itemAt(table, i);
    const q = itemWord(it, ITEM_Q), qPos = itemWord(it, ITEM_QPOS), out = itemWord(it, ITEM_OUT);
    const n = <i32>itemWord(it, ITEM_N), S = <i32>itemWord(it, ITEM_S);
    const pages = itemWord(it, ITEM_PAGES), state = itemWord(it, ITEM_STATE), first = <i32>itemWord(it, ITEM_FIRST);
    const split = splitsKeys(n, S);
    const end = min<i32>(u1, first + (split ? Hkv * chunkCount(S) : H));
    if (split) {
      if (f16) attentionChunksF16(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u - first, end - first);
      else attentionChunksF32(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u - first, end - first);
    } else if (f16) attentionF16(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u - first, end - first);
    else attentionF32(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u - first, end - first);
    u = end;
  }
}

export function attentionBatchF32(table: usize, count: i32, k: usize, v: usize, H: i32, Hkv: i32, D: i32, scale: f32,
                                  pageShift: i32, u0: i32, u1: i32): void {
  attentionBatchAny(table, count, k, v, false, H, Hkv, D, scale, pageShift, u0, u1);
}

export function attentionBatchF16(table: usize, count: i32, k: usize, v: usize, H: i32, Hkv: i32, D: i32, scale: f32,
                                  pageShift: i32, u0: i32, u1: i32): void {
  attentionBatchAny(table, count, k, v, true, H, Hkv, D, scale, pageShift, u0, u1);
}

/** After attentionBatch over every unit: attentionMerge of each item split by key chunks. */
export function attentionBatchMerge(table: usize, count: i32, H: i32, Hkv: i32, D: i32): void {
  for (let i = 0; i < count; i++) {
    const it = itemAt(table, i);
    const n = <i32>itemWord(it, ITEM_N), S = <i32>itemWord(it, ITEM_S);
    if (splitsKeys(n, S)) attentionMerge(itemWord(it, ITEM_QPOS), itemWord(it, ITEM_OUT), n, S, H, Hkv, D, itemWord(it, ITEM_STATE));
  }
}
