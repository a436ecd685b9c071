// The plain-TypeScript twin of the kernel module: straightforward loops over typed-array views of the
// same memory, written to be obviously correct. It is the oracle every SIMD kernel is tested against,
// and it exports the exact f16/bf16 conversions and GGUF quantisers other modules need (GGUF writer,
// quantise-at-load). Views are created per call: the memory may be shared and may grow.
// Shape legend as in ./types.ts.

import {
  ATTENTION_CHUNK, ATTENTION_ITEM, ATTENTION_ITEM_WORDS, attentionChunkCount, attentionPartialSlot, attentionSplitsKeys, attentionUnits,
  checkBlockRange, checkSplitsKeys, q8BlockSumsOffset, Q8_SUMS_BYTES, weightBytes, type CacheDType, type Kernels, type Ptr, type RopeStyle, type WeightDType,
} from './types.js';
import { dequantizeK, kBlockInts, quantizeBlockQ8_K, K_BLOCK_BYTES, Q8_K_BYTES, QK_K, type KBlockInts, type KQuantType } from './k-quants.js';
import { isPanelDType, panelBase, panelRowParts, PANEL_COLS, unpackKX4, x4QuantAt, type KRepackedDType, type PanelDType } from './repack.js';

const f32 = Math.fround;

// ---- f16 / bf16 ---------------------------------------------------------------------------------

/** IEEE 754 binary16 bits -> number (exact; subnormals, ±inf and NaN included). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

const convBuf = new DataView(new ArrayBuffer(4));

/** f32 value -> binary16 bits, round to nearest even; overflow -> ±inf; NaN -> quiet NaN. */
export function f32ToF16(x: number): number {
  convBuf.setFloat32(0, x, true);
  const bits = convBuf.getUint32(0, true);
  const sign = (bits >>> 16) & 0x8000;
  const e = (bits >>> 23) & 0xff;
  let m = bits & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m !== 0 ? 0x200 : 0);
  const ex = e - 127 + 15; // f16 biased exponent
  if (ex >= 31) return sign | 0x7c00;
  if (ex <= 0) {
    // Subnormal f16: value = m' · 2^-24 with m' = (1.m · 2^(e-127)) / 2^-24.
    if (ex < -10) return sign;
    m |= 0x800000;
    const shift = 14 - ex;
    let h = m >>> shift;
    const rem = m - h * 2 ** shift, half = 2 ** (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (ex << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is correct
  return sign | h;
}

/** bfloat16 bits -> number (the top 16 bits of an f32). */
export function bf16ToF32(h: number): number {
  convBuf.setUint32(0, (h & 0xffff) << 16, true);
  return convBuf.getFloat32(0, true);
}

/** f32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBF16(x: number): number {
  convBuf.setFloat32(0, x, true);
  const bits = convBuf.getUint32(0, true);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---- GGUF quantisers (llama.cpp quantize_row_q8_0_ref / quantize_row_q4_0_ref, in f32) ---------

/** C roundf: round half away from zero. */
function roundAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** One q8_0 block (34 bytes at out[o]) of 32 values src[s..s+32). d = amax/127, q = roundf(x·(1/d)). */
function quantizeBlockQ8_0(src: ArrayLike<number>, s: number, out: Uint8Array, o: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[s + j]!));
  const d = f32(amax / 127);
  const id = d !== 0 ? f32(1 / d) : 0;
  const h = f32ToF16(d);
  out[o] = h & 0xff;
  out[o + 1] = h >> 8;
  for (let j = 0; j < 32; j++) out[o + 2 + j] = roundAway(f32(src[s + j]! * id)) & 0xff;
}

/** Quantising silently turns NaN into 0 and ±Infinity into garbage scales: refuse them instead. */
function refuseNonFinite(src: Float32Array, what: string): void {
  for (let i = 0; i < src.length; i++) {
    if (src[i] - src[i] !== 0) throw new RangeError(`${what}: value ${i} is ${src[i]}; non-finite values cannot be quantised (they would become numbers)`);
  }
}

/** GGUF q8_0 blocks of src (length % 32 == 0): 34 bytes per 32 values. */
export function quantizeToQ8_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) throw new Error(`quantizeToQ8_0: length ${src.length} is not a multiple of 32`);
  refuseNonFinite(src, 'quantizeToQ8_0');
  const out = new Uint8Array((src.length / 32) * 34);
  for (let b = 0; b < src.length / 32; b++) quantizeBlockQ8_0(src, b * 32, out, b * 34);
  return out;
}

/** GGUF q4_0 blocks of src (length % 32 == 0): 18 bytes per 32 values. As llama.cpp: max = the
 *  value of largest magnitude (signed), d = max / −8, q = min(15, trunc(x·(1/d) + 8.5)),
 *  byte j = q[j] | q[j+16] << 4. */
export function quantizeToQ4_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) throw new Error(`quantizeToQ4_0: length ${src.length} is not a multiple of 32`);
  refuseNonFinite(src, 'quantizeToQ4_0');
  const out = new Uint8Array((src.length / 32) * 18);
  for (let b = 0; b < src.length / 32; b++) {
    const s = b * 32, o = b * 18;
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[s + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = f32(max / -8);
    const id = d !== 0 ? f32(1 / d) : 0;
    const h = f32ToF16(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(f32(f32(src[s + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(f32(f32(src[s + 16 + j]! * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** f32 values of GGUF q8_0 / q4_0 blocks (count values). */
export function dequantize(dtype: 'q8_0' | 'q4_0', blocks: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const bb = dtype === 'q8_0' ? 34 : 18;
  for (let b = 0; b < count / 32; b++) {
    const o = b * bb;
    const d = f16ToF32(blocks[o]! | (blocks[o + 1]! << 8));
    for (let j = 0; j < 32; j++) {
      if (dtype === 'q8_0') out[b * 32 + j] = d * ((blocks[o + 2 + j]! << 24) >> 24);
      else out[b * 32 + j] = d * (((j < 16 ? blocks[o + 2 + j]! : blocks[o + 2 + j - 16]! >> 4) & 15) - 8);
    }
  }
  return out;
}

// ---- attention partials (the key chunks of kernels/attention.ts) -------------------------------------

/** Folds a chunk's partial (part, pml = [max, sum]) into a row's (o, ml), as the kernel's foldRows:
 *  both rescaled to the larger max (by exactly 1 on the side that holds it), then added. */
function foldPartial(o: Float32Array, ml: Float32Array, part: Float32Array, pml: Float32Array): void {
  const m = ml[0]!, mp = pml[0]!, mt = Math.max(m, mp);
  const a = m === mt ? 1 : Math.exp(m - mt), b = mp === mt ? 1 : Math.exp(mp - mt);
  ml[0] = mt;
  ml[1] = ml[1]! * a + pml[1]! * b;
  for (let d = 0; d < o.length; d++) o[d] = o[d]! * a + part[d]! * b;
}

/** o /= l (an empty key range, l = 0, leaves the zeros). */
function finishPartial(o: Float32Array, l: number): void {
  if (l === 0) return;
  for (let d = 0; d < o.length; d++) o[d] = o[d]! / l;
}

// ---- the kernels --------------------------------------------------------------------------------

/** Writes the block sums of q8_0 activations (src/kernels/types.ts activationBytes) from their blocks
 *  at xq (count values): zeros up to them, then per block the i32 Σq, d × 2^112 as f32, the i32 Σ|q| of the
 *  negative quants and the i32 8·Σq (blocks [b0, b1) only, as quantizeQ8's range). quantizeQ8 ends
 *  with it; a test that edits quants by hand calls it again. */
export function writeQ8BlockSums(buffer: ArrayBufferLike, xq: Ptr, count: number, b0 = 0, b1 = count / 32): void {
  const nb = count / 32, Q = new Uint8Array(buffer, xq, nb * 34), at = q8BlockSumsOffset(count);
  if (b1 === nb) new Uint8Array(buffer, xq + nb * 34, at - nb * 34).fill(0); // the padding: every byte defined
  const sums = new DataView(buffer, xq + at, nb * Q8_SUMS_BYTES);
  for (let b = b0; b < b1; b++) {
    let s = 0, neg = 0;
    for (let j = 0; j < 32; j++) {
      const q = (Q[b * 34 + 2 + j]! << 24) >> 24;
      s += q;
      if (q < 0) neg -= q;
    }
    const e = b * Q8_SUMS_BYTES;
    sums.setInt32(e, s, true);
    sums.setFloat32(e + 4, f16ToF32(Q[b * 34]! | (Q[b * 34 + 1]! << 8)) * 2 ** 112, true);
    sums.setInt32(e + 8, neg, true);
    sums.setInt32(e + 12, 8 * s, true);
  }
}

export function createReferenceKernels(memory: WebAssembly.Memory): Kernels {
  const F = (p: Ptr, count: number): Float32Array => new Float32Array(memory.buffer, p, count);
  const I = (p: Ptr, count: number): Int32Array => new Int32Array(memory.buffer, p, count);
  const U16 = (p: Ptr, count: number): Uint16Array => new Uint16Array(memory.buffer, p, count);
  const U8 = (p: Ptr, count: number): Uint8Array => new Uint8Array(memory.buffer, p, count);

  /** One attention call's key and value rows as f32, and per (query t, head h) and key range [a, b)
   *  the explicit two-pass softmax: weights (max m, p = e^(score − m)) and partial results. */
  const attentionKeys = (q: Ptr, k: Ptr, v: Ptr, cacheDType: CacheDType, n: number, S: number, H: number, Hkv: number, D: number,
                         scale: number, pages: Ptr, pageShift: number) => {
    const Q = F(q, n * H * D), group = H / Hkv;
    const es = cacheDType === 'f32' ? 4 : 2, rowBytes = Hkv * D * es;
    const table = pages === 0 ? undefined : new Uint32Array(memory.buffer, pages, Math.ceil(S / 2 ** pageShift));
    const row = (s: number, base: Ptr, h: number): Float32Array => {
      const at = table === undefined ? base + s * rowBytes : base + table[Math.floor(s / 2 ** pageShift)]! + (s % 2 ** pageShift) * rowBytes;
      const kvh = Math.floor(h / group);
      if (cacheDType === 'f32') return F(at + kvh * D * 4, D);
      return Float32Array.from(U16(at + kvh * D * 2, D), f16ToF32);
    };
    const weights = (t: number, h: number, a: number, b: number): { m: number; p: number[] } => {
      const qo = (t * H + h) * D, scores: number[] = [];
      for (let s = a; s < b; s++) {
        const kr = row(s, k, h);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += Q[qo + d]! * kr[d]!;
        scores.push(dot * scale);
      }
      let m = -Infinity;
      for (const sc of scores) m = Math.max(m, sc);
      return { m, p: scores.map((sc) => Math.exp(sc - m)) };
    };
    return {
      value: (s: number, h: number) => row(s, v, h),
      weights,
      /** Keys [a, b) (none when a >= b): o = Σ p·V unnormalised, ml = [max, Σ p] (−inf, 0 when empty). */
      partial(t: number, h: number, a: number, b: number, o: Float32Array, ml: Float32Array): void {
        const { m, p } = weights(t, h, a, b);
        const acc = new Float64Array(D);
        for (let s = a; s < b; s++) {
          const vr = row(s, v, h);
          for (let d = 0; d < D; d++) acc[d] = acc[d]! + p[s - a]! * vr[d]!;
        }
        o.set(acc);
        ml[0] = m;
        ml[1] = p.reduce((x, y) => x + y, 0);
      },
    };
  };

  /** Weight row r as f32 values (cols), for the float dtypes. */
  function weightRow(dtype: 'f32' | 'f16' | 'bf16' | PanelDType, w: Ptr, r: number, cols: number): Float32Array {
    if (isPanelDType(dtype)) {
      const out = new Float32Array(cols);
      for (const [at, c0] of panelRowParts(dtype, w, r, cols)) out.set(weightRow(panelBase(dtype), at, 0, PANEL_COLS), c0);
      return out;
    }
    if (dtype === 'f32') return F(w + r * cols * 4, cols);
    const h = U16(w + r * cols * 2, cols);
    const out = new Float32Array(cols);
    for (let c = 0; c < cols; c++) out[c] = dtype === 'f16' ? f16ToF32(h[c]!) : bf16ToF32(h[c]!);
    return out;
  }

  /** Scales (nb) and signed q values (nb × 32) of blocks [b0, b0 + nb) of a q8_0 / q4_0 buffer. */
  function blocks(dtype: 'q8_0' | 'q4_0', base: Ptr, b0: number, nb: number): { d: Float32Array; q: Int8Array } {
    const bb = dtype === 'q8_0' ? 34 : 18;
    const bytes = U8(base + b0 * bb, nb * bb);
    const d = new Float32Array(nb), q = new Int8Array(nb * 32);
    for (let b = 0; b < nb; b++) {
      const o = b * bb;
      d[b] = f16ToF32(bytes[o]! | (bytes[o + 1]! << 8));
      for (let j = 0; j < 32; j++) {
        if (dtype === 'q8_0') q[b * 32 + j] = (bytes[o + 2 + j]! << 24) >> 24;
        else q[b * 32 + j] = ((j < 16 ? bytes[o + 2 + j]! : bytes[o + 2 + j - 16]! >> 4) & 15) - 8;
      }
    }
    return { d, q };
  }

  /** Scales (nb) and signed q values (nb × 32) of row r of a q8_0x4 / q4_0x4 matrix (layout in ./repack.ts). */
  function rowBlocksX4(dtype: 'q8_0x4' | 'q4_0x4', base: Ptr, r: number, nb: number): { d: Float32Array; q: Int8Array } {
    const gguf = dtype === 'q8_0x4' ? 'q8_0' : 'q4_0', QB = gguf === 'q8_0' ? 32 : 16, k = r & 3;
    const group = U8(base + (r >> 2) * nb * 4 * (QB + 2), nb * 4 * (QB + 2));
    const d = new Float32Array(nb), q = new Int8Array(nb * 32);
    for (let b = 0; b < nb; b++) {
      const at = b * 4 * (QB + 2);
      d[b] = f16ToF32(group[at + 2 * k]! | (group[at + 2 * k + 1]! << 8));
      for (let j = 0; j < 32; j++) {
        if (gguf === 'q8_0') q[b * 32 + j] = (group[at + x4QuantAt(gguf, k, j)]! << 24) >> 24;
        else q[b * 32 + j] = ((j < 16 ? group[at + x4QuantAt(gguf, k, j)]! : group[at + x4QuantAt(gguf, k, j - 16)]! >> 4) & 15) - 8;
      }
    }
    return { d, q };
  }

  /** The GGUF super-blocks of a K-quant matrix (rows × cols) at w: a view, or for an x4 layout a copy put back in order. */
  function kBlocks(dtype: KQuantType | KRepackedDType, w: Ptr, rows: number, cols: number): Uint8Array {
    const W = U8(w, weightBytes(dtype, rows * cols));
    return dtype === 'q4_kx4' || dtype === 'q5_kx4' || dtype === 'q6_kx4' ? unpackKX4(dtype, W, rows, cols) : W;
  }

  /** llama.cpp ggml_vec_dot_q{4,5,6}_K_q8_K: per super-block exact integer sums, scaled in f32. */
  function matmulK(type: KQuantType | KRepackedDType, w: Ptr, x: Ptr, Y: Float32Array, n: number, rows: number, cols: number, r0: number, r1: number): void {
    const dtype = type.slice(0, 4) as KQuantType;
    const nb = cols / QK_K, bb = K_BLOCK_BYTES[dtype];
    const X = new DataView(memory.buffer, x, n * nb * Q8_K_BYTES);
    const W = kBlocks(type, w, rows, cols);
    const blocks: KBlockInts[] = [];
    for (let r = r0; r < r1; r++) {
      for (let b = 0; b < nb; b++) blocks[b] = kBlockInts(dtype, W, (r * nb + b) * bb, blocks[b]);
      for (let t = 0; t < n; t++) {
        let sumf = 0;
        for (let b = 0; b < nb; b++) {
          const wb = blocks[b]!, xo = (t * nb + b) * Q8_K_BYTES, dx = X.getFloat32(xo, true);
          const group = dtype === 'q6_k' ? 16 : 32; // values per scale
          let isum = 0, msum = 0;
          for (let g = 0; g < QK_K / group; g++) {
            let dot = 0;
            for (let i = g * group; i < (g + 1) * group; i++) dot += wb.q[i]! * X.getInt8(xo + 4 + i);
            isum += wb.scales[g]! * dot;
            if (dtype !== 'q6_k') msum += wb.mins[g]! * (X.getInt16(xo + 260 + 4 * g, true) + X.getInt16(xo + 262 + 4 * g, true));
          }
          const term = f32(f32(f32(wb.d * dx) * isum) - f32(f32(wb.dmin * dx) * msum));
          sumf = f32(sumf + term);
        }
        Y[t * rows + r] = sumf;
      }
    }
  }

  const kernels: Kernels = {
    matmul(dtype: WeightDType, w, x, y, n, rows, cols, r0, r1) {
      const Y = F(y, n * rows);
      if (dtype === 'q4_k' || dtype === 'q5_k' || dtype === 'q6_k' || dtype === 'q4_kx4' || dtype === 'q5_kx4' || dtype === 'q6_kx4') { matmulK(dtype, w, x, Y, n, rows, cols, r0, r1); return; }
      if (dtype === 'q8_0' || dtype === 'q4_0' || dtype === 'q8_0x4' || dtype === 'q4_0x4') {
        // llama.cpp ggml_vec_dot_q{8,4}_0_q8_0: sumf += sumi · (d_w · d_x), in f32.
        const nb = cols / 32;
        const xb = blocks('q8_0', x, 0, n * nb);
        for (let r = r0; r < r1; r++) {
          const wb = dtype === 'q8_0x4' || dtype === 'q4_0x4' ? rowBlocksX4(dtype, w, r, nb) : blocks(dtype, w, r * nb, nb);
          for (let t = 0; t < n; t++) {
            let sumf = 0;
            for (let b = 0; b < nb; b++) {
              let sumi = 0;
              for (let j = 0; j < 32; j++) sumi += wb.q[b * 32 + j]! * xb.q[(t * nb + b) * 32 + j]!;
              sumf = f32(sumf + f32(sumi * f32(wb.d[b]! * xb.d[t * nb + b]!)));
            }
            Y[t * rows + r] = sumf;
          }
        }
        return;
      }
      const X = F(x, n * cols);
      for (let r = r0; r < r1; r++) {
        const wr = weightRow(dtype, w, r, cols);
        for (let t = 0; t < n; t++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += wr[c]! * X[t * cols + c]!;
          Y[t * rows + r] = s;
        }
      }
    },

    quantizeQ8(x, xq, count, b0 = 0, b1 = count / 32) {
      checkBlockRange('quantizeQ8', count, b0, b1);
      const X = F(x, count), Q = U8(xq, (count / 32) * 34);
      for (let b = b0; b < b1; b++) quantizeBlockQ8_0(X, b * 32, Q, b * 34);
      writeQ8BlockSums(memory.buffer, xq, count, b0, b1);
    },

    quantizeQ8K(x, xq, count) {
      const X = F(x, count), Q = U8(xq, (count / QK_K) * Q8_K_BYTES);
      for (let b = 0; b < count / QK_K; b++) quantizeBlockQ8_K(X, b * QK_K, Q, b * Q8_K_BYTES);
    },

    toF32(dtype, src, dst, count) {
      const D = F(dst, count);
      switch (dtype) {
        case 'f32': D.set(F(src, count)); return;
        case 'f16': { const h = U16(src, count); for (let i = 0; i < count; i++) D[i] = f16ToF32(h[i]!); return; }
        case 'bf16': { const h = U16(src, count); for (let i = 0; i < count; i++) D[i] = bf16ToF32(h[i]!); return; }
        case 'q8_0': case 'q4_0':
          {
            const { d, q } = blocks(dtype, src, 0, count / 32);
            for (let i = 0; i < count; i++) D[i] = d[i >> 5]! * q[i]!;
          }
          return;
        case 'q4_k': case 'q5_k': case 'q6_k':
          D.set(dequantizeK(dtype, U8(src, (count / QK_K) * K_BLOCK_BYTES[dtype]), count));
          return;
        case 'q8_0x4': case 'q4_0x4': case 'q4_kx4': case 'q5_kx4': case 'q6_kx4': case 'f32p': case 'f16p': case 'bf16p':
          throw new Error(`toF32: ${dtype} has its rows interleaved; read rows with rowToF32`);
        default: { const never: never = dtype; throw new Error(`toF32: unknown dtype ${String(never)}`); }
      }
    },

    rowToF32(dtype, w, row, cols, dst) {
      if (dtype === 'q8_0x4' || dtype === 'q4_0x4') {
        const { d, q } = rowBlocksX4(dtype, w, row, cols / 32), D = F(dst, cols);
        for (let i = 0; i < cols; i++) D[i] = d[i >> 5]! * q[i]!;
      } else if (isPanelDType(dtype)) {
        F(dst, cols).set(weightRow(dtype, w, row, cols));
      } else if (dtype === 'q4_kx4' || dtype === 'q5_kx4' || dtype === 'q6_kx4') {
        const type = dtype.slice(0, 4) as KQuantType, rowBytes = weightBytes(type, cols);
        const group = kBlocks(dtype, w + (row >> 2) * 4 * rowBytes, 4, cols);
        F(dst, cols).set(dequantizeK(type, group.subarray((row & 3) * rowBytes, ((row & 3) + 1) * rowBytes), cols));
      } else {
        this.toF32(dtype, w + weightBytes(dtype, row * cols), dst, cols);
      }
    },

    rmsNorm(x, w, y, n, dim, eps) {
      const X = F(x, n * dim), W = F(w, dim), Y = F(y, n * dim);
      for (let t = 0; t < n; t++) {
        let ss = 0;
        for (let c = 0; c < dim; c++) ss += X[t * dim + c]! ** 2;
        const scale = f32(1 / Math.sqrt(ss / dim + eps));
        for (let c = 0; c < dim; c++) Y[t * dim + c] = f32(X[t * dim + c]! * scale) * W[c]!;
      }
    },

    layerNorm(x, w, b, y, n, dim, eps) {
      const X = F(x, n * dim), W = F(w, dim), Y = F(y, n * dim);
      const B = b !== 0 ? F(b, dim) : null;
      for (let t = 0; t < n; t++) {
        let mean = 0;
        for (let c = 0; c < dim; c++) mean += X[t * dim + c]!;
        mean /= dim;
        let v = 0;
        for (let c = 0; c < dim; c++) v += (X[t * dim + c]! - mean) ** 2;
        const scale = 1 / Math.sqrt(v / dim + eps);
        for (let c = 0; c < dim; c++) Y[t * dim + c] = (X[t * dim + c]! - mean) * scale * W[c]! + (B ? B[c]! : 0);
      }
    },

    rope(x, pos, invFreq, n, heads, headDim, style: RopeStyle) {
      const X = F(x, n * heads * headDim), P = I(pos, n), IF = F(invFreq, headDim / 2);
      const half = headDim / 2;
      for (let t = 0; t < n; t++) {
        for (let i = 0; i < half; i++) {
          const angle = f32(P[t]! * IF[i]!);
          const c = f32(Math.cos(angle)), s = f32(Math.sin(angle));
          for (let h = 0; h < heads; h++) {
            const base = (t * heads + h) * headDim;
            const ia = style === 'neox' ? base + i : base + 2 * i;
            const ib = style === 'neox' ? ia + half : ia + 1;
            const a = X[ia]!, bb = X[ib]!;
            X[ia] = a * c - bb * s;
            X[ib] = a * s + bb * c;
          }
        }
      }
    },

    softmax(x, n, len) {
      const X = F(x, n * len);
      for (let t = 0; t < n; t++) {
        const row = X.subarray(t * len, (t + 1) * len);
        let m = -Infinity;
        for (const v of row) m = Math.max(m, v);
        if (m === -Infinity) { row.fill(0); continue; }
        let s = 0;
        for (let i = 0; i < len; i++) { row[i] = Math.exp(row[i]! - m); s += row[i]!; }
        for (let i = 0; i < len; i++) row[i] = row[i]! / s;
      }
    },

    siluMul(gate, up, count) {
      const G = F(gate, count), U = F(up, count);
      for (let i = 0; i < count; i++) G[i] = (G[i]! / (1 + Math.exp(-G[i]!))) * U[i]!;
    },

    geluMul(gate, up, count) {
      const G = F(gate, count), U = F(up, count);
      for (let i = 0; i < count; i++) {
        const g = G[i]!;
        G[i] = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3))) * U[i]!;
      }
    },

    siluMulStacked(gu, out, n, cols) {
      for (let t = 0; t < n; t++) {
        const G = F(gu + 2 * cols * t * 4, cols), U = F(gu + (2 * t + 1) * cols * 4, cols), O = F(out + cols * t * 4, cols);
        for (let i = 0; i < cols; i++) O[i] = (G[i]! / (1 + Math.exp(-G[i]!))) * U[i]!;
      }
    },

    geluMulStacked(gu, out, n, cols) {
      for (let t = 0; t < n; t++) {
        const G = F(gu + 2 * cols * t * 4, cols), U = F(gu + (2 * t + 1) * cols * 4, cols), O = F(out + cols * t * 4, cols);
        for (let i = 0; i < cols; i++) {
          const g = G[i]!;
          O[i] = 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g ** 3))) * U[i]!;
        }
      }
    },

    add(y, x, count) {
      const Y = F(y, count), X = F(x, count);
      for (let i = 0; i < count; i++) Y[i] = Y[i]! + X[i]!;
    },

    addBias(y, bias, rows, cols) {
      const Y = F(y, rows * cols), B = F(bias, cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) Y[r * cols + c] = Y[r * cols + c]! + B[c]!;
    },

    attention(q, qPos, k, v, out, cacheDType: CacheDType, n, S, H, Hkv, D, scale, pages, pageShift, _state, h0, h1) {
      // Two-pass softmax over explicit scores: independent of the online formulation it checks
      // (and of the multi-query form, whose state it does not need). Past one chunk, per chunk, the
      // chunks folded in order as the kernel does (the same code as attentionChunks + attentionMerge).
      const P = I(qPos, n), O = F(out, n * H * D);
      const keys = attentionKeys(q, k, v, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift);
      const chunks = attentionChunkCount(S);
      for (let t = 0; t < n; t++) {
        const limit = Math.min(S, P[t]! + 1);
        for (let h = h0; h < h1; h++) {
          const o = O.subarray((t * H + h) * D, (t * H + h + 1) * D);
          if (chunks === 1) { // the normalised sum directly
            const p = keys.weights(t, h, 0, limit).p;
            const l = p.reduce((x, y) => x + y, 0);
            o.fill(0);
            for (let s = 0; s < limit; s++) {
              const vr = keys.value(s, h);
              for (let d = 0; d < D; d++) o[d] = o[d]! + (p[s]! / l) * vr[d]!;
            }
            continue;
          }
          const ml = new Float32Array(2), part = new Float32Array(D), pml = new Float32Array(2);
          keys.partial(t, h, 0, Math.min(limit, ATTENTION_CHUNK), o, ml);
          for (let c = 1; c < chunks; c++) {
            const cs = c * ATTENTION_CHUNK;
            if (limit <= cs) break;
            keys.partial(t, h, cs, Math.min(limit, cs + ATTENTION_CHUNK), part, pml);
            foldPartial(o, ml, part, pml);
          }
          finishPartial(o, ml[1]!);
        }
      }
    },

    attentionChunks(q, qPos, k, v, out, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1) {
      checkSplitsKeys(n, S);
      const P = I(qPos, n), group = H / Hkv;
      const keys = attentionKeys(q, k, v, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift);
      for (let u = u0; u < u1; u++) {
        const c = Math.floor(u / Hkv), g = u % Hkv, cs = c * ATTENTION_CHUNK;
        const o = c === 0 ? out : attentionPartialSlot(state, n, H, Hkv, D, c - 1), st = c === 0 ? state : o + n * H * D * 4;
        for (let t = 0; t < n; t++) {
          const limit = Math.min(S, P[t]! + 1, cs + ATTENTION_CHUNK);
          for (let h = g * group; h < (g + 1) * group; h++) {
            const row = t * H + h;
            keys.partial(t, h, cs, Math.max(cs, limit), F(o + row * D * 4, D), F(st + row * 8, 2));
          }
        }
      }
    },

    attentionMerge(qPos, out, n, S, H, Hkv, D, state) {
      const P = I(qPos, n), chunks = attentionChunkCount(S);
      for (let t = 0; t < n; t++) {
        for (let h = 0; h < H; h++) {
          const row = t * H + h, o = F(out + row * D * 4, D), ml = F(state + row * 8, 2);
          for (let c = 1; c < chunks; c++) {
            if (P[t]! + 1 <= c * ATTENTION_CHUNK) break;
            const slot = attentionPartialSlot(state, n, H, Hkv, D, c - 1);
            foldPartial(o, ml, F(slot + row * D * 4, D), F(slot + n * H * D * 4 + row * 8, 2));
          }
          finishPartial(o, ml[1]!);
        }
      }
    },

    attentionBatch(table, count, k, v, cacheDType, H, Hkv, D, scale, pageShift, u0, u1) {
      const W = ATTENTION_ITEM_WORDS, items = new Uint32Array(memory.buffer, table, count * W);
      for (let i = 0; i < count; i++) {
        const w = (j: number) => items[i * W + j]!, n = w(ATTENTION_ITEM.N), S = w(ATTENTION_ITEM.S), first = w(ATTENTION_ITEM.FIRST);
        const a = Math.max(u0, first) - first, b = Math.min(u1, first + attentionUnits(n, S, H, Hkv)) - first;
        if (a >= b) continue;
        const run = attentionSplitsKeys(n, S) ? kernels.attentionChunks : kernels.attention;
        run(w(ATTENTION_ITEM.Q), w(ATTENTION_ITEM.QPOS), k, v, w(ATTENTION_ITEM.OUT), cacheDType, n, S, H, Hkv, D, scale,
          w(ATTENTION_ITEM.PAGES), pageShift, w(ATTENTION_ITEM.STATE), a, b);
      }
    },

    attentionBatchMerge(table, count, H, Hkv, D) {
      const W = ATTENTION_ITEM_WORDS, items = new Uint32Array(memory.buffer, table, count * W);
      for (let i = 0; i < count; i++) {
        const w = (j: number) => items[i * W + j]!, n = w(ATTENTION_ITEM.N), S = w(ATTENTION_ITEM.S);
        if (attentionSplitsKeys(n, S)) kernels.attentionMerge(w(ATTENTION_ITEM.QPOS), w(ATTENTION_ITEM.OUT), n, S, H, Hkv, D, w(ATTENTION_ITEM.STATE));
      }
    },

    storeRows(cacheDType, src, dst, count) {
      const S = F(src, count);
      if (cacheDType === 'f32') { F(dst, count).set(S); return; }
      const h = U16(dst, count);
      for (let i = 0; i < count; i++) h[i] = f32ToF16(S[i]!);
    },
  };
  return kernels;
}
