// Sparse (gathered) attention kernels: they read only the K/V rows whose token ids are listed, so a
// decode step costs O(listed keys), not O(context).
//   attendList      softmax attention of one query over listed rows, optional per-key logit bias;
//                   writes the normalised output and its log-sum-exp (a partial to merge).
//   sparseScores    scale·q·k for a contiguous range of rows (TopK / oracle sampling need all scores).
//   magicpigDecode  MagicPIG's decode step for query heads [h0, h1) (PAPERS.md §1): hash q, walk the
//                   CSR tables counting hits (u8 counter, emit on the second hit, reset what was
//                   touched), importance-weighted attention over the sampled keys with logits
//                   s_i − log(u_i + floor), exact attention over the dense ids, then the
//                   two-partial-softmax merge by log-sum-exp.
// Rows: a cache row holds Hkv·D values in f32 or f16; callers pass the KV head's base pointer and
// the row stride in bytes. D must be a multiple of 4.

import { hsum, loadF16x4, expS } from './vector';

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

@inline function attendListAny(q: usize, k: usize, v: usize, f16: bool, rowStride: i32, D: i32, scale: f32,
                               ids: usize, bias: usize, count: i32, part: usize): void {
  resetPart(part, D);
  for (let i = 0; i < count; i++) {
    const row = <usize>load<u32>(ids + (<usize>i << 2)) * <usize>rowStride;
    let x = dot(q, k + row, f16, D) * scale;
    if (bias != 0) x += load<f32>(bias + (<usize>i << 2));
    addKey(part, v + row, f16, D, x);
  }
}

/** out (D) = Σ_i e^{x_i} v_{ids[i]} / Σ_i e^{x_i}, x_i = scale·q·k_{ids[i]} + bias[i] (bias 0 = none);
 *  lse (1) = log Σ_i e^{x_i}. `out` must have room for D + 2 floats (the online state). count = 0
 *  gives out = 0, lse = −inf. */
export function attendList(q: usize, k: usize, v: usize, f16: i32, rowStride: i32, D: i32, scale: f32,
                           ids: usize, bias: usize, count: i32, out: usize, lse: usize): void {
  if (f16 != 0) attendListAny(q, k, v, true, rowStride, D, scale, ids, bias, count, out);
  else attendListAny(q, k, v, false, rowStride, D, scale, ids, bias, count, out);
  finishPart(out, D, lse);
}

@inline function finishPart(part: usize, D: i32, lse: usize): void {
  const m = load<f32>(part + (<usize>D << 2)), l = load<f32>(part + (<usize>D << 2) + 4);
  const inv: f32 = l > 0 ? 1 / l : 0;
  for (let d = 0; d < D; d += 4) v128.store(part + (<usize>d << 2), f32x4.mul(v128.load(part + (<usize>d << 2)), f32x4.splat(inv)));
  store<f32>(lse, l > 0 ? m + Mathf.log(l) : -Infinity);
}

/** out (s1 − s0) = scale · q · k_s for rows s in [s0, s1). */
export function sparseScores(q: usize, k: usize, f16: i32, rowStride: i32, D: i32, scale: f32, s0: i32, s1: i32, out: usize): void {
  for (let s = s0; s < s1; s++) {
    const kr = k + <usize>s * <usize>rowStride;
    store<f32>(out + (<usize>(s - s0) << 2), (f16 != 0 ? dot(q, kr, true, D) : dot(q, kr, false, D)) * scale);
  }
}

// ---- MagicPIG decode ----------------------------------------------------------------------------
// Descriptor words (i32 unless noted); src/attention/magicpig-desc.ts writes the same layout.
const Q = 0, OUT = 1, KP = 2, VP = 3, F16 = 4, ROW = 5, H_ = 6, HKV = 7, D_ = 8, SCALE = 9, KB = 10, LT = 11;
const RP = 12, MU = 13, KNORM = 14, CAP = 15, MAIN_OFF = 16, MAIN_IDS = 17, MAIN_STRIDE = 18;
const DELTA_OFF = 19, DELTA_IDS = 20, DELTA_STRIDE = 21, COUNTERS = 22, LISTS = 23, LOGU = 24, LOGU_N = 25;
const DENSE_IDS = 26, DENSE_N = 27, STATS = 28, QB = 29, PARTS = 30, DELTA_N = 31, MAIN_N = 32;

@inline function w(desc: usize, i: i32): i32 { return load<i32>(desc + (<usize>i << 2)); }
@inline function p(desc: usize, i: i32): usize { return <usize>load<u32>(desc + (<usize>i << 2)); }

// Walks the query's bucket of every table; counter[id]++ and, on the second hit, appends id.
// With reset, sets every touched counter back to 0 instead.
@inline function walk(off: usize, ids: usize, stride: i32, g: i32, L: i32, NB: i32, qb: usize, cnt: usize, list: usize, nIn: i32, reset: bool): i32 {
  let n = nIn;
  for (let l = 0; l < L; l++) {
    const t = g * L + l;
    const b = load<u32>(qb + (<usize>l << 2));
    const op = off + ((<usize>t * <usize>(NB + 1) + <usize>b) << 2);
    const s = load<u32>(op), e = load<u32>(op + 4);
    const base = ids + (<usize>t * <usize>stride << 2);
    if (reset) {
      for (let i = s; i < e; i++) store<u8>(cnt + <usize>load<u32>(base + (<usize>i << 2)), 0);
    } else {
      for (let i = s; i < e; i++) {
        const id = load<u32>(base + (<usize>i << 2));
        const c = load<u8>(cnt + <usize>id) + 1;
        store<u8>(cnt + <usize>id, c);
        if (c == 2) { store<u32>(list + (<usize>n << 2), id); n++; }
      }
    }
  }
  return n;
}

@inline function decodeHead(desc: usize, h: i32, f16: bool): void {
  const H = w(desc, H_), Hkv = w(desc, HKV), D = w(desc, D_), K = w(desc, KB), L = w(desc, LT);
  const scale = load<f32>(desc + (<usize>SCALE << 2));
  const es: usize = f16 ? 2 : 4;
  const g = h / (H / Hkv);
  const cap = w(desc, CAP), NB = 1 << K, rowStride = w(desc, ROW);
  const q = p(desc, Q) + (<usize>h * <usize>D << 2);
  const kBase = p(desc, KP) + <usize>g * <usize>D * es, vBase = p(desc, VP) + <usize>g * <usize>D * es;
  const part = p(desc, PARTS) + <usize>h * <usize>(2 * (D + 4)) * 4, partD = part + (<usize>(D + 4) << 2);

  // 1. Bucket of the (uncentered) query in every table: sign bits of q·r_j.
  const qb = p(desc, QB) + (<usize>h * <usize>L << 2);
  const R = p(desc, RP) + <usize>g * <usize>(K * L) * (<usize>D << 2);
  for (let l = 0; l < L; l++) {
    let code: u32 = 0;
    for (let b = 0; b < K; b++) {
      if (dot(q, R + <usize>(l * K + b) * (<usize>D << 2), false, D) > 0) code |= <u32>1 << b;
    }
    store<u32>(qb + (<usize>l << 2), code);
  }

  // 2. Retrieval: ids sharing the query's bucket in >= 2 of the L tables.
  const cnt = p(desc, COUNTERS) + <usize>h * <usize>cap, list = p(desc, LISTS) + (<usize>h * <usize>cap << 2);
  let n = 0;
  const mainOn = w(desc, MAIN_N) > 0, deltaOn = w(desc, DELTA_N) > 0;
  if (mainOn) n = walk(p(desc, MAIN_OFF), p(desc, MAIN_IDS), w(desc, MAIN_STRIDE), g, L, NB, qb, cnt, list, n, false);
  if (deltaOn) n = walk(p(desc, DELTA_OFF), p(desc, DELTA_IDS), w(desc, DELTA_STRIDE), g, L, NB, qb, cnt, list, n, false);
  if (mainOn) walk(p(desc, MAIN_OFF), p(desc, MAIN_IDS), w(desc, MAIN_STRIDE), g, L, NB, qb, cnt, list, 0, true);
  if (deltaOn) walk(p(desc, DELTA_OFF), p(desc, DELTA_IDS), w(desc, DELTA_STRIDE), g, L, NB, qb, cnt, list, 0, true);
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
  const logU = p(desc, LOGU), T = w(desc, LOGU_N);
  resetPart(part, D);
  for (let i = 0; i < n; i++) {
    const id = <usize>load<u32>(list + (<usize>i << 2));
    const row = id * <usize>rowStride;
    const raw = dot(q, kBase + row, f16, D);
    const den = qNorm * load<f32>(knorm + (id << 2));
    let c: f32 = den > 0 ? (raw - qMu) / den : 0;
    c = min<f32>(1, max<f32>(-1, c));
    const x = (c + 1) * 0.5 * <f32>T;
    const j = min<i32>(<i32>x, T - 1);
    const f = x - <f32>j;
    const a = load<f32>(logU + (<usize>j << 2)), bb = load<f32>(logU + (<usize>(j + 1) << 2));
    addKey(part, vBase + row, f16, D, raw * scale - (a + f * (bb - a)));
  }

  // 4. Dense part (sinks, local window, generated tokens), exact.
  attendListAny(q, kBase, vBase, f16, rowStride, D, scale, p(desc, DENSE_IDS), 0, w(desc, DENSE_N), partD);

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
