// GGUF K-quants in plain TypeScript: the block layouts of ggml-common.h, their dequantisation, the
// reference quantisers (ggml's quantize_row_q{4,5,6}_K_ref, which llama-quantize uses when no
// importance matrix is given) and q8_K, the activation format llama.cpp pairs with them in dot
// products. All arithmetic is f32 (Math.fround after every operation, in C's evaluation order), so
// the bytes and values equal ggml's; test/kernels/k-quants.test.ts checks that against llama.cpp.
//
// A super-block holds QK_K = 256 values.
//   q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins for 8 sub-blocks of 32, 128 bytes
//        of nibbles. Values 64j..64j+31 are the low nibbles of qs[32j..32j+31], 64j+32..64j+63 the high
//        nibbles. x = d·sc_s·q − dmin·m_s, q in 0..15, s = sub-block (i / 32).
//   q5_K (176 bytes): as q4_K plus qh (32 bytes) before qs: value i's fifth bit is bit (i / 32) of
//        qh[i % 32]; q in 0..31.
//   q6_K (210 bytes): ql (128), qh (64), 16 × i8 scales, f16 d. Per half h (128 values): value
//        128h + 32k + l (k = 0..3, l = 0..31) has low 4 bits from ql[64h + l + 32·(k & 1)] (low nibble
//        for k < 2, high for k ≥ 2) and top 2 bits from (qh[32h + l] >> 2k) & 3; x = d·sc_(i/16)·(q − 32).
//   q8_K (292 bytes, activations only): f32 d, 256 × i8 q, 16 × i16 bsums (sums of 16 q each); x = d·q.
// The 12 scale bytes: sub-block j < 4 has scale s[j] & 63 and min s[j+4] & 63; j ≥ 4 has scale
// (s[j+4] & 15) | (s[j−4] >> 6) << 4 and min (s[j+4] >> 4) | (s[j] >> 6) << 4.

import { f16ToF32, f32ToF16 } from './reference.js';

export const QK_K = 256;
export const Q4_K_BYTES = 144;
export const Q5_K_BYTES = 176;
export const Q6_K_BYTES = 210;
export const Q8_K_BYTES = 292;

export type KQuantType = 'q4_k' | 'q5_k' | 'q6_k';
export const K_BLOCK_BYTES: Readonly<Record<KQuantType, number>> = { q4_k: Q4_K_BYTES, q5_k: Q5_K_BYTES, q6_k: Q6_K_BYTES };

const f32 = Math.fround;
/** ggml's GROUP_MAX_EPS: a group whose largest magnitude is below it is all zeros. */
const GROUP_MAX_EPS = f32(1e-15);

/** ggml's nearest_int: round to nearest, ties to even, by adding 1.5·2^23 in f32 (|v| < 2^22). */
export function nearestInt(v: number): number {
  return f32(v + 12582912) - 12582912;
}

const u16At = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);

/** Writes the 6-bit scale and min of sub-block j (0..7) of the packed bytes at b[o..o+12) into sm. */
function scaleMin(b: Uint8Array, o: number, j: number, sm: Uint8Array): void {
  if (j < 4) {
    sm[0] = b[o + j]! & 63;
    sm[1] = b[o + j + 4]! & 63;
  } else {
    sm[0] = (b[o + j + 4]! & 15) | ((b[o + j - 4]! >> 6) << 4);
    sm[1] = (b[o + j + 4]! >> 4) | ((b[o + j]! >> 6) << 4);
  }
}

function checkBlocks(what: string, bytes: number, blockBytes: number, count: number): void {
  if (count % QK_K !== 0) throw new Error(`${what}: ${count} values is not a multiple of ${QK_K}`);
  if (bytes < (count / QK_K) * blockBytes) throw new Error(`${what}: ${bytes} bytes hold fewer than ${count / QK_K} blocks of ${blockBytes}`);
}

// ---- dequantisation (ggml dequantize_row_q{4,5,6}_K) --------------------------------------------

/** Integer q (0..31, or −32..31 for q6_k) of every value, plus per-value scale and offset in f32 such
 *  that x = f32(f32(scale·q) − offset) (q4_k/q5_k) or x = f32(scale·q) (q6_k, offset 0). */
export function dequantizeK(type: KQuantType, blocks: Uint8Array, count: number): Float32Array {
  checkBlocks(`dequantize ${type}`, blocks.byteLength, K_BLOCK_BYTES[type], count);
  const out = new Float32Array(count);
  const sm = new Uint8Array(2);
  for (let b = 0; b < count / QK_K; b++) {
    const o = b * K_BLOCK_BYTES[type], y = b * QK_K;
    if (type === 'q6_k') {
      const d = f16ToF32(u16At(blocks, o + 208));
      for (let i = 0; i < QK_K; i++) {
        const sc = (blocks[o + 192 + (i >> 4)]! << 24) >> 24;
        out[y + i] = f32(f32(d * sc) * q6At(blocks, o, i));
      }
      continue;
    }
    const d = f16ToF32(u16At(blocks, o)), dmin = f16ToF32(u16At(blocks, o + 2));
    for (let j = 0; j < 8; j++) {
      scaleMin(blocks, o + 4, j, sm);
      const d1 = f32(d * sm[0]!), m1 = f32(dmin * sm[1]!);
      for (let l = 0; l < 32; l++) {
        const i = 32 * j + l;
        out[y + i] = f32(f32(d1 * (type === 'q4_k' ? q4At(blocks, o + 16, i) : q5At(blocks, o, i))) - m1);
      }
    }
  }
  return out;
}

/** Value i's 4-bit q in the 128 nibble bytes at qs. */
function q4At(b: Uint8Array, qs: number, i: number): number {
  const byte = b[qs + 32 * (i >> 6) + (i & 31)]!;
  return (i & 32) ? byte >> 4 : byte & 15;
}

/** Value i's 5-bit q in the q5_K block at o (qh at o + 16, qs at o + 48). */
function q5At(b: Uint8Array, o: number, i: number): number {
  return q4At(b, o + 48, i) | (((b[o + 16 + (i & 31)]! >> (i >> 5)) & 1) << 4);
}

/** Value i's signed q (−32..31) in the q6_K block at o. */
function q6At(b: Uint8Array, o: number, i: number): number {
  const h = i >> 7, k = (i >> 5) & 3, l = i & 31;
  const lowByte = b[o + 64 * h + l + 32 * (k & 1)]!;
  const low = k < 2 ? lowByte & 15 : lowByte >> 4;
  const high = (b[o + 128 + 32 * h + l]! >> (2 * k)) & 3;
  return (low | (high << 4)) - 32;
}

// ---- integer views for dot products ------------------------------------------------------------

/** One block as integers: q per value (q6_k: −32..31), 8 scales and 8 mins (q6_k: 16 signed scales,
 *  no mins) and the f32 super-block scales. */
export interface KBlockInts { q: Int8Array; scales: Int16Array; mins: Int16Array; d: number; dmin: number }

export function kBlockInts(type: KQuantType, b: Uint8Array, o: number, into?: KBlockInts): KBlockInts {
  const r = into ?? { q: new Int8Array(QK_K), scales: new Int16Array(16), mins: new Int16Array(8), d: 0, dmin: 0 };
  if (type === 'q6_k') {
    for (let i = 0; i < QK_K; i++) r.q[i] = q6At(b, o, i);
    for (let g = 0; g < 16; g++) r.scales[g] = (b[o + 192 + g]! << 24) >> 24;
    r.d = f16ToF32(u16At(b, o + 208));
    r.dmin = 0;
    return r;
  }
  const sm = new Uint8Array(2);
  for (let j = 0; j < 8; j++) { scaleMin(b, o + 4, j, sm); r.scales[j] = sm[0]!; r.mins[j] = sm[1]!; }
  for (let i = 0; i < QK_K; i++) r.q[i] = type === 'q4_k' ? q4At(b, o + 16, i) : q5At(b, o, i);
  r.d = f16ToF32(u16At(b, o));
  r.dmin = f16ToF32(u16At(b, o + 2));
  return r;
}

// ---- q8_K (ggml quantize_row_q8_K_ref) ----------------------------------------------------------

/** One q8_K block (292 bytes at out[o]) of 256 values src[s..s+256): max = the value of largest
 *  magnitude, iscale = −127/max, q = min(127, nearest(iscale·x)), d = 1/iscale (f32). */
export function quantizeBlockQ8_K(src: ArrayLike<number>, s: number, out: Uint8Array, o: number): void {
  const dv = new DataView(out.buffer, out.byteOffset + o, Q8_K_BYTES);
  let amax = 0, max = 0;
  for (let j = 0; j < QK_K; j++) {
    const ax = Math.abs(src[s + j]!);
    if (ax > amax) { amax = ax; max = src[s + j]!; }
  }
  if (amax === 0) { out.fill(0, o, o + Q8_K_BYTES); return; } // ggml leaves bsums unset here; zero is their true value
  const iscale = f32(-127 / max);
  for (let j = 0; j < QK_K; j++) dv.setInt8(4 + j, Math.min(127, nearestInt(f32(iscale * src[s + j]!))));
  for (let g = 0; g < 16; g++) {
    let sum = 0;
    for (let i = 0; i < 16; i++) sum += dv.getInt8(4 + 16 * g + i);
    dv.setInt16(260 + 2 * g, sum, true);
  }
  dv.setFloat32(0, f32(1 / iscale), true);
}

// ---- quantisers (ggml quantize_row_q{4,5,6}_K_ref) -----------------------------------------------

/** ggml's make_qkx2_quants: an asymmetric n-value group quantised to 0..nmax with a min, searching
 *  nstep + 1 scales around nmax/(max − min) for the least weighted squared error. Fills L[l0..l0+n);
 *  returns [scale, −min]. */
function makeQkx2Quants(n: number, nmax: number, x: Float32Array, x0: number, w: Float32Array, L: Uint8Array, l0: number,
                        rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[x0]!, max = x[x0]!;
  let sumW = w[0]!, sumX = f32(sumW * x[x0]!);
  for (let i = 1; i < n; i++) {
    const v = x[x0 + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = f32(sumW + w[i]!);
    sumX = f32(sumX + f32(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) { L.fill(0, l0, l0 + n); return [0, f32(-min)]; }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(x[x0 + i]! - min)))));
    L[l0 + i] = l;
    const diff = f32(f32(f32(scale * l) + min) - x[x0 + i]!);
    bestError = f32(bestError + f32(w[i]! * f32(diff * diff)));
  }
  const aux = new Uint8Array(n);
  const rd = f32(rdelta);
  for (let is = 0; is <= nstep; is++) {
    iscale = f32(f32(f32(rmin + f32(rd * is)) + nmax) / f32(max - min)); // min moves as better fits are found
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = x[x0 + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(v - min)))));
      aux[i] = l;
      const wl = f32(w[i]! * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * v));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (D > 0) {
      let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
      let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
      if (thisMin > 0) { thisMin = 0; thisScale = f32(sumXL / sumL2); }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = f32(f32(f32(thisScale * aux[i]!) + thisMin) - x[x0 + i]!);
        cur = f32(cur + f32(w[i]! * f32(diff * diff)));
      }
      if (cur < bestError) {
        L.set(aux, l0);
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, f32(-min)];
}

/** ggml's make_qx_quants with rmse_type 1 (weights x²): a symmetric group quantised to −nmax..nmax−1,
 *  trying 19 scales around nmax/max. Fills L (stored as q + nmax); returns the scale. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, x0: number, L: Int8Array, l0: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[x0 + i]!);
    if (ax > amax) { amax = ax; max = x[x0 + i]!; }
  }
  if (amax < GROUP_MAX_EPS) { L.fill(0, l0, l0 + n); return 0; }
  let iscale = f32(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[x0 + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * v))));
    L[l0 + i] = l + nmax;
    const w = f32(v * v);
    sumlx = f32(sumlx + f32(f32(w * v) * l));
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  let scale = suml2 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  const tenth = f32(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f32(-f32(nmax + f32(tenth * is)) / max);
    sumlx = 0; suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[x0 + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * v))));
      const w = f32(v * v);
      sumlx = f32(sumlx + f32(f32(w * v) * l));
      suml2 = f32(suml2 + f32(f32(w * l) * l));
    }
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      for (let i = 0; i < n; i++) L[l0 + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(f32(iscale * x[x0 + i]!))));
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

function setF16(out: Uint8Array, o: number, v: number): void {
  const h = f32ToF16(v);
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
}

/** q4_K / q5_K super-block of x[s..s+256) into out[o..): 8 asymmetric sub-blocks of 32. */
function quantizeBlockQ45K(type: 'q4_k' | 'q5_k', x: Float32Array, s: number, out: Uint8Array, o: number): void {
  const nmax = type === 'q4_k' ? 15 : 31;
  const L = new Uint8Array(QK_K), w = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = f32(sumX2 + f32(x[s + 32 * j + l]! * x[s + 32 * j + l]!));
    const avX = f32(Math.sqrt(f32(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = f32(avX + Math.abs(x[s + 32 * j + l]!));
    const [sc, m] = type === 'q4_k'
      ? makeQkx2Quants(32, 15, x, s + 32 * j, w, L, 32 * j, -1, 0.1, 20)
      : makeQkx2Quants(32, 31, x, s + 32 * j, w, L, 32 * j, -0.5, 0.1, 15);
    scales[j] = sc; mins[j] = m;
    if (sc > maxScale) maxScale = sc;
    if (m > maxMin) maxMin = m;
  }
  const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
  const sb = o + 4; // the 12 scale bytes
  out.fill(0, o, o + K_BLOCK_BYTES[type]);
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f32(invScale * scales[j]!)) & 0xff); // C: uint8_t of the int, then MIN
    const lm = Math.min(63, nearestInt(f32(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      out[sb + j] = ls;
      out[sb + j + 4] = lm;
    } else {
      out[sb + j + 4] = (ls & 15) | ((lm & 15) << 4);
      out[sb + j - 4] |= (ls >> 4) << 6;
      out[sb + j] |= (lm >> 4) << 6;
    }
  }
  setF16(out, o, f32(maxScale / 63));
  setF16(out, o + 2, f32(maxMin / 63));
  const d = f16ToF32(u16At(out, o)), dmin = f16ToF32(u16At(out, o + 2));
  const sm = new Uint8Array(2);
  for (let j = 0; j < 8; j++) {
    scaleMin(out, sb, j, sm);
    const dj = f32(d * sm[0]!);
    if (!dj) continue; // keeps the search's levels, as ggml does
    const dm = f32(dmin * sm[1]!);
    for (let l = 0; l < 32; l++) {
      L[32 * j + l] = Math.max(0, Math.min(nmax, nearestInt(f32(f32(x[s + 32 * j + l]! + dm) / dj))));
    }
  }
  const qs = type === 'q4_k' ? o + 16 : o + 48;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = L[64 * c + l]!, hi = L[64 * c + 32 + l]!;
      out[qs + 32 * c + l] = (lo & 15) | ((hi & 15) << 4);
      if (type === 'q5_k') out[o + 16 + l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
    }
  }
}

/** q6_K super-block of x[s..s+256) into out[o..): 16 symmetric groups of 16 with i8 scales. */
function quantizeBlockQ6K(x: Float32Array, s: number, out: Uint8Array, o: number): void {
  const L = new Int8Array(QK_K), scales = new Float32Array(16);
  let maxScale = 0, maxAbsScale = 0;
  for (let g = 0; g < 16; g++) {
    const sc = makeQxQuants(16, 32, x, s + 16 * g, L, 16 * g);
    scales[g] = sc;
    if (Math.abs(sc) > maxAbsScale) { maxAbsScale = Math.abs(sc); maxScale = sc; }
  }
  out.fill(0, o, o + Q6_K_BYTES);
  if (maxAbsScale < GROUP_MAX_EPS) return;
  const iscale = f32(-128 / maxScale);
  setF16(out, o + 208, f32(1 / iscale));
  for (let g = 0; g < 16; g++) out[o + 192 + g] = Math.min(127, nearestInt(f32(iscale * scales[g]!))) & 0xff;
  const d = f16ToF32(u16At(out, o + 208));
  for (let g = 0; g < 16; g++) {
    const dg = f32(d * ((out[o + 192 + g]! << 24) >> 24));
    if (!dg) continue; // keeps the search's levels, as ggml does
    for (let i = 0; i < 16; i++) L[16 * g + i] = Math.max(-32, Math.min(31, nearestInt(f32(x[s + 16 * g + i]! / dg)))) + 32;
  }
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const q = (k: number): number => L[128 * h + 32 * k + l]!;
      out[o + 64 * h + l] = (q(0) & 15) | ((q(2) & 15) << 4);
      out[o + 64 * h + 32 + l] = (q(1) & 15) | ((q(3) & 15) << 4);
      out[o + 128 + 32 * h + l] = (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
    }
  }
}

/** GGUF K-quant blocks of src (length % 256 == 0), as llama-quantize writes them without an
 *  importance matrix. Values must be finite. */
export function quantizeToK(type: KQuantType, src: Float32Array): Uint8Array {
  if (src.length % QK_K !== 0) throw new Error(`quantize ${type}: length ${src.length} is not a multiple of ${QK_K}`);
  const bb = K_BLOCK_BYTES[type];
  const out = new Uint8Array((src.length / QK_K) * bb);
  for (let b = 0; b < src.length / QK_K; b++) {
    if (type === 'q6_k') quantizeBlockQ6K(src, b * QK_K, out, b * bb);
    else quantizeBlockQ45K(type, src, b * QK_K, out, b * bb);
  }
  return out;
}
