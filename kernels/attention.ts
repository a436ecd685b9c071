// Causal attention over a KV cache with an online softmax (one pass over the keys, no scores buffer;
// Milakov & Gimelshein 2018 / FlashAttention): running max m, running sum l, and the output row
// itself as the accumulator, rescaled by e^(m_old − m_new) whenever a block raises the max.
//   q   (n, H, D) f32,  qPos (n) i32
//   k,v (S, Hkv, D) f32 or f16 (cacheF16 != 0), contiguous (pages = 0) or paged: row s lies at
//       k + pages[s >> pageShift] + (s & (2^pageShift − 1))·rowBytes (u32 byte offsets; K and V pools
//       share one layout, so one table serves both)
//   out (n, H, D) f32
// Token t attends to rows s <= qPos[t], s < S; query head h reads KV head h / (H / Hkv).
// Keys are processed eight at a time (D % 16 == 0; otherwise four, then one): eight dot products,
// two vector exps, one pass over V. With an f16 cache two query heads of a GQA group share each
// K/V load (attendPair).
// Several queries (a prefill chunk, a speculative verification; `state` != 0) walk the keys in tiles,
// the tile loop outermost (flash attention): each K/V tile is read from memory once for every query
// of the chunk and every head of the GQA group, and an f16 tile is widened to f32 once, into a
// buffer after the state (attentionStateBytes in src/kernels/types.ts), which all of them then read.

import { expS, expV, hmax, hsum, hsum4, loadF16, loadF16x4 } from './vector';

@inline function loadKV(p: usize, f16: bool): v128 {
  return f16 ? loadF16x4(p) : v128.load(p);
}

/** The i-th group of four values (i = 0..3, a constant after inlining) of a K/V row at p, loaded
 *  with a constant offset instead of an address add. f32 rows: the values. f16 rows: the values
 *  × 2^-112 (f16Bits without its rebias multiply); the caller folds 2^112 into its other factor. */
@inline function kvAt(p: usize, f16: bool, i: i32): v128 {
  if (f16) {
    switch (i) {
      case 0: return f16Bits(v128.load16x4_s(p, 0)); case 1: return f16Bits(v128.load16x4_s(p, 8));
      case 2: return f16Bits(v128.load16x4_s(p, 16)); default: return f16Bits(v128.load16x4_s(p, 24));
    }
  }
  switch (i) {
    case 0: return v128.load(p, 0); case 1: return v128.load(p, 16);
    case 2: return v128.load(p, 32); default: return v128.load(p, 48);
  }
}

/** Four sign-extended f16 (one per i32 lane) as f32 bit patterns worth value × 2^-112 (loadF16x4
 *  before its × 2^112 rebias): exact, normal f32 for every normal f16. */
@inline function f16Bits(h: v128): v128 {
  return v128.and(i32x4.shl(h, 13), i32x4.splat(<i32>0x8fffe000));
}

// Online-softmax state (running max m, running sum l) of up to GROUP query heads that share one KV
// head. Wasm globals, not memory: every thread has its own instance, and kernels keep no memory.
const GROUP = 8;
let m0: f32 = 0, m1: f32 = 0, m2: f32 = 0, m3: f32 = 0, m4: f32 = 0, m5: f32 = 0, m6: f32 = 0, m7: f32 = 0;
let l0: f32 = 0, l1: f32 = 0, l2: f32 = 0, l3: f32 = 0, l4: f32 = 0, l5: f32 = 0, l6: f32 = 0, l7: f32 = 0;

function getM(j: i32): f32 {
  switch (j) { case 0: return m0; case 1: return m1; case 2: return m2; case 3: return m3;
               case 4: return m4; case 5: return m5; case 6: return m6; default: return m7; }
}
function getL(j: i32): f32 {
  switch (j) { case 0: return l0; case 1: return l1; case 2: return l2; case 3: return l3;
               case 4: return l4; case 5: return l5; case 6: return l6; default: return l7; }
}
function setML(j: i32, m: f32, l: f32): void {
  switch (j) {
    case 0: m0 = m; l0 = l; break; case 1: m1 = m; l1 = l; break;
    case 2: m2 = m; l2 = l; break; case 3: m3 = m; l3 = l; break;
    case 4: m4 = m; l4 = l; break; case 5: m5 = m; l5 = l; break;
    case 6: m6 = m; l6 = l; break; default: m7 = m; l7 = l; break;
  }
}

/** Keys [s0, s1) for one query head whose state sits in slot j (out row op is the accumulator).
 *  s0 is a multiple of 4 and only the last tile has s1 % 4 != 0, so the arithmetic is the same
 *  as one pass over [0, limit) for this head. */
@inline function attendTile(qp: usize, kp: usize, vp: usize, op: usize, kvRow: usize, s0: i32, s1: i32, D: i32,
                            scale: f32, f16: bool, j: i32): void {
  const es: usize = f16 ? 2 : 4;
  const D4 = D & ~3;
  let m = getM(j), l = getL(j);
  let s = s0;
  // Blocks of 8 keys (two score vectors) halve the per-key cost of the softmax bookkeeping (max,
  // exps, sums) and of loading, rescaling and storing the output row. For D % 16 == 0 the loops
  // over d step 16 with constant load offsets (kvAt), so most loads need no address arithmetic.
  if ((D & 15) == 0) {
    const kStep = <usize>16 * es;
    // f16: q × 2^100 and scores × 2^12 restore the 2^112 that kvAt leaves out (powers of two: exact
    // for |q| < 2^28); p × 2^112 likewise for V.
    const qf = f32x4.splat(f16 ? reinterpret<f32>(<u32>(127 + 100) << 23) : 1);
    const sv = f32x4.splat(f16 ? scale * reinterpret<f32>(<u32>(127 + 12) << 23) : scale);
    const pf: f32 = f16 ? reinterpret<f32>(<u32>(127 + 112) << 23) : 1;
    for (; s + 8 <= s1; s += 8) {
      let r0 = kp + <usize>s * kvRow, r1 = r0 + kvRow, r2 = r1 + kvRow, r3 = r2 + kvRow;
      let r4 = r3 + kvRow, r5 = r4 + kvRow, r6 = r5 + kvRow, r7 = r6 + kvRow;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let qb = qp, qe = qp + (<usize>D << 2); qb < qe; qb += 64) {
        const qv0 = f16 ? f32x4.mul(v128.load(qb, 0), qf) : v128.load(qb, 0);
        a0 = f32x4.add(a0, f32x4.mul(qv0, kvAt(r0, f16, 0)));
        a1 = f32x4.add(a1, f32x4.mul(qv0, kvAt(r1, f16, 0)));
        a2 = f32x4.add(a2, f32x4.mul(qv0, kvAt(r2, f16, 0)));
        a3 = f32x4.add(a3, f32x4.mul(qv0, kvAt(r3, f16, 0)));
        a4 = f32x4.add(a4, f32x4.mul(qv0, kvAt(r4, f16, 0)));
        a5 = f32x4.add(a5, f32x4.mul(qv0, kvAt(r5, f16, 0)));
        a6 = f32x4.add(a6, f32x4.mul(qv0, kvAt(r6, f16, 0)));
        a7 = f32x4.add(a7, f32x4.mul(qv0, kvAt(r7, f16, 0)));
        const qv1 = f16 ? f32x4.mul(v128.load(qb, 16), qf) : v128.load(qb, 16);
        a0 = f32x4.add(a0, f32x4.mul(qv1, kvAt(r0, f16, 1)));
        a1 = f32x4.add(a1, f32x4.mul(qv1, kvAt(r1, f16, 1)));
        a2 = f32x4.add(a2, f32x4.mul(qv1, kvAt(r2, f16, 1)));
        a3 = f32x4.add(a3, f32x4.mul(qv1, kvAt(r3, f16, 1)));
        a4 = f32x4.add(a4, f32x4.mul(qv1, kvAt(r4, f16, 1)));
        a5 = f32x4.add(a5, f32x4.mul(qv1, kvAt(r5, f16, 1)));
        a6 = f32x4.add(a6, f32x4.mul(qv1, kvAt(r6, f16, 1)));
        a7 = f32x4.add(a7, f32x4.mul(qv1, kvAt(r7, f16, 1)));
        const qv2 = f16 ? f32x4.mul(v128.load(qb, 32), qf) : v128.load(qb, 32);
        a0 = f32x4.add(a0, f32x4.mul(qv2, kvAt(r0, f16, 2)));
        a1 = f32x4.add(a1, f32x4.mul(qv2, kvAt(r1, f16, 2)));
        a2 = f32x4.add(a2, f32x4.mul(qv2, kvAt(r2, f16, 2)));
        a3 = f32x4.add(a3, f32x4.mul(qv2, kvAt(r3, f16, 2)));
        a4 = f32x4.add(a4, f32x4.mul(qv2, kvAt(r4, f16, 2)));
        a5 = f32x4.add(a5, f32x4.mul(qv2, kvAt(r5, f16, 2)));
        a6 = f32x4.add(a6, f32x4.mul(qv2, kvAt(r6, f16, 2)));
        a7 = f32x4.add(a7, f32x4.mul(qv2, kvAt(r7, f16, 2)));
        const qv3 = f16 ? f32x4.mul(v128.load(qb, 48), qf) : v128.load(qb, 48);
        a0 = f32x4.add(a0, f32x4.mul(qv3, kvAt(r0, f16, 3)));
        a1 = f32x4.add(a1, f32x4.mul(qv3, kvAt(r1, f16, 3)));
        a2 = f32x4.add(a2, f32x4.mul(qv3, kvAt(r2, f16, 3)));
        a3 = f32x4.add(a3, f32x4.mul(qv3, kvAt(r3, f16, 3)));
        a4 = f32x4.add(a4, f32x4.mul(qv3, kvAt(r4, f16, 3)));
        a5 = f32x4.add(a5, f32x4.mul(qv3, kvAt(r5, f16, 3)));
        a6 = f32x4.add(a6, f32x4.mul(qv3, kvAt(r6, f16, 3)));
        a7 = f32x4.add(a7, f32x4.mul(qv3, kvAt(r7, f16, 3)));
        r0 += kStep; r1 += kStep; r2 += kStep; r3 += kStep; r4 += kStep; r5 += kStep; r6 += kStep; r7 += kStep;
      }
      const sa = f32x4.mul(hsum4(a0, a1, a2, a3), sv), sb = f32x4.mul(hsum4(a4, a5, a6, a7), sv);
      const mNew = max<f32>(m, hmax(f32x4.max(sa, sb)));
      const corr = mNew == m ? <f32>1 : expS(m - mNew); // 0 on the first block (m = −inf)
      const mv = f32x4.splat(mNew);
      const pa = expV(f32x4.sub(sa, mv)), pb = expV(f32x4.sub(sb, mv));
      l = l * corr + hsum(f32x4.add(pa, pb));
      m = mNew;
      if (corr != 1) { // the max rose: rescale the accumulator (rare once the max has settled)
        const cv = f32x4.splat(corr);
        for (let od = op, oe = op + (<usize>D << 2); od < oe; od += 16) v128.store(od, f32x4.mul(v128.load(od), cv));
      }
      const qa = f16 ? f32x4.mul(pa, f32x4.splat(pf)) : pa, qb = f16 ? f32x4.mul(pb, f32x4.splat(pf)) : pb;
      const p0 = f32x4.splat(f32x4.extract_lane(qa, 0)), p1 = f32x4.splat(f32x4.extract_lane(qa, 1));
      const p2 = f32x4.splat(f32x4.extract_lane(qa, 2)), p3 = f32x4.splat(f32x4.extract_lane(qa, 3));
      const p4 = f32x4.splat(f32x4.extract_lane(qb, 0)), p5 = f32x4.splat(f32x4.extract_lane(qb, 1));
      const p6 = f32x4.splat(f32x4.extract_lane(qb, 2)), p7 = f32x4.splat(f32x4.extract_lane(qb, 3));
      r0 = vp + <usize>s * kvRow; r1 = r0 + kvRow; r2 = r1 + kvRow; r3 = r2 + kvRow;
      r4 = r3 + kvRow; r5 = r4 + kvRow; r6 = r5 + kvRow; r7 = r6 + kvRow;
      for (let od = op, oe = op + (<usize>D << 2); od < oe; od += 64) {
        let acc0 = v128.load(od, 0);
        acc0 = f32x4.add(acc0, f32x4.mul(p0, kvAt(r0, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p1, kvAt(r1, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p2, kvAt(r2, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p3, kvAt(r3, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p4, kvAt(r4, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p5, kvAt(r5, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p6, kvAt(r6, f16, 0)));
        acc0 = f32x4.add(acc0, f32x4.mul(p7, kvAt(r7, f16, 0)));
        v128.store(od, acc0, 0);
        let acc1 = v128.load(od, 16);
        acc1 = f32x4.add(acc1, f32x4.mul(p0, kvAt(r0, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p1, kvAt(r1, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p2, kvAt(r2, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p3, kvAt(r3, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p4, kvAt(r4, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p5, kvAt(r5, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p6, kvAt(r6, f16, 1)));
        acc1 = f32x4.add(acc1, f32x4.mul(p7, kvAt(r7, f16, 1)));
        v128.store(od, acc1, 16);
        let acc2 = v128.load(od, 32);
        acc2 = f32x4.add(acc2, f32x4.mul(p0, kvAt(r0, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p1, kvAt(r1, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p2, kvAt(r2, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p3, kvAt(r3, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p4, kvAt(r4, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p5, kvAt(r5, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p6, kvAt(r6, f16, 2)));
        acc2 = f32x4.add(acc2, f32x4.mul(p7, kvAt(r7, f16, 2)));
        v128.store(od, acc2, 32);
        let acc3 = v128.load(od, 48);
        acc3 = f32x4.add(acc3, f32x4.mul(p0, kvAt(r0, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p1, kvAt(r1, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p2, kvAt(r2, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p3, kvAt(r3, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p4, kvAt(r4, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p5, kvAt(r5, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p6, kvAt(r6, f16, 3)));
        acc3 = f32x4.add(acc3, f32x4.mul(p7, kvAt(r7, f16, 3)));
        v128.store(od, acc3, 48);
        r0 += kStep; r1 += kStep; r2 += kStep; r3 += kStep; r4 += kStep; r5 += kStep; r6 += kStep; r7 += kStep;
      }
    }
  }
  for (; s + 4 <= s1; s += 4) {
    const k0 = kp + <usize>s * kvRow, k1 = k0 + kvRow, k2 = k1 + kvRow, k3 = k2 + kvRow;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let d = 0; d < D4; d += 4) {
      const qv = v128.load(qp + (<usize>d << 2)), o = <usize>d * es;
      a0 = f32x4.add(a0, f32x4.mul(qv, loadKV(k0 + o, f16)));
      a1 = f32x4.add(a1, f32x4.mul(qv, loadKV(k1 + o, f16)));
      a2 = f32x4.add(a2, f32x4.mul(qv, loadKV(k2 + o, f16)));
      a3 = f32x4.add(a3, f32x4.mul(qv, loadKV(k3 + o, f16)));
    }
    let sc = hsum4(a0, a1, a2, a3);
    for (let d = D4; d < D; d++) {
      const qs = load<f32>(qp + (<usize>d << 2)), o = <usize>d * es;
      let t = f32x4.splat(0);
      t = f32x4.replace_lane(t, 0, qs * loadScalar(k0 + o, f16));
      t = f32x4.replace_lane(t, 1, qs * loadScalar(k1 + o, f16));
      t = f32x4.replace_lane(t, 2, qs * loadScalar(k2 + o, f16));
      t = f32x4.replace_lane(t, 3, qs * loadScalar(k3 + o, f16));
      sc = f32x4.add(sc, t);
    }
    sc = f32x4.mul(sc, f32x4.splat(scale));
    const mNew = max<f32>(m, hmax(sc));
    const corr = expS(m - mNew); // 0 on the first block (m = −inf)
    const p = expV(f32x4.sub(sc, f32x4.splat(mNew)));
    l = l * corr + hsum(p);
    m = mNew;
    const cv = f32x4.splat(corr);
    const p0 = f32x4.splat(f32x4.extract_lane(p, 0)), p1 = f32x4.splat(f32x4.extract_lane(p, 1));
    const p2 = f32x4.splat(f32x4.extract_lane(p, 2)), p3 = f32x4.splat(f32x4.extract_lane(p, 3));
    const v0 = vp + <usize>s * kvRow, v1 = v0 + kvRow, v2 = v1 + kvRow, v3 = v2 + kvRow;
    for (let d = 0; d < D4; d += 4) {
      const od = op + (<usize>d << 2), o = <usize>d * es;
      let acc = f32x4.mul(v128.load(od), cv);
      acc = f32x4.add(acc, f32x4.mul(p0, loadKV(v0 + o, f16)));
      acc = f32x4.add(acc, f32x4.mul(p1, loadKV(v1 + o, f16)));
      acc = f32x4.add(acc, f32x4.mul(p2, loadKV(v2 + o, f16)));
      acc = f32x4.add(acc, f32x4.mul(p3, loadKV(v3 + o, f16)));
      v128.store(od, acc);
    }
    for (let d = D4; d < D; d++) {
      const od = op + (<usize>d << 2), o = <usize>d * es;
      store<f32>(od, load<f32>(od) * corr
        + f32x4.extract_lane(p, 0) * loadScalar(v0 + o, f16) + f32x4.extract_lane(p, 1) * loadScalar(v1 + o, f16)
        + f32x4.extract_lane(p, 2) * loadScalar(v2 + o, f16) + f32x4.extract_lane(p, 3) * loadScalar(v3 + o, f16));
    }
  }
  // Remaining 1..3 keys one at a time (never reading rows at or past `limit`).
  for (; s < s1; s++) {
    const k0 = kp + <usize>s * kvRow, v0 = vp + <usize>s * kvRow;
    let a = f32x4.splat(0);
    for (let d = 0; d < D4; d += 4) a = f32x4.add(a, f32x4.mul(v128.load(qp + (<usize>d << 2)), loadKV(k0 + <usize>d * es, f16)));
    let sc = hsum(a);
    for (let d = D4; d < D; d++) sc += load<f32>(qp + (<usize>d << 2)) * loadScalar(k0 + <usize>d * es, f16);
    sc *= scale;
    const mNew = max<f32>(m, sc);
    const corr = expS(m - mNew), p = expS(sc - mNew);
    l = l * corr + p;
    m = mNew;
    const cv = f32x4.splat(corr), pv = f32x4.splat(p);
    for (let d = 0; d < D4; d += 4) {
      const od = op + (<usize>d << 2);
      v128.store(od, f32x4.add(f32x4.mul(v128.load(od), cv), f32x4.mul(pv, loadKV(v0 + <usize>d * es, f16))));
    }
    for (let d = D4; d < D; d++) {
      const od = op + (<usize>d << 2);
      store<f32>(od, load<f32>(od) * corr + p * loadScalar(v0 + <usize>d * es, f16));
    }
  }
  setML(j, m, l);
}

// Head B's scores from pairScores (a wasm global: AssemblyScript functions return one value).
let pairScoreB: v128 = f32x4.splat(0);

/** Scores (× sv) of the 4 keys at rows r0, r0 + kvRow, … for two query heads qa, qb: head A's are
 *  returned, head B's left in pairScoreB. Each K vector is loaded and widened once for both. */
@inline function pairScores(qa: usize, qb: usize, r0: usize, kvRow: usize, D: i32, f16: bool, qf: v128, sv: v128, kStep: usize): v128 {
  let r1 = r0 + kvRow, r2 = r1 + kvRow, r3 = r2 + kvRow;
  let x0 = f32x4.splat(0), x1 = f32x4.splat(0), x2 = f32x4.splat(0), x3 = f32x4.splat(0);
  let y0 = f32x4.splat(0), y1 = f32x4.splat(0), y2 = f32x4.splat(0), y3 = f32x4.splat(0);
  for (let d: usize = 0, dEnd = <usize>D << 2; d < dEnd; d += 64) {
      const a0 = f16 ? f32x4.mul(v128.load(qa + d, 0), qf) : v128.load(qa + d, 0);
      const b0 = f16 ? f32x4.mul(v128.load(qb + d, 0), qf) : v128.load(qb + d, 0);
      { const kv = kvAt(r0, f16, 0); x0 = f32x4.add(x0, f32x4.mul(a0, kv)); y0 = f32x4.add(y0, f32x4.mul(b0, kv)); }
      { const kv = kvAt(r1, f16, 0); x1 = f32x4.add(x1, f32x4.mul(a0, kv)); y1 = f32x4.add(y1, f32x4.mul(b0, kv)); }
      { const kv = kvAt(r2, f16, 0); x2 = f32x4.add(x2, f32x4.mul(a0, kv)); y2 = f32x4.add(y2, f32x4.mul(b0, kv)); }
      { const kv = kvAt(r3, f16, 0); x3 = f32x4.add(x3, f32x4.mul(a0, kv)); y3 = f32x4.add(y3, f32x4.mul(b0, kv)); }
      const a1 = f16 ? f32x4.mul(v128.load(qa + d, 16), qf) : v128.load(qa + d, 16);
      const b1 = f16 ? f32x4.mul(v128.load(qb + d, 16), qf) : v128.load(qb + d, 16);
      { const kv = kvAt(r0, f16, 1); x0 = f32x4.add(x0, f32x4.mul(a1, kv)); y0 = f32x4.add(y0, f32x4.mul(b1, kv)); }
      { const kv = kvAt(r1, f16, 1); x1 = f32x4.add(x1, f32x4.mul(a1, kv)); y1 = f32x4.add(y1, f32x4.mul(b1, kv)); }
      { const kv = kvAt(r2, f16, 1); x2 = f32x4.add(x2, f32x4.mul(a1, kv)); y2 = f32x4.add(y2, f32x4.mul(b1, kv)); }
      { const kv = kvAt(r3, f16, 1); x3 = f32x4.add(x3, f32x4.mul(a1, kv)); y3 = f32x4.add(y3, f32x4.mul(b1, kv)); }
      const a2 = f16 ? f32x4.mul(v128.load(qa + d, 32), qf) : v128.load(qa + d, 32);
      const b2 = f16 ? f32x4.mul(v128.load(qb + d, 32), qf) : v128.load(qb + d, 32);
      { const kv = kvAt(r0, f16, 2); x0 = f32x4.add(x0, f32x4.mul(a2, kv)); y0 = f32x4.add(y0, f32x4.mul(b2, kv)); }
      { const kv = kvAt(r1, f16, 2); x1 = f32x4.add(x1, f32x4.mul(a2, kv)); y1 = f32x4.add(y1, f32x4.mul(b2, kv)); }
      { const kv = kvAt(r2, f16, 2); x2 = f32x4.add(x2, f32x4.mul(a2, kv)); y2 = f32x4.add(y2, f32x4.mul(b2, kv)); }
      { const kv = kvAt(r3, f16, 2); x3 = f32x4.add(x3, f32x4.mul(a2, kv)); y3 = f32x4.add(y3, f32x4.mul(b2, kv)); }
      const a3 = f16 ? f32x4.mul(v128.load(qa + d, 48), qf) : v128.load(qa + d, 48);
      const b3 = f16 ? f32x4.mul(v128.load(qb + d, 48), qf) : v128.load(qb + d, 48);
      { const kv = kvAt(r0, f16, 3); x0 = f32x4.add(x0, f32x4.mul(a3, kv)); y0 = f32x4.add(y0, f32x4.mul(b3, kv)); }
      { const kv = kvAt(r1, f16, 3); x1 = f32x4.add(x1, f32x4.mul(a3, kv)); y1 = f32x4.add(y1, f32x4.mul(b3, kv)); }
      { const kv = kvAt(r2, f16, 3); x2 = f32x4.add(x2, f32x4.mul(a3, kv)); y2 = f32x4.add(y2, f32x4.mul(b3, kv)); }
      { const kv = kvAt(r3, f16, 3); x3 = f32x4.add(x3, f32x4.mul(a3, kv)); y3 = f32x4.add(y3, f32x4.mul(b3, kv)); }
    r0 += kStep; r1 += kStep; r2 += kStep; r3 += kStep;
  }
  pairScoreB = f32x4.mul(hsum4(y0, y1, y2, y3), sv);
  return f32x4.mul(hsum4(x0, x1, x2, x3), sv);
}

/** Adds the 4 V rows at r0, r0 + kvRow, … weighted by wA's lanes into out row oa and by wB's into ob. */
@inline function pairValues(oa: usize, ob: usize, r0: usize, kvRow: usize, D: i32, f16: bool, wA: v128, wB: v128, kStep: usize): void {
  let r1 = r0 + kvRow, r2 = r1 + kvRow, r3 = r2 + kvRow;
  const pA0 = f32x4.splat(f32x4.extract_lane(wA, 0)), pA1 = f32x4.splat(f32x4.extract_lane(wA, 1));
  const pA2 = f32x4.splat(f32x4.extract_lane(wA, 2)), pA3 = f32x4.splat(f32x4.extract_lane(wA, 3));
  const pB0 = f32x4.splat(f32x4.extract_lane(wB, 0)), pB1 = f32x4.splat(f32x4.extract_lane(wB, 1));
  const pB2 = f32x4.splat(f32x4.extract_lane(wB, 2)), pB3 = f32x4.splat(f32x4.extract_lane(wB, 3));
  for (let d: usize = 0, dEnd = <usize>D << 2; d < dEnd; d += 64) {
      let u0 = v128.load(oa + d, 0), t0 = v128.load(ob + d, 0);
      { const kv = kvAt(r0, f16, 0); u0 = f32x4.add(u0, f32x4.mul(pA0, kv)); t0 = f32x4.add(t0, f32x4.mul(pB0, kv)); }
      { const kv = kvAt(r1, f16, 0); u0 = f32x4.add(u0, f32x4.mul(pA1, kv)); t0 = f32x4.add(t0, f32x4.mul(pB1, kv)); }
      { const kv = kvAt(r2, f16, 0); u0 = f32x4.add(u0, f32x4.mul(pA2, kv)); t0 = f32x4.add(t0, f32x4.mul(pB2, kv)); }
      { const kv = kvAt(r3, f16, 0); u0 = f32x4.add(u0, f32x4.mul(pA3, kv)); t0 = f32x4.add(t0, f32x4.mul(pB3, kv)); }
      v128.store(oa + d, u0, 0); v128.store(ob + d, t0, 0);
      let u1 = v128.load(oa + d, 16), t1 = v128.load(ob + d, 16);
      { const kv = kvAt(r0, f16, 1); u1 = f32x4.add(u1, f32x4.mul(pA0, kv)); t1 = f32x4.add(t1, f32x4.mul(pB0, kv)); }
      { const kv = kvAt(r1, f16, 1); u1 = f32x4.add(u1, f32x4.mul(pA1, kv)); t1 = f32x4.add(t1, f32x4.mul(pB1, kv)); }
      { const kv = kvAt(r2, f16, 1); u1 = f32x4.add(u1, f32x4.mul(pA2, kv)); t1 = f32x4.add(t1, f32x4.mul(pB2, kv)); }
      { const kv = kvAt(r3, f16, 1); u1 = f32x4.add(u1, f32x4.mul(pA3, kv)); t1 = f32x4.add(t1, f32x4.mul(pB3, kv)); }
      v128.store(oa + d, u1, 16); v128.store(ob + d, t1, 16);
      let u2 = v128.load(oa + d, 32), t2 = v128.load(ob + d, 32);
      { const kv = kvAt(r0, f16, 2); u2 = f32x4.add(u2, f32x4.mul(pA0, kv)); t2 = f32x4.add(t2, f32x4.mul(pB0, kv)); }
      { const kv = kvAt(r1, f16, 2); u2 = f32x4.add(u2, f32x4.mul(pA1, kv)); t2 = f32x4.add(t2, f32x4.mul(pB1, kv)); }
      { const kv = kvAt(r2, f16, 2); u2 = f32x4.add(u2, f32x4.mul(pA2, kv)); t2 = f32x4.add(t2, f32x4.mul(pB2, kv)); }
      { const kv = kvAt(r3, f16, 2); u2 = f32x4.add(u2, f32x4.mul(pA3, kv)); t2 = f32x4.add(t2, f32x4.mul(pB3, kv)); }
      v128.store(oa + d, u2, 32); v128.store(ob + d, t2, 32);
      let u3 = v128.load(oa + d, 48), t3 = v128.load(ob + d, 48);
      { const kv = kvAt(r0, f16, 3); u3 = f32x4.add(u3, f32x4.mul(pA0, kv)); t3 = f32x4.add(t3, f32x4.mul(pB0, kv)); }
      { const kv = kvAt(r1, f16, 3); u3 = f32x4.add(u3, f32x4.mul(pA1, kv)); t3 = f32x4.add(t3, f32x4.mul(pB1, kv)); }
      { const kv = kvAt(r2, f16, 3); u3 = f32x4.add(u3, f32x4.mul(pA2, kv)); t3 = f32x4.add(t3, f32x4.mul(pB2, kv)); }
      { const kv = kvAt(r3, f16, 3); u3 = f32x4.add(u3, f32x4.mul(pA3, kv)); t3 = f32x4.add(t3, f32x4.mul(pB3, kv)); }
      v128.store(oa + d, u3, 48); v128.store(ob + d, t3, 48);
    r0 += kStep; r1 += kStep; r2 += kStep; r3 += kStep;
  }
}

/** Two query heads (state slots j and j + 1, rows qa/qb, out rows oa/ob) over the whole 8-key blocks
 *  of [s0, s1), for D % 16 == 0: each K/V vector is loaded and widened once for both heads.
 *  Each block is two passes of 4 keys, which keeps the live vectors within the 16 SIMD registers.
 *  Returns where the blocks stopped; attendTile does the rest per head with the same arithmetic. */
@inline function attendPair(qa: usize, qb: usize, kp: usize, vp: usize, oa: usize, ob: usize, kvRow: usize,
                            s0: i32, s1: i32, D: i32, scale: f32, f16: bool, j: i32): i32 {
  const es: usize = f16 ? 2 : 4;
  const kStep = <usize>16 * es;
  const qf = f32x4.splat(f16 ? reinterpret<f32>(<u32>(127 + 100) << 23) : 1); // see attendTile
  const sv = f32x4.splat(f16 ? scale * reinterpret<f32>(<u32>(127 + 12) << 23) : scale);
  const pf = f32x4.splat(f16 ? reinterpret<f32>(<u32>(127 + 112) << 23) : 1);
  let mA = getM(j), lA = getL(j), mB = getM(j + 1), lB = getL(j + 1);
  let s = s0;
  for (; s + 8 <= s1; s += 8) {
    const sA0 = pairScores(qa, qb, kp + <usize>s * kvRow, kvRow, D, f16, qf, sv, kStep), sB0 = pairScoreB;
    const sA1 = pairScores(qa, qb, kp + <usize>(s + 4) * kvRow, kvRow, D, f16, qf, sv, kStep), sB1 = pairScoreB;
    const mNA = max<f32>(mA, hmax(f32x4.max(sA0, sA1)));
    if (mNA != mA) { // the max rose: rescale the accumulator
      const c = expS(mA - mNA), cv = f32x4.splat(c);
      lA *= c;
      for (let od = oa, oe = oa + (<usize>D << 2); od < oe; od += 16) v128.store(od, f32x4.mul(v128.load(od), cv));
      mA = mNA;
    }
    const eA0 = expV(f32x4.sub(sA0, f32x4.splat(mA))), eA1 = expV(f32x4.sub(sA1, f32x4.splat(mA)));
    lA += hsum(f32x4.add(eA0, eA1));
    const wA0 = f16 ? f32x4.mul(eA0, pf) : eA0, wA1 = f16 ? f32x4.mul(eA1, pf) : eA1;
    const mNB = max<f32>(mB, hmax(f32x4.max(sB0, sB1)));
    if (mNB != mB) { // the max rose: rescale the accumulator
      const c = expS(mB - mNB), cv = f32x4.splat(c);
      lB *= c;
      for (let od = ob, oe = ob + (<usize>D << 2); od < oe; od += 16) v128.store(od, f32x4.mul(v128.load(od), cv));
      mB = mNB;
    }
    const eB0 = expV(f32x4.sub(sB0, f32x4.splat(mB))), eB1 = expV(f32x4.sub(sB1, f32x4.splat(mB)));
    lB += hsum(f32x4.add(eB0, eB1));
    const wB0 = f16 ? f32x4.mul(eB0, pf) : eB0, wB1 = f16 ? f32x4.mul(eB1, pf) : eB1;
    pairValues(oa, ob, vp + <usize>s * kvRow, kvRow, D, f16, wA0, wB0, kStep);
    pairValues(oa, ob, vp + <usize>(s + 4) * kvRow, kvRow, D, f16, wA1, wB1, kStep);
  }
  setML(j, mA, lA);
  setML(j + 1, mB, lB);
  return s;
}

/** Bytes of one f32 K+V tile buffer, 2 · tile · D · 4, where tile · D ≤ 2048 unless tile is 8 (see
 *  attentionAny). Mirrored by attentionStateBytes in src/kernels/types.ts. */
@inline function tileBufferBytes(D: i32): usize {
  return <usize>max<i32>(16384, 64 * D);
}

/** The f32 tile buffer of the slice starting at head h0: after the (n, H, 2) f32 state, 16-byte aligned. */
@inline function tileBuffer(state: usize, n: i32, H: i32, D: i32, h0: i32): usize {
  return ((state + (<usize>n * <usize>H << 3) + 15) & ~(<usize>15)) + <usize>h0 * tileBufferBytes(D);
}

/** dst (rows, D) f32 = the D f16 values at src, src + stride, … (one KV head's part of each row). */
@inline function widenRows(src: usize, stride: usize, dst: usize, rows: i32, D: i32): void {
  const D4 = D & ~3;
  for (let r = 0; r < rows; r++) {
    let d = 0;
    for (; d < D4; d += 4) v128.store(dst + (<usize>d << 2), loadF16x4(src + (<usize>d << 1)));
    for (; d < D; d++) store<f32>(dst + (<usize>d << 2), loadF16(src + (<usize>d << 1)));
    src += stride; dst += <usize>D << 2;
  }
}

/** out row op /= l (the softmax denominator); an empty key range leaves the zeros. */
@inline function finishHead(op: usize, D: i32, l: f32): void {
  if (l == 0) return;
  const D4 = D & ~3;
  const inv = f32x4.splat(1.0 / l);
  let d = 0;
  for (; d < D4; d += 4) v128.store(op + (<usize>d << 2), f32x4.mul(v128.load(op + (<usize>d << 2)), inv));
  for (; d < D; d++) store<f32>(op + (<usize>d << 2), load<f32>(op + (<usize>d << 2)) / l);
}

@inline function loadScalar(p: usize, f16: bool): f32 {
  return f16 ? loadF16(p) : load<f32>(p);
}

/** Base address from which row s of the page holding key s0 lies at base + s·kvRow (tiles never
 *  cross a page; the subtraction wraps like the addition it undoes). */
@inline function pageBase(p: usize, pages: usize, shift: i32, s0: i32, kvRow: usize): usize {
  if (pages == 0) return p;
  const first = s0 & ~((1 << shift) - 1);
  return p + <usize>load<u32>(pages + (<usize>(s0 >> shift) << 2)) - <usize>first * kvRow;
}

/** Keys [s0, s1) for the `cnt` query heads whose q rows start at q + qo (state slots 0 … cnt−1,
 *  out rows the accumulators), all reading the K/V tile at kb/vb. */
@inline function tileHeads(q: usize, out: usize, qo: usize, kb: usize, vb: usize, kvRow: usize, s0: i32, s1: i32,
                           D: i32, scale: f32, f16: bool, cnt: i32): void {
  const headBytes = <usize>D << 2;
  let j = 0;
  // f16: pairs of heads share the K/V loads and widening of the 8-key blocks (measured ~8% faster;
  // for an f32 cache the extra register pressure made it ~8% slower).
  if (f16 && (D & 15) == 0) {
    for (; j + 2 <= cnt; j += 2) {
      const ha = qo + <usize>j * headBytes, hb = ha + headBytes;
      const sEnd = attendPair(q + ha, q + hb, kb, vb, out + ha, out + hb, kvRow, s0, s1, D, scale, f16, j);
      attendTile(q + ha, kb, vb, out + ha, kvRow, sEnd, s1, D, scale, f16, j);
      attendTile(q + hb, kb, vb, out + hb, kvRow, sEnd, s1, D, scale, f16, j + 1);
    }
  }
  for (; j < cnt; j++) {
    const hq = qo + <usize>j * headBytes;
    attendTile(q + hq, kb, vb, out + hq, kvRow, s0, s1, D, scale, f16, j);
  }
}

/** One f32 K/V tile (rows [s0, sEnd) at kb/vb + s·row) for every query of the chunk and the `cnt`
 *  heads from h of one GQA group, their softmax state in memory between tiles. Not inlined: the f32
 *  and the f16 cache (whose tiles arrive widened) run this same code. */
function tileQueries(q: usize, qPos: usize, out: usize, state: usize, kb: usize, vb: usize, row: usize, s0: i32, sEnd: i32,
                     n: i32, S: i32, H: i32, h: i32, cnt: i32, D: i32, scale: f32): void {
  const headBytes = <usize>D << 2;
  for (let t = 0; t < n; t++) {
    const limit = min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1);
    if (limit <= s0) continue;
    const sp = state + ((<usize>t * <usize>H + <usize>h) << 3);
    for (let j = 0; j < cnt; j++) setML(j, load<f32>(sp + (<usize>j << 3)), load<f32>(sp + (<usize>j << 3), 4));
    tileHeads(q, out, (<usize>t * <usize>H + <usize>h) * headBytes, kb, vb, row, s0, min<i32>(limit, sEnd), D, scale, false, cnt);
    for (let j = 0; j < cnt; j++) { store<f32>(sp + (<usize>j << 3), getM(j)); store<f32>(sp + (<usize>j << 3), getL(j), 4); }
  }
}

@inline function attentionAny(q: usize, qPos: usize, k: usize, v: usize, out: usize, f16: bool,
                              n: i32, S: i32, H: i32, Hkv: i32, D: i32, scale: f32, pages: usize, pageShift: i32,
                              state: usize, h0: i32, h1: i32): void {
  const es: usize = f16 ? 2 : 4;
  const group = H / Hkv;
  const kvRow = <usize>Hkv * <usize>D * es;
  const headBytes = <usize>D << 2;
  // GQA: the query heads of [h0, h1) that read the same KV head (at most GROUP at a time) walk the
  // keys together, tile by tile, so each tile of K/V rows comes from memory once and stays in L1
  // for the other heads (K/V reads dominate at long context).
  // ~8 KiB of K + 8 KiB of V per tile, a power of two ≥ 8 so tiles tile pages (8-key blocks start at
  // the same keys whatever the tile, so the arithmetic does not depend on it)
  // (the multi-query form sizes f16 tiles as f32 ones: it reads them widened to f32)
  const tileEs: i32 = state != 0 ? 4 : <i32>es;
  let tile: i32 = 8;
  while (tile * 2 * D * tileEs <= 8192) tile *= 2;
  if (pages != 0) tile = min<i32>(tile, 1 << pageShift);
  if (state != 0) {
    // Multi-query: the tile loop is outermost, so each K/V tile is read from memory (and widened
    // from f16) once for every query of the chunk and every head of the group, which then find it
    // in L1. Each (query, head)'s online-softmax state lives in `state` between tiles; per pair the
    // keys are processed in the same tiles and blocks as below, so the results are the same bits.
    let maxLimit = 0;
    for (let t = 0; t < n; t++) maxLimit = max<i32>(maxLimit, min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1));
    // this slice's f32 tile buffers (K, then V): slices start at distinct heads, so buffer h0 is ours
    const kTile = tileBuffer(state, n, H, D, h0), vTile = kTile + (tileBufferBytes(D) >> 1);
    let h = h0;
    while (h < h1) {
      const kvh = h / group;
      const hEnd = min<i32>(min<i32>(h1, (kvh + 1) * group), h + GROUP);
      const kvo = <usize>kvh * <usize>D * es, cnt = hEnd - h;
      for (let t = 0; t < n; t++) {
        for (let j = 0; j < cnt; j++) {
          const op = out + (<usize>t * <usize>H + <usize>(h + j)) * headBytes;
          for (let d = 0; d < D; d++) store<f32>(op + (<usize>d << 2), 0);
          const sp = state + ((<usize>t * <usize>H + <usize>(h + j)) << 3);
          store<f32>(sp, -Infinity); store<f32>(sp, 0, 4);
        }
      }
      for (let s0 = 0; s0 < maxLimit; s0 += tile) {
        let kb = pageBase(k + kvo, pages, pageShift, s0, kvRow), vb = pageBase(v + kvo, pages, pageShift, s0, kvRow);
        let row = kvRow;
        if (f16) {
          // widen this tile's rows of KV head kvh once; every (query, head) below reads the f32 copy.
          // f16 → f32 is exact and the f32 arithmetic equals the f16 path's (kvAt's scaling is by
          // powers of two), so the bits are those of one query at a time.
          const rows = min<i32>(maxLimit, s0 + tile) - s0;
          widenRows(kb + <usize>s0 * kvRow, kvRow, kTile, rows, D);
          widenRows(vb + <usize>s0 * kvRow, kvRow, vTile, rows, D);
          row = headBytes;
          kb = kTile - <usize>s0 * row; vb = vTile - <usize>s0 * row; // row s at kb + s·row, as for the cache
        }
        tileQueries(q, qPos, out, state, kb, vb, row, s0, s0 + tile, n, S, H, h, cnt, D, scale);
      }
      for (let t = 0; t < n; t++) {
        for (let j = 0; j < cnt; j++) {
          const sp = state + ((<usize>t * <usize>H + <usize>(h + j)) << 3);
          finishHead(out + (<usize>t * <usize>H + <usize>(h + j)) * headBytes, D, load<f32>(sp, 4));
        }
      }
      h = hEnd;
    }
    return;
  }
  for (let t = 0; t < n; t++) {
    const limit = min<i32>(S, load<i32>(qPos + (<usize>t << 2)) + 1);
    let h = h0;
    while (h < h1) {
      const kvh = h / group;
      const hEnd = min<i32>(min<i32>(h1, (kvh + 1) * group), h + GROUP); // heads [h, hEnd) share KV head kvh
      const kvo = <usize>kvh * <usize>D * es;
      const qo = (<usize>t * <usize>H + <usize>h) * headBytes;
      const cnt = hEnd - h;
      for (let j = 0; j < cnt; j++) {
        const op = out + qo + <usize>j * headBytes;
        for (let d = 0; d < D; d++) store<f32>(op + (<usize>d << 2), 0);
        setML(j, -Infinity, 0);
      }
      for (let s0 = 0; s0 < limit; s0 += tile) {
        const kb = pageBase(k + kvo, pages, pageShift, s0, kvRow), vb = pageBase(v + kvo, pages, pageShift, s0, kvRow);
        tileHeads(q, out, qo, kb, vb, kvRow, s0, min<i32>(limit, s0 + tile), D, scale, f16, cnt);
      }
      for (let j = 0; j < cnt; j++) finishHead(out + qo + <usize>j * headBytes, D, getL(j));
      h = hEnd;
    }
  }
}

export function attentionF32(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                             scale: f32, pages: usize, pageShift: i32, state: usize, h0: i32, h1: i32): void {
  attentionAny(q, qPos, k, v, out, false, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
}

export function attentionF16(q: usize, qPos: usize, k: usize, v: usize, out: usize, n: i32, S: i32, H: i32, Hkv: i32, D: i32,
                             scale: f32, pages: usize, pageShift: i32, state: usize, h0: i32, h1: i32): void {
  attentionAny(q, qPos, k, v, out, true, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
}

// attentionBatch: one job for the attention of many sequences over one layer's K/V pool. Each item
// of the table is one sequence's call (src/kernels/types.ts ATTENTION_ITEM writes the same word
// layout); unit u is query head u mod H of item u / H, so a thread's slice runs whole calls of the
// attention kernel above over head ranges, and every item gets the bits it would get alone.
const ITEM_Q = 0, ITEM_QPOS = 1, ITEM_OUT = 2, ITEM_N = 3, ITEM_S = 4, ITEM_PAGES = 5, ITEM_STATE = 6, ITEM_WORDS = 8;

@inline function itemWord(item: usize, i: i32): usize { return <usize>load<u32>(item + (<usize>i << 2)); }

@inline function attentionBatchAny(table: usize, k: usize, v: usize, f16: bool, H: i32, Hkv: i32, D: i32, scale: f32,
                                   pageShift: i32, u0: i32, u1: i32): void {
  for (let u = u0; u < u1;) {
    const i = u / H, h0 = u - i * H, h1 = min<i32>(H, h0 + (u1 - u));
    const it = table + <usize>i * (<usize>ITEM_WORDS << 2);
    const q = itemWord(it, ITEM_Q), qPos = itemWord(it, ITEM_QPOS), out = itemWord(it, ITEM_OUT);
    const n = <i32>itemWord(it, ITEM_N), S = <i32>itemWord(it, ITEM_S);
    const pages = itemWord(it, ITEM_PAGES), state = itemWord(it, ITEM_STATE);
    if (f16) attentionF16(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
    else attentionF32(q, qPos, k, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
    u += h1 - h0;
  }
}

export function attentionBatchF32(table: usize, k: usize, v: usize, H: i32, Hkv: i32, D: i32, scale: f32,
                                  pageShift: i32, u0: i32, u1: i32): void {
  attentionBatchAny(table, k, v, false, H, Hkv, D, scale, pageShift, u0, u1);
}

export function attentionBatchF16(table: usize, k: usize, v: usize, H: i32, Hkv: i32, D: i32, scale: f32,
                                  pageShift: i32, u0: i32, u1: i32): void {
  attentionBatchAny(table, k, v, true, H, Hkv, D, scale, pageShift, u0, u1);
}
