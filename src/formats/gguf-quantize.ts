// Element conversions the GGUF converter needs: f16/bf16 ↔ f32 and the q8_0 / q4_0 block quantisers.
// The quantisers follow ggml's reference code (ggml-quants.c quantize_row_q8_0_ref / _q4_0_ref) and
// gguf-py's numpy twins (quants.py Q8_0 / Q4_0), in f32 arithmetic (Math.fround at every step), so a
// block comes out byte-identical to what llama.cpp's own tools write.
//   q8_0 block (34 bytes): f16 d = amax/127, then 32 × int8 q = roundf(x/d)           x ≈ d·q
//   q4_0 block (18 bytes): f16 d = max/−8 (max = the value of largest magnitude), then 16 bytes,
//                          byte j = q[j] | q[j+16] << 4, q = min(15, trunc(x/d + 8.5))  x ≈ d·(q − 8)

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** f32 → IEEE binary16 bits, round to nearest even (as F16C's vcvtps2ph and numpy's astype do). */
export function f32ToF16Bits(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / NaN (quiet)
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    // subnormal half: value = r · 2^-24
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry into the exponent is correct
  return sign | r;
}

/** IEEE binary16 bits → f32 value (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bf16 bits → f32 value (exact: bf16 is the top half of an f32). */
export function bf16BitsToF32(b: number): number {
  u32buf[0] = (b & 0xffff) << 16;
  return f32buf[0]!;
}

/** Decodes little-endian f32 / f16 / bf16 bytes into a new Float32Array. */
export function toFloat32(dtype: 'f32' | 'f16' | 'bf16', bytes: Uint8Array): Float32Array {
  const width = dtype === 'f32' ? 4 : 2;
  if (bytes.byteLength % width !== 0) throw new Error(`toFloat32: ${bytes.byteLength} bytes is not a whole number of ${dtype} values`);
  const n = bytes.byteLength / width;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n); // (n)
  if (dtype === 'f32') for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
  else for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
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
  for (let i = 0; i < src.length; i++) dv.setUint16(2 * i, f32ToF16Bits(src[i]!), true);
  return out;
}

/** C's roundf: halves away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

const fr = Math.fround;

/** q8_0 blocks of src (length a multiple of 32). */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) throw new Error(`quantizeQ8_0: length ${src.length} is not a multiple of 32`);
  const nb = src.length / 32;
  const out = new Uint8Array(nb * 34); // (nb · 34)
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const x0 = b * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[x0 + j]!));
    const d = fr(amax / 127);
    dv.setUint16(b * 34, f32ToF16Bits(d), true);
    for (let j = 0; j < 32; j++) {
      // gguf-py divides by d (ggml's C multiplies by 1/d; the two differ only on exact .5 ties)
      const q = d === 0 ? 0 : roundf(fr(src[x0 + j]! / d));
      dv.setInt8(b * 34 + 2 + j, q);
    }
  }
  return out;
}

/** q4_0 blocks of src (length a multiple of 32). */
export function quantizeQ4_0(src: Float32Array): Uint8Array {
  if (src.length % 32 !== 0) throw new Error(`quantizeQ4_0: length ${src.length} is not a multiple of 32`);
  const nb = src.length / 32;
  const out = new Uint8Array(nb * 18); // (nb · 18)
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const x0 = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = src[x0 + j]!;
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = fr(max / -8);
    const id = d === 0 ? 0 : fr(1 / d);
    dv.setUint16(b * 18, f32ToF16Bits(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(src[x0 + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(src[x0 + 16 + j]! * id) + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Inverse of quantizeQ8_0 (for tests and tools). */
export function dequantizeQ8_0(blocks: Uint8Array): Float32Array {
  const nb = blocks.byteLength / 34;
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Float32Array(nb * 32); // (nb · 32)
  for (let b = 0; b < nb; b++) {
    const d = f16BitsToF32(dv.getUint16(b * 34, true));
    for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
  }
  return out;
}

/** Inverse of quantizeQ4_0 (for tests and tools). */
export function dequantizeQ4_0(blocks: Uint8Array): Float32Array {
  const nb = blocks.byteLength / 18;
  const dv = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Float32Array(nb * 32); // (nb · 32)
  for (let b = 0; b < nb; b++) {
    const d = f16BitsToF32(dv.getUint16(b * 18, true));
    for (let j = 0; j < 16; j++) {
      const byte = blocks[b * 18 + 2 + j]!;
      out[b * 32 + j] = d * ((byte & 0x0f) - 8);
      out[b * 32 + 16 + j] = d * ((byte >> 4) - 8);
    }
  }
  return out;
}
