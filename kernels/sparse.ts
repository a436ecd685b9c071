// Sparse (gathered) attention kernels: they read only the K/V rows whose token ids are listed, so a
// decode step costs O(listed keys), not O(context).
//   attendList      softmax attention of one query over listed rows, optional per-key logit bias;
//                   writes the normalised output and its log-sum-exp (a partial to merge).
//   sparseScores    scale·q·k for a contiguous range of rows (TopK / oracle sampling need all scores).
//   magicpigDecode  MagicPIG's decode step for query heads [h0, h1) (PAPERS.md §1): hash q, walk the
//                   CSR tables counting hits (two bits per token: hit once / hit twice; a token is
//                   sampled iff it was hit at least twice), importance-weighted attention over the
//                   sampled keys (in token order) with logits s_i − log(u_i + floor), exact attention
//                   over the dense ids, then the two-partial-softmax merge by log-sum-exp.
//                   Its cost is memory latency (random buckets, random K/V rows), so every gather is
//                   touched ahead of its use.
// Rows: a cache row holds Hkv·D values in f32 or f16; callers pass the KV head's base pointer and
// the row stride in bytes. D must be a multiple of 4.

import { hsum, hsum4, loadF16x4, expS, expV } from './vector';

@inline function ld(p: usize, f16: bool): v128 {
  return f16 ? loadF16x4(p) : v128.load(p);
}

@inline function dot(q: usize, kr: usize, f16: bool, D: i32): f32 {
  const es: usize = f16 ? 2 : 4;
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
  let d = 0;
  for (; d + 8 <= D; d += 8) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>d << 2)), ld(kr + <usize>d * es, f16)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(q + (<usize>(d + 4) << 2)), ld(kr + <usize>(d + 4) * es, f16)));
  }
  if (d < D) a0 = f32x4.add(a0, f32x4.mul(v128.load(q + (<usize>d << 2)), ld(kr + <usize>d * es, f16)));
  return hsum(f32x4.add(a0, a1));
}

// acc (D) = acc·corr + p·v
@inline function axpy(acc: usize, vr: usize, f16: bool, D: i32, corr: f32, p: f32): void {
  const es: usize = f16 ? 2 : 4;
  const cv = f32x4.splat(corr), pv = f32x4.splat(p);
  for (let d = 0; d < D; d += 4) {
    const ap = acc + (<usize>d << 2);
    v128.store(ap, f32x4.add(f32x4.mul(v128.load(ap), cv), f32x4.mul(pv, ld(vr + <usize>d * es, f16))));
  }
}

// Online softmax state lives next to the accumulator: part = [acc (D) | m | l].
@inline function resetPart(part: usize, D: i32): void {
  for (let d = 0; d < D; d += 4) v128.store(part + (<usize>d << 2), f32x4.splat(0));
  store<f32>(part + (<usize>D << 2), -Infinity);
  store<f32>(part + (<usize>D << 2) + 4, 0);
}

// Adds one key with logit x and value row vr to the partial (one exp per key).
@inline function addKey(part: usize, vr: usize, f16: bool, D: i32, x: f32): void {
  const mp = part + (<usize>D << 2);
  const m = load<f32>(mp), l = load<f32>(mp + 4);
  if (x <= m) {
    const p = expS(x - m);
    axpy(part, vr, f16, D, 1, p);
    store<f32>(mp + 4, l + p);
  } else {
    const corr = expS(m - x); // 0 for the first key (m = −inf)
    axpy(part, vr, f16, D, corr, 1);
    store<f32>(mp, x);
    store<f32>(mp + 4, l * corr + 1);
  }
}

/** Byte offset of K/V row `id` from the pool base: id·rowStride when contiguous (pages = 0), else
 *  through the page table (u32 byte offset per page of 2^shift rows; K and V share the layout). */
@inline function rowOff(id: usize, rowStride: i32, pages: usize, shift: i32): usize {
  if (pages == 0) return id * <usize>rowStride;
  return <usize>load<u32>(pages + ((id >> <usize>shift) << 2)) + (id & ((<usize>1 << <usize>shift) - 1)) * <usize>rowStride;
}

@inline function attendListAny(q: usize, k: usize, v: usize, f16: bool, rowStride: i32, pages: usize, shift: i32, D: i32, scale: f32,
                               ids: usize, bias: usize, count: i32, part: usize): void {
  resetPart(part, D);
  for (let i = 0; i < count; i++) {
    const row = rowOff(<usize>load<u32>(ids + (<usize>i << 2)), rowStride, pages, shift);
    let x = dot(q, k + row, f16, D) * scale;
    if (bias != 0) x += load<f32>(bias + (<usize>i << 2));
    addKey(part, v + row, f16, D, x);
  }
}

/** out (D) = Σ_i e^{x_i} v_{ids[i]} / Σ_i e^{x_i}, x_i = scale·q·k_{ids[i]} + bias[i] (bias 0 = none);
 *  lse (1) = log Σ_i e^{x_i}. `out` must have room for D + 2 floats (the online state). count = 0
 *  gives out = 0, lse = −inf. */
export function attendList(q: usize, k: usize, v: usize, f16: i32, rowStride: i32, pages: usize, pageShift: i32, D: i32, scale: f32,
                           ids: usize, bias: usize, count: i32, out: usize, lse: usize): void {
  if (f16 != 0) attendListAny(q, k, v, true, rowStride, pages, pageShift, D, scale, ids, bias, count, out);
  else attendListAny(q, k, v, false, rowStride, pages, pageShift, D, scale, ids, bias, count, out);
  finishPart(out, D, lse);
}

@inline function finishPart(part: usize, D: i32, lse: usize): void {
  const m = load<f32>(part + (<usize>D << 2)), l = load<f32>(part + (<usize>D << 2) + 4);
  const inv: f32 = l > 0 ? 1 / l : 0;
  for (let d = 0; d < D; d += 4) v128.store(part + (<usize>d << 2), f32x4.mul(v128.load(part + (<usize>d << 2)), f32x4.splat(inv)));
  store<f32>(lse, l > 0 ? m + Mathf.log(l) : -Infinity);
}

/** out (s1 − s0) = scale · q · k_s for rows s in [s0, s1). */
export function sparseScores(q: usize, k: usize, f16: i32, rowStride: i32, pages: usize, pageShift: i32, D: i32, scale: f32,
                             s0: i32, s1: i32, out: usize): void {
  for (let s = s0; s < s1; s++) {
    const kr = k + rowOff(<usize>s, rowStride, pages, pageShift);
    store<f32>(out + (<usize>(s - s0) << 2), (f16 != 0 ? dot(q, kr, true, D) : dot(q, kr, false, D)) * scale);
  }
}

// ---- MagicPIG decode ----------------------------------------------------------------------------
// Descriptor words (i32 unless noted); src/attention/magicpig-desc.ts writes the same layout.
const Q = 0, OUT = 1, KP = 2, VP = 3, F16 = 4, ROW = 5, H_ = 6, HKV = 7, D_ = 8, SCALE = 9, KB = 10, LT = 11;
const RP = 12, MU = 13, KNORM = 14, CAP = 15, MAIN_OFF = 16, MAIN_IDS = 17, MAIN_STRIDE = 18;
const DELTA_OFF = 19, DELTA_IDS = 20, DELTA_STRIDE = 21, COUNTERS = 22, LISTS = 23, LOGU = 24, LOGU_N = 25;
const DENSE_IDS = 26, DENSE_N = 27, STATS = 28, QB = 29, PARTS = 30, DELTA_N = 31, MAIN_N = 32;
const SCRATCH = 33, ID_LO = 34, ID_HI = 35, PAGES = 36, PAGE_SHIFT = 37;

// Logits held per pass of the chunked softmax: SCRATCH holds MAGICPIG_CHUNK f32 per query head
// (magicpig-desc.ts MAGICPIG_CHUNK; a multiple of 4).
const MAGICPIG_CHUNK: i32 = 64;

@inline function w(desc: usize, i: i32): i32 { return load<i32>(desc + (<usize>i << 2)); }
@inline function p(desc: usize, i: i32): usize { return <usize>load<u32>(desc + (<usize>i << 2)); }

// Bucket of q in every table: bit b of table l = [q·R[lK+b] > 0]. Four directions per step (one
// hsum4, one bitmask); the bits stream through a small accumulator and leave K at a time.
@inline function hashQuery(q: usize, R: usize, D: i32, K: i32, L: i32, qb: usize): void {
  if (K == 0) { for (let l = 0; l < L; l++) store<u32>(qb + (<usize>l << 2), 0); return; }
  const KL = K * L, rs = <usize>D << 2, mask: u64 = (<u64>1 << <u64>K) - 1;
  let acc: u64 = 0, nb: i32 = 0, l = 0, j = 0;
  for (; j + 4 <= KL; j += 4) {
    const r = R + <usize>j * rs;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d = 0; d < D; d += 4) {
      const o = <usize>d << 2, qv = v128.load(q + o);
      a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(r + o)));
      a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(r + rs + o)));
      a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(r + 2 * rs + o)));
      a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(r + 3 * rs + o)));
    }
    acc |= <u64>i32x4.bitmask(f32x4.gt(hsum4(a0, a1, a2, a3), f32x4.splat(0))) << <u64>nb;
    nb += 4;
    while (nb >= K) { store<u32>(qb + (<usize>l << 2), <u32>(acc & mask)); acc >>= <u64>K; nb -= K; l++; }
  }
  for (; j < KL; j++) {
    if (dot(q, R + <usize>j * rs, false, D) > 0) acc |= <u64>1 << <u64>nb;
    nb++;
    while (nb >= K) { store<u32>(qb + (<usize>l << 2), <u32>(acc & mask)); acc >>= <u64>K; nb -= K; l++; }
  }
}

// Hit counting without branches or a reset pass: one u64 word per 32 token ids, low half = "hit
// once", high half = "hit twice or more" (bit id & 31 of word id >> 5). A hit ORs in the id's bit
// and copies its low bit to the high half. The retrieved set is read back from the high halves in
// id order, so the K/V rows are then gathered front to back.
@inline function walk(off: usize, ids: usize, stride: i32, g: i32, L: i32, NB: i32, qb: usize, bits: usize, sink: usize): void {
  // First touch one word per cache line of every bucket (independent misses, all in flight at once).
  let touch: u32 = 0;
  for (let l = 0; l < L; l++) {
    const t = g * L + l;
    const op = off + ((<usize>t * <usize>(NB + 1) + <usize>load<u32>(qb + (<usize>l << 2))) << 2);
    const s = load<u32>(op), e = load<u32>(op + 4);
    const base = ids + (<usize>t * <usize>stride << 2);
    for (let i = s; i < e; i += 16) touch ^= load<u32>(base + (<usize>i << 2));
    if (e > s) touch ^= load<u32>(base + (<usize>(e - 1) << 2));
  }
  store<u32>(sink, touch); // a spare word: the touches must stay
  for (let l = 0; l < L; l++) {
    const t = g * L + l;
    const b = load<u32>(qb + (<usize>l << 2));
    const op = off + ((<usize>t * <usize>(NB + 1) + <usize>b) << 2);
    const s = load<u32>(op), e = load<u32>(op + 4);
    const base = ids + (<usize>t * <usize>stride << 2);
    for (let i = s; i < e; i++) {
      const id = load<u32>(base + (<usize>i << 2));
      const wp = bits + (<usize>(id >> 5) << 3);
      const bit = <u64>1 << <u64>(id & 31);
      const x = load<u64>(wp);
      store<u64>(wp, x | bit | ((x & bit) << 32));
    }
  }
}

/** Bytes of one query head's hit bits: one u64 per 32 ids, and at least cap (the u8 counters of
 *  the TypeScript twin share the buffer). magicpig-desc.ts counterStride is the same formula. */
@inline function counterStride(cap: i32): i32 { return max<i32>(cap, ((cap + 31) >> 5) << 3); }

// Appends (in increasing order) the ids whose "twice" bit is set in words [w0, w1); returns the count.
@inline function collect(bits: usize, w0: i32, w1: i32, list: usize): i32 {
  let n = 0;
  for (let wi = w0; wi < w1; wi++) {
    let hi = <u32>(load<u64>(bits + (<usize>wi << 3)) >> 32);
    while (hi != 0) {
      store<u32>(list + (<usize>n << 2), (<u32>wi << 5) + ctz(hi));
      n++;
      hi &= hi - 1;
    }
  }
  return n;
}

// acc (D) += p0·v0 + p1·v1 (two keys per pass over the accumulator).
@inline function axpy2(acc: usize, v0: usize, v1: usize, f16: bool, D: i32, p0: f32, p1: f32): void {
  const es: usize = f16 ? 2 : 4;
  const a = f32x4.splat(p0), b = f32x4.splat(p1);
  for (let d = 0; d < D; d += 4) {
    const ap = acc + (<usize>d << 2), o = <usize>d * es;
    v128.store(ap, f32x4.add(v128.load(ap), f32x4.add(f32x4.mul(a, ld(v0 + o, f16)), f32x4.mul(b, ld(v1 + o, f16)))));
  }
}

// Softmax attention of q over rows ids[0..count) into part = [acc (D) | m | l], CHUNK keys at a
// time: the chunk's logits first, one rescale of the accumulator per chunk, exps four at a time,
// then the weighted V rows. Each chunk first touches the next chunk's K/V rows in a tight loop
// (wasm has no prefetch instruction): those misses are then all in flight together, under this
// chunk's arithmetic, instead of stalling one key at a time (~1.5x on the whole step at 64K). With `sampled`, logit =
// s_i − log(u_i + floor), log(u + floor) interpolated in the logU table (T + 1 entries over cos(q, k_i − μ)).
@inline function attendChunked(q: usize, kBase: usize, vBase: usize, f16: bool, rowStride: i32, pages: usize, shift: i32, D: i32, scale: f32,
                               ids: usize, count: i32, part: usize, xs: usize,
                               sampled: bool, qNorm: f32, qMu: f32, knorm: usize, logU: usize, T: i32): void {
  resetPart(part, D);
  const mp = part + (<usize>D << 2);
  const span: usize = (<usize>D * (f16 ? 2 : 4)) - 4;   // last word of a row's head slice
  let touch: u32 = 0;
  for (let c0 = 0; c0 < count; c0 += MAGICPIG_CHUNK) {
    const c1 = min<i32>(count, c0 + MAGICPIG_CHUNK), n = c1 - c0;
    const idp = ids + (<usize>c0 << 2);
    // touch this chunk's rows (the first chunk) and the next chunk's: their misses overlap this one's work
    const t0 = c0 == 0 ? 0 : c1, t1 = min<i32>(count, c1 + MAGICPIG_CHUNK);
    for (let i = t0; i < t1; i++) {
      const r = rowOff(<usize>load<u32>(ids + (<usize>i << 2)), rowStride, pages, shift);
      touch = touch ^ load<u32>(kBase + r) ^ load<u32>(kBase + r + span) ^ load<u32>(vBase + r) ^ load<u32>(vBase + r + span);
    }
    let cm: f32 = -Infinity;
    for (let i = 0; i < n; i++) {
      const id = <usize>load<u32>(idp + (<usize>i << 2));
      const raw = dot(q, kBase + rowOff(id, rowStride, pages, shift), f16, D);
      let x = raw * scale;
      if (sampled) {
        const den = qNorm * load<f32>(knorm + (id << 2));
        let c: f32 = den > 0 ? (raw - qMu) / den : 0;
        c = min<f32>(1, max<f32>(-1, c));
        const y = (c + 1) * 0.5 * <f32>T;
        const j = min<i32>(<i32>y, T - 1);
        const f = y - <f32>j;
        const a = load<f32>(logU + (<usize>j << 2)), b = load<f32>(logU + (<usize>(j + 1) << 2));
        x -= a + f * (b - a);
      }
      store<f32>(xs + (<usize>i << 2), x);
      cm = max<f32>(cm, x);
    }
    const m = load<f32>(mp);
    let l = load<f32>(mp + 4);
    if (cm > m) {
      const corr = expS(m - cm); // 0 for the first chunk (m = −inf)
      const cv = f32x4.splat(corr);
      for (let d = 0; d < D; d += 4) v128.store(part + (<usize>d << 2), f32x4.mul(v128.load(part + (<usize>d << 2)), cv));
      l *= corr;
      store<f32>(mp, cm);
    }
    const M = f32x4.splat(load<f32>(mp));
    for (let i = 0; i < n; i += 4) {
      const xp = xs + (<usize>i << 2);
      v128.store(xp, expV(f32x4.sub(v128.load(xp), M)));
    }
    let i = 0;
    for (; i + 2 <= n; i += 2) {
      const p0 = load<f32>(xs + (<usize>i << 2)), p1 = load<f32>(xs + (<usize>i << 2) + 4);
      const r0 = rowOff(<usize>load<u32>(idp + (<usize>i << 2)), rowStride, pages, shift);
      const r1 = rowOff(<usize>load<u32>(idp + (<usize>i << 2) + 4), rowStride, pages, shift);
      axpy2(part, vBase + r0, vBase + r1, f16, D, p0, p1);
      l += p0 + p1;
    }
    if (i < n) {
      const p0 = load<f32>(xs + (<usize>i << 2));
      axpy(part, vBase + rowOff(<usize>load<u32>(idp + (<usize>i << 2)), rowStride, pages, shift), f16, D, 1, p0);
      l += p0;
    }
    store<f32>(mp + 4, l);
  }
  store<u32>(mp + 8, touch); // keeps the touches (the part has 2 spare words)
}

@inline function decodeHead(desc: usize, h: i32, f16: bool): void {
  const H = w(desc, H_), Hkv = w(desc, HKV), D = w(desc, D_), K = w(desc, KB), L = w(desc, LT);
  const scale = load<f32>(desc + (<usize>SCALE << 2));
  const es: usize = f16 ? 2 : 4;
  const g = h / (H / Hkv);
  const cap = w(desc, CAP), NB = 1 << K, rowStride = w(desc, ROW), pages = p(desc, PAGES), shift = w(desc, PAGE_SHIFT);
  const q = p(desc, Q) + (<usize>h * <usize>D << 2);
  const kBase = p(desc, KP) + <usize>g * <usize>D * es, vBase = p(desc, VP) + <usize>g * <usize>D * es;
  const part = p(desc, PARTS) + <usize>h * <usize>(2 * (D + 4)) * 4, partD = part + (<usize>(D + 4) << 2);
  const xs = p(desc, SCRATCH) + (<usize>h * <usize>MAGICPIG_CHUNK << 2);

  // 1. Bucket of the (uncentered) query in every table.
  const qb = p(desc, QB) + (<usize>h * <usize>L << 2);
  hashQuery(q, p(desc, RP) + <usize>g * <usize>(K * L) * (<usize>D << 2), D, K, L, qb);

  // 2. Retrieval: ids sharing the query's bucket in >= 2 of the L tables (ids lie in [ID_LO, ID_HI)).
  const bits = p(desc, COUNTERS) + <usize>h * <usize>counterStride(cap), list = p(desc, LISTS) + (<usize>h * <usize>cap << 2);
  const w0 = w(desc, ID_LO) >> 5, w1 = (w(desc, ID_HI) + 31) >> 5;
  let n = 0;
  const mainOn = w(desc, MAIN_N) > 0, deltaOn = w(desc, DELTA_N) > 0;
  if (mainOn || deltaOn) {
    memory.fill(bits + (<usize>w0 << 3), 0, <usize>(w1 - w0) << 3);
    if (mainOn) walk(p(desc, MAIN_OFF), p(desc, MAIN_IDS), w(desc, MAIN_STRIDE), g, L, NB, qb, bits, part + (<usize>(D + 3) << 2));
    if (deltaOn) walk(p(desc, DELTA_OFF), p(desc, DELTA_IDS), w(desc, DELTA_STRIDE), g, L, NB, qb, bits, part + (<usize>(D + 3) << 2));
    n = collect(bits, w0, w1, list);
  }
  store<i32>(p(desc, STATS) + (<usize>h << 2), n);

  // 3. Sampled part: logits s_i − log(u_i + floor), u_i read from a table over cos(q, k_i − μ).
  const mu = p(desc, MU) + (<usize>g * <usize>D << 2);
  let qq = f32x4.splat(0), qm = f32x4.splat(0);
  for (let d = 0; d < D; d += 4) {
    const qv = v128.load(q + (<usize>d << 2));
    qq = f32x4.add(qq, f32x4.mul(qv, qv));
    qm = f32x4.add(qm, f32x4.mul(qv, v128.load(mu + (<usize>d << 2))));
  }
  const qNorm = Mathf.sqrt(hsum(qq)), qMu = hsum(qm);
  const knorm = p(desc, KNORM) + (<usize>g * <usize>cap << 2);
  attendChunked(q, kBase, vBase, f16, rowStride, pages, shift, D, scale, list, n, part, xs, true, qNorm, qMu, knorm, p(desc, LOGU), w(desc, LOGU_N));

  // 4. Dense part (sinks, local window, generated tokens), exact.
  attendChunked(q, kBase, vBase, f16, rowStride, pages, shift, D, scale, p(desc, DENSE_IDS), w(desc, DENSE_N), partD, xs, false, 0, 0, 0, 0, 0);

  // 5. Merge the two partials: out = Σ_parts e^{m−M}·acc / Σ_parts e^{m−M}·l (the LSE merge).
  const ms = load<f32>(part + (<usize>D << 2)), ls = load<f32>(part + (<usize>D << 2) + 4);
  const md = load<f32>(partD + (<usize>D << 2)), ld_ = load<f32>(partD + (<usize>D << 2) + 4);
  const M = max<f32>(ms, md);
  const ws: f32 = ls > 0 ? expS(ms - M) : 0, wd: f32 = ld_ > 0 ? expS(md - M) : 0;
  const den = ws * ls + wd * ld_;
  const inv: f32 = den > 0 ? 1 / den : 0;
  const out = p(desc, OUT) + (<usize>h * <usize>D << 2);
  const a = f32x4.splat(ws * inv), b = f32x4.splat(wd * inv);
  for (let d = 0; d < D; d += 4) {
    const o = <usize>d << 2;
    v128.store(out + o, f32x4.add(f32x4.mul(v128.load(part + o), a), f32x4.mul(v128.load(partD + o), b)));
  }
}

/** One MagicPIG decode step (one query token) for query heads [h0, h1); see the header. */
export function magicpigDecode(desc: usize, h0: i32, h1: i32): void {
  const f16 = w(desc, F16) != 0;
  for (let h = h0; h < h1; h++) {
    if (f16) decodeHead(desc, h, true);
    else decodeHead(desc, h, false);
  }
}
