// The in-memory "x4" layouts of q8_0 / q4_0 matrices (dtypes q8_0x4 / q4_0x4), made at load: the
// matmul kernels (kernels/matmul-quant-x4.ts) read four rows per activation block, so the rows are
// interleaved block by block and the f16 scales are moved apart from the quants. Group g (rows
// 4g..4g+3) is nb·4·(2 + QB) bytes (nb = cols/32 blocks, QB = 32 for q8_0, 16 for q4_0):
//   nb × 4 f16 scales — block b's scales of rows 4g..4g+3 at 8b —
//   then nb × 4 × QB quant bytes — block b of row 4g+k at 8nb + 4·QB·b + QB·k —
// the bytes of the GGUF blocks unchanged, only moved, so the size is the GGUF size. Files keep
// GGUF's layout; this is done in place after a tensor is read.

import type { WeightDType } from './types.js';

export type RepackedDType = 'q8_0x4' | 'q4_0x4';

/** Rows interleaved in one group of the x4 layouts. */
export const GROUP_ROWS = 4;

/** The x4 dtype a q8_0 / q4_0 matrix of `rows` rows is kept as in memory, or null when it stays in
 *  GGUF's layout (another dtype, or a row count that is not a multiple of 4). */
export function repackedDType(dtype: WeightDType, rows: number): RepackedDType | null {
  if (rows % GROUP_ROWS !== 0) return null;
  return dtype === 'q8_0' ? 'q8_0x4' : dtype === 'q4_0' ? 'q4_0x4' : null;
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
        bytes[g0 + 8 * b + 2 * k] = group[src]!;
        bytes[g0 + 8 * b + 2 * k + 1] = group[src + 1]!;
        bytes.set(group.subarray(src + 2, src + BB), g0 + 8 * nb + GROUP_ROWS * QB * b + QB * k);
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
      out[dst] = bytes[g0 + 8 * b + 2 * k]!;
      out[dst + 1] = bytes[g0 + 8 * b + 2 * k + 1]!;
      const q = g0 + 8 * nb + GROUP_ROWS * QB * b + QB * k;
      out.set(bytes.subarray(q, q + QB), dst + 2);
    }
  }
  return out;
}
