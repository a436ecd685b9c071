// The in-memory "x4" layouts of q8_0 / q4_0 matrices (dtypes q8_0x4 / q4_0x4), made at load: the
// matmul kernels (kernels/matmul-quant-x4.ts) read four rows per activation block, so the rows are
// interleaved block by block with the four rows' f16 scales together ahead of their quants. Group g
// (rows 4g..4g+3) is nb·4·(2 + QB) bytes (nb = cols/32 blocks, QB = 32 for q8_0, 16 for q4_0):
// nb blocks of 8 + 4·QB bytes — block b's scales of rows 4g..4g+3, then row 4g+k's QB quant bytes
// at 8 + QB·k — the bytes of the GGUF blocks unchanged, only moved, so the size is the GGUF size.
// Files keep GGUF's layout; this is done in place after a tensor is read.

import type { WeightDType } from './types.js';

export type RepackedDType = 'q8_0x4' | 'q4_0x4';

/** Rows interleaved in one group of the x4 layouts. */
export const GROUP_ROWS = 4;

/** Readies a matrix just read (`bytes`, rows × cols in `dtype`) for the matmul kernels: q8_0 / q4_0
 *  with rows % 4 == 0 is repacked in place into its x4 layout and that dtype is returned; anything
 *  else is left as it is and `dtype` returned. A q8_0 matrix holding the quant −128 stays in GGUF's
 *  layout too: the relaxed-SIMD kernel takes |x| as its 7-bit operand and moves x's sign onto the
 *  weight, and −(−128) does not fit int8 (llama.cpp's quantiser never writes −128; other tools may). */
export function repackForMatmul(dtype: WeightDType, bytes: Uint8Array, rows: number, cols: number): WeightDType {
  if ((dtype !== 'q8_0' && dtype !== 'q4_0') || rows % GROUP_ROWS !== 0) return dtype;
  if (dtype === 'q8_0' && holdsQ8Minimum(bytes)) return dtype;
  repackX4(dtype, bytes, rows, cols);
  return dtype === 'q8_0' ? 'q8_0x4' : 'q4_0x4';
}

/** Whether any quant of these GGUF q8_0 blocks is −128 (byte 0x80). */
function holdsQ8Minimum(bytes: Uint8Array): boolean {
  for (let o = 0; o < bytes.length; o += 34) {
    for (let j = o + 2; j < o + 34; j++) if (bytes[j] === 0x80) return true;
  }
  return false;
}

/** Quant bytes of one row's block. */
function quantBytes(dtype: 'q8_0' | 'q4_0'): number { return dtype === 'q8_0' ? 32 : 16; }

/** Rewrites `bytes` (rows × cols values in GGUF q8_0 / q4_0 blocks, rows % 4 == 0, cols % 32 == 0)
 *  into the x4 layout, in place (one group of four rows copied aside at a time). */
export function repackX4(dtype: 'q8_0' | 'q4_0', bytes: Uint8Array, rows: number, cols: number): void {
  const QB = quantBytes(dtype), BB = QB + 2, nb = cols / 32, groupBytes = GROUP_ROWS * nb * BB;
  if (rows % GROUP_ROWS !== 0 || cols % 32 !== 0 || bytes.length !== rows * nb * BB) {
    throw new RangeError(`repackX4: ${rows}×${cols} ${dtype} needs rows % 4 == 0, cols % 32 == 0 and ${rows * nb * BB} bytes, got ${bytes.length}`);
  }
  for (let g0 = 0; g0 < bytes.length; g0 += groupBytes) {
    const group = bytes.slice(g0, g0 + groupBytes);             // four GGUF rows, one after another
    for (let k = 0; k < GROUP_ROWS; k++) {
      for (let b = 0; b < nb; b++) {
        const src = (k * nb + b) * BB;
        const at = g0 + b * GROUP_ROWS * BB;
        bytes[at + 2 * k] = group[src]!;
        bytes[at + 2 * k + 1] = group[src + 1]!;
        bytes.set(group.subarray(src + 2, src + BB), at + 8 + QB * k);
      }
    }
  }
}

/** The GGUF blocks of an x4 matrix again (a copy): the inverse of repackX4. */
export function unpackX4(dtype: RepackedDType, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const base = dtype === 'q8_0x4' ? 'q8_0' : 'q4_0';
  const QB = quantBytes(base), BB = QB + 2, nb = cols / 32, groupBytes = GROUP_ROWS * nb * BB;
  const out = new Uint8Array(rows * nb * BB);
  for (let r = 0; r < rows; r++) {
    const g0 = (r >> 2) * groupBytes, k = r & 3;
    for (let b = 0; b < nb; b++) {
      const dst = (r * nb + b) * BB;
      const at = g0 + b * GROUP_ROWS * BB;
      out[dst] = bytes[at + 2 * k]!;
      out[dst + 1] = bytes[at + 2 * k + 1]!;
      const q = at + 8 + QB * k;
      out.set(bytes.subarray(q, q + QB), dst + 2);
    }
  }
  return out;
}
