// Element conversions the GGUF converter and tests need: f16/bf16 bytes ↔ f32 values, and q8_0 /
// q4_0 dequantisation. The scalar conversions and the quantisers themselves live in
// src/kernels/reference.ts (ggml's quantize_row_q8_0_ref / _q4_0_ref in f32 arithmetic), so the
// converter and quantise-at-load produce the same bytes.
//   q8_0 block (34 bytes): f16 d = amax/127, then 32 × int8 q = roundf(x·(1/d))        x ≈ d·q
//   q4_0 block (18 bytes): f16 d = max/−8 (max = the value of largest magnitude), then 16 bytes,
//                          byte j = q[j] | q[j+16] << 4, q = min(15, trunc(x/d + 8.5))  x ≈ d·(q − 8)

import { bf16ToF32, f16ToF32, f32ToF16 } from '../kernels/reference.js';

export { quantizeToQ4_0, quantizeToQ8_0 } from '../kernels/reference.js';

/** Decodes little-endian f32 / f16 / bf16 bytes into a new Float32Array. */
export function toFloat32(dtype: 'f32' | 'f16' | 'bf16', bytes: Uint8Array): Float32Array {
  const width = dtype === 'f32' ? 4 : 2;
  if (bytes.byteLength % width !== 0) throw new Error(`toFloat32: ${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  const n = bytes.byteLength / width;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n); // (n)
  if (dtype === 'f32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = bf16ToF32(dv.getUint16(2 * i, true));
  return out;
}

/** f32 values → little-endian f32 bytes. */
export function f32Bytes(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 4); // (n · 4)
  const dv = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) dv.setFloat32(4 * i, src[i]!, true);
  return out;
}

/** f32 values → little-endian f16 bytes (round to nearest even). */
export function f16Bytes(src: Float32Array): Uint8Array {
  const out = new Uint8Array(src.length * 2); // (n · 2)
  const dv = new DataView(out.buffer);
  for (let i = 0; i < src.length; i++) dv.setUint16(2 * i, f32ToF16(src[i]!), true);
  return out;
}

/** Inverse of quantizeToQ8_0 (for tests and tools). */
export function dequantizeQ8_0(blocks: Uint8Array): Float32Array {
  const nb = blocks.byteLength / 34;
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Float32Array(nb * 32); // (nb · 32)
  for (let b = 0; b < nb; b++) {
    const d = f16ToF32(dv.getUint16(b * 34, true));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
  }
  return out;
}

/** Inverse of quantizeToQ4_0 (for tests and tools). */
export function dequantizeQ4_0(blocks: Uint8Array): Float32Array {
  const nb = blocks.byteLength / 18;
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Float32Array(nb * 32); // (nb · 32)
  for (let b = 0; b < nb; b++) {
    const d = f16ToF32(dv.getUint16(b * 18, true));
    for (let j = 0; j < 16; j++) {
      const byte = blocks[b * 18 + 2 + j]!;
      out[b * 32 + j] = d * ((byte & 0x0f) - 8);
      out[b * 32 + 16 + j] = d * ((byte >> 4) - 8);
    }
  }
  return out;
}
