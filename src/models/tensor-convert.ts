// Reads one tensor into its final storage, converting on the way when the stored dtype differs from
// the file's: 1-D tensors (norms, biases) are always widened to f32, and `quantize: 'q8_0'` turns
// f32/f16/bf16 matrices into GGUF q8_0 blocks with llama.cpp's reference quantiser.
// Every value is checked on the way (one pass over the bytes just read): a NaN, infinite or ≥ 2^64
// weight makes every later logit NaN (or constant) and greedy decoding would repeat token 0, so the
// load is refused with the tensor's name instead.

import type { WeightDType } from '../kernels/types.js';
import type { TensorEntry, TensorSource } from '../formats/tensor-source.js';
import { f16ToF32, bf16ToF32, quantizeToQ8_0 } from '../kernels/reference.js';
import { dequantizeK, K_BLOCK_BYTES } from '../kernels/k-quants.js';

/** The tensor's values as f32, whatever its stored dtype. */
export function readAsF32(source: TensorSource, entry: TensorEntry): Float32Array {
  const raw = new Uint8Array(entry.byteLength);
  source.read(entry, raw);
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (entry.dtype) {
    case 'f32': for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true); break;
    case 'f16': for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true)); break;
    case 'bf16': for (let i = 0; i < count; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true)); break;
    case 'q8_0':
      for (let b = 0; b < count / 32; b++) {
        const d = f16ToF32(view.getUint16(b * 34, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * view.getInt8(b * 34 + 2 + j);
      }
      break;
    case 'q4_0':
      for (let b = 0; b < count / 32; b++) {
        const d = f16ToF32(view.getUint16(b * 18, true));
        for (let j = 0; j < 16; j++) {
          const byte = raw[b * 18 + 2 + j];
          out[b * 32 + j] = d * ((byte & 15) - 8);
          out[b * 32 + j + 16] = d * ((byte >> 4) - 8);
        }
      }
      break;
    case 'q4_k': case 'q5_k': case 'q6_k': out.set(dequantizeK(entry.dtype, raw, count)); break;
    default: throw new Error(`${source.description}: tensor ${entry.name} has dtype ${entry.dtype}, which cannot be converted to f32`);
  }
  return out;
}

/** Index of the first element of `bytes` (stored as `dtype`) that no working float32 model can hold:
 *  NaN, ±Infinity, or a magnitude of 2^64 or more (its square overflows float32, so the RMSNorm of any
 *  activation it reaches is 0 and the model silently outputs constants). For q8_0/q4_0: the first
 *  element of a block whose f16 scale is not finite; for K-quants, of a super-block whose d or dmin is not. -1 if none. Tests exponent bits of 32-bit words
 *  (two f16/bf16 values at a time), about 1 GB/s in plain JS. */
export function firstUnusableWeight(dtype: string, bytes: Uint8Array): number {
  const words = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : null;
  const u16 = (i: number) => bytes[2 * i] | (bytes[2 * i + 1] << 8);
  switch (dtype) {
    case 'f32': {
      const n = bytes.byteLength >> 2;
      // exponent field ≥ 127 + 64: |x| ≥ 2^64, Infinity or NaN
      if (words) { for (let i = 0; i < n; i++) if ((words[i] & 0x7f800000) >= 0x5f800000) return i; }
      else for (let i = 0; i < n; i++) if (((u16(2 * i + 1) << 16) & 0x7f800000) >= 0x5f800000) return i;
      return -1;
    }
    case 'f16': case 'bf16': {
      // f16 tops out at 65504, so only its all-ones exponent (Inf/NaN) is refused; bf16 has f32's range
      const mask = dtype === 'f16' ? 0x7c00 : 0x7f80, limit = dtype === 'f16' ? 0x7c00 : 0x5f80, n = bytes.byteLength >> 1;
      let i = 0;
      if (words) {
        const maskHi = mask << 16, limitHi = limit << 16;
        for (let w = 0; w < words.length; w++) {
          const x = words[w];
          if ((x & mask) >= limit) return 2 * w;
          if ((x & maskHi) >= limitHi) return 2 * w + 1;
        }
        i = 2 * words.length;
      }
      for (; i < n; i++) if ((u16(i) & mask) >= limit) return i;
      return -1;
    }
    case 'q8_0': case 'q4_0': {
      const block = dtype === 'q8_0' ? 34 : 18;                          // f16 scale first in each block
      for (let b = 0, o = 0; o < bytes.byteLength; b++, o += block) if ((bytes[o + 1] & 0x7c) === 0x7c) return b * 32;
      return -1;
    }
    case 'q4_k': case 'q5_k': case 'q6_k': {
      // f16 super-block scales: d and dmin first (q4_K, q5_K), d last (q6_K)
      const block = K_BLOCK_BYTES[dtype], at = dtype === 'q6_k' ? [208] : [0, 2];
      for (let b = 0, o = 0; o < bytes.byteLength; b++, o += block) for (const s of at) if ((bytes[o + s + 1] & 0x7c) === 0x7c) return b * 256;
      return -1;
    }
    default: return -1;
  }
}

function refuseUnusable(source: TensorSource, entry: TensorEntry, dtype: string, bytes: Uint8Array, value: (i: number) => number): void {
  const i = firstUnusableWeight(dtype, bytes);
  if (i < 0) return;
  const v = value(i);
  const what = Number.isFinite(v) ? `a value too large for float32 arithmetic (${v.toExponential(3)} at element ${i}; from 2^64 on its square overflows)` : `a non-finite value (${v} at element ${i})`;
  throw new Error(`${source.description}: tensor ${entry.name} holds ${what}; `
    + 'such a model can only produce garbage: the file is damaged or was saved from a diverged run — re-download or re-export it');
}

/** Fills `dst` (exactly the stored size) with the tensor stored as `stored`; refuses unusable values. */
export function readTensorInto(source: TensorSource, entry: TensorEntry, stored: WeightDType, dst: Uint8Array): void {
  if (stored === entry.dtype) {
    source.read(entry, dst);
    refuseUnusable(source, entry, entry.dtype, dst, (i) => elementValue(entry.dtype, dst, i));
    return;
  }
  const values = readAsF32(source, entry);
  const raw = new Uint8Array(values.buffer);
  refuseUnusable(source, entry, 'f32', raw, (i) => values[i]);
  if (stored === 'f32') { new Float32Array(dst.buffer, dst.byteOffset, values.length).set(values); return; }
  if (stored === 'q8_0') { dst.set(quantizeToQ8_0(values)); return; }
  throw new Error(`${source.description}: cannot store tensor ${entry.name} (${entry.dtype}) as ${stored}`);
}

/** Element i of `bytes` as a number (for messages; q8_0/q4_0: the block's scale). */
function elementValue(dtype: string, bytes: Uint8Array, i: number): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'f32': return dv.getFloat32(4 * i, true);
    case 'f16': return f16ToF32(dv.getUint16(2 * i, true));
    case 'bf16': return bf16ToF32(dv.getUint16(2 * i, true));
    case 'q8_0': return f16ToF32(dv.getUint16((i / 32) * 34, true));
    case 'q4_k': case 'q5_k': case 'q6_k': {
      const o = (i / 256) * K_BLOCK_BYTES[dtype];
      const d = f16ToF32(dv.getUint16(o + (dtype === 'q6_k' ? 208 : 0), true));
      return dtype === 'q6_k' || !Number.isFinite(d) ? d : f16ToF32(dv.getUint16(o + 2, true));
    }
    default: return f16ToF32(dv.getUint16((i / 32) * 18, true));
  }
}
