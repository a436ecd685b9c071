// The in-memory "x4" layouts of quantised matrices, made at load: the matmul kernels read four rows
// per activation block, so the rows are interleaved block by block, the four rows' scales together
// ahead of their quants. The bits of the GGUF blocks are only moved (bytes whole, but for q6_K's
// x4 layout), so the size is the GGUF size.
// Files keep GGUF's layout; this is done in place after a tensor is read.
// q8_0x4 / q4_0x4 (kernels/matmul-quant-x4.ts): group g (rows 4g..4g+3) is nb·4·(2 + QB) bytes
// (nb = cols/32 blocks, QB = 32 for q8_0, 16 for q4_0): nb blocks of 8 + 4·QB bytes — block b's
// scales of rows 4g..4g+3, then the quants (x4QuantAt): q8_0's row k's 32 bytes at 8 + 32k; q4_0's
// in runs of 4 bytes, row k's bytes 4j..4j+3 at 8 + 16j + 4k (as q4_K's), so a vector holds four
// consecutive values of each of the four rows.
// q4_kx4 / q5_kx4 / q6_kx4 (kernels/matmul-kquant-x4.ts): group g is nb super-blocks of 4·B bytes
// (B = 144 / 176 / 210): q4_K / q5_K: the four rows' d, their dmin, the three words of their packed
// scales word by word, then the quants (64 bytes of head; q4_K's qs in runs of 4 bytes interleaved
// over the four rows, q4Runs; q5_K's row by row; KX4_MOVES lists where the other parts go). q6_K's bits are
// regrouped (q6ToX4): the four rows' d, their 16 scales in pairs of groups, then per group of 16
// values the four rows' 6-bit values four at a time. Four consecutive values of each of the four
// rows in one vector let the kernels multiply the four rows by one broadcast run of activations, and
// q6_K's grouping unpacks 64 values in 11 vector operations (17 from GGUF's ql / qh).
// f32p / f16p / bf16p (kernels/matmul.ts matmulPanels): float matrices wider than one panel, with
// rows % 32 == 0 and cols % 2048 == 0: group g (rows 32g..32g+31) is 32·cols values; inside it, panel
// p (columns 2048p..2048p+2047) is 32·2048 values at 32·2048·p, row k of the group's 2048 values at
// 2048·k. One token's matmul then reads the weights in memory order while one panel's 8 KiB of X
// stays in L1.
import type { WeightDType } from './types.js';
import { K_BLOCK_BYTES, type KQuantType } from './k-quants.js';

export type RepackedDType = 'q8_0x4' | 'q4_0x4';
export type KRepackedDType = 'q4_kx4' | 'q5_kx4' | 'q6_kx4';

/** Rows interleaved in one group of the x4 layouts. */
export const GROUP_ROWS = 4;

/** Readies a matrix just read (`bytes`, rows × cols in `dtype`) for the matmul kernels: q8_0, q4_0,
 *  q4_k, q5_k and q6_k with rows % 4 == 0 are repacked in place into their x4 layouts, and f32, f16
 *  and bf16 ones wider than a panel (panelsFit) into panels, and that dtype is returned; anything
 *  else is left as it is and `dtype` returned. */
export function repackForMatmul(dtype: WeightDType, bytes: Uint8Array, rows: number, cols: number): WeightDType {
  if ((dtype === 'f32' || dtype === 'f16' || dtype === 'bf16') && panelsFit(rows, cols)) {
    repackPanels(dtype, bytes, rows, cols);
    return `${dtype}p`;
  }
  if ((dtype === 'q4_k' || dtype === 'q5_k' || dtype === 'q6_k') && rows % GROUP_ROWS === 0) {
    repackKX4(dtype, bytes, rows, cols);
    return `${dtype}x4`;
  }
  if ((dtype !== 'q8_0' && dtype !== 'q4_0') || rows % GROUP_ROWS !== 0) return dtype;
  repackX4(dtype, bytes, rows, cols);
  return dtype === 'q8_0' ? 'q8_0x4' : 'q4_0x4';
}

/** Quant bytes of one row's block. */
function quantBytes(dtype: 'q8_0' | 'q4_0'): number { return dtype === 'q8_0' ? 32 : 16; }

/** Where row k's (0..3) quant byte j of a block lies in the x4 block (from the block's start). */
export function x4QuantAt(dtype: 'q8_0' | 'q4_0', k: number, j: number): number {
  return dtype === 'q8_0' ? 8 + 32 * k + j : 8 + 16 * (j >> 2) + 4 * k + (j & 3);
}

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
        for (let j = 0; j < QB; j++) bytes[at + x4QuantAt(dtype, k, j)] = group[src + 2 + j]!;
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
      for (let j = 0; j < QB; j++) out[dst + 2 + j] = bytes[at + x4QuantAt(base, k, j)]!;
    }
  }
  return out;
}

/** Where the parts of one row's GGUF super-block go in an x4 super-block: [offset in the GGUF block,
 *  length, offset of row 0's part in the x4 block, step per row]. */
const KX4_MOVES: Readonly<Record<'q4_k' | 'q5_k', readonly (readonly [number, number, number, number])[]>> = {
  // d, dmin, scale words 0..2, then qs (q5_K: qh and qs)
  // (q4_K's qs in runs of 4 bytes: run j of row k at 64 + 16j + 4k)
  q4_k: [[0, 2, 0, 2], [2, 2, 8, 2], [4, 4, 16, 4], [8, 4, 32, 4], [12, 4, 48, 4]], // qs: q4Runs
  q5_k: [[0, 2, 0, 2], [2, 2, 8, 2], [4, 4, 16, 4], [8, 4, 32, 4], [12, 4, 48, 4], [16, 160, 64, 160]],
};

/** q4_K's 128 qs bytes of row k between GGUF (at o) and x4 (at at + 64) order, in runs of 4 bytes:
 *  run j of row k at 64 + 16j + 4k; toX4 false goes back. A loop of bytes: 32 `set`s of 4 bytes
 *  per block made the repack of a model several times slower. */
function q4Runs(gguf: Uint8Array, o: number, x4: Uint8Array, at: number, k: number, toX4: boolean): void {
  for (let j = 0; j < 32; j++) {
    const g = o + 16 + 4 * j, x = at + 64 + 16 * j + 4 * k;
    for (let e = 0; e < 4; e++) {
      if (toX4) x4[x + e] = gguf[g + e]!; else gguf[g + e] = x4[x + e]!;
    }
  }
}

// q6_K x4 super-block (4 × 210 = 840 bytes): row k's f16 d at 2k; row k's i8 scale of group g (16
// values) at 8 + 8·(g >> 1) + 2k + (g & 1), so a load of 8 bytes gives two groups' scales of the four
// rows; then group g's 48 bytes at 72 + 48g: three vectors of 16 bytes, byte 4k + e of vector i
// (0..2) holding row k's value 16g + 4i + e (0..63) in bits 0..5 and bits 2i..2i+1 of row k's value
// 16g + 12 + e in bits 6..7.
const Q6X4_HEAD = 72;
const q6Values = new Uint8Array(256); // one row's values of the super-block being moved

/** Row k's GGUF q6_K super-block (src[o..o+210)) into the x4 super-block at out[at..at+840). */
function q6ToX4(src: Uint8Array, o: number, out: Uint8Array, at: number, k: number): void {
  out[at + 2 * k] = src[o + 208]!;
  out[at + 2 * k + 1] = src[o + 209]!;
  for (let g = 0; g < 16; g++) out[at + 8 + 8 * (g >> 1) + 2 * k + (g & 1)] = src[o + 192 + g]!;
  const v = q6Values;
  for (let h = 0; h < 2; h++) {   // GGUF: value 128h + l + 32j from ql's nibbles and qh's bit pair j
    for (let l = 0; l < 32; l++) {
      const a = src[o + 64 * h + l]!, c = src[o + 64 * h + 32 + l]!, q = src[o + 128 + 32 * h + l]!, i = 128 * h + l;
      v[i] = (a & 15) | ((q & 3) << 4);
      v[i + 32] = (c & 15) | (((q >> 2) & 3) << 4);
      v[i + 64] = (a >> 4) | (((q >> 4) & 3) << 4);
      v[i + 96] = (c >> 4) | ((q >> 6) << 4);
    }
  }
  for (let g = 0; g < 16; g++) {
    for (let e = 0; e < 4; e++) {
      const p = at + Q6X4_HEAD + 48 * g + 4 * k + e, i = 16 * g + e, top = v[i + 12]!;
      out[p] = v[i]! | ((top & 3) << 6);
      out[p + 16] = v[i + 4]! | (((top >> 2) & 3) << 6);
      out[p + 32] = v[i + 8]! | ((top >> 4) << 6);
    }
  }
}

/** The inverse of q6ToX4: row k of the x4 super-block at x[at..] into the GGUF block out[o..o+210). */
function q6FromX4(x: Uint8Array, at: number, k: number, out: Uint8Array, o: number): void {
  out[o + 208] = x[at + 2 * k]!;
  out[o + 209] = x[at + 2 * k + 1]!;
  for (let g = 0; g < 16; g++) out[o + 192 + g] = x[at + 8 + 8 * (g >> 1) + 2 * k + (g & 1)]!;
  const v = q6Values;
  for (let g = 0; g < 16; g++) {
    for (let e = 0; e < 4; e++) {
      const p = at + Q6X4_HEAD + 48 * g + 4 * k + e, i = 16 * g + e, b0 = x[p]!, b1 = x[p + 16]!, b2 = x[p + 32]!;
      v[i] = b0 & 63; v[i + 4] = b1 & 63; v[i + 8] = b2 & 63;
      v[i + 12] = (b0 >> 6) | ((b1 >> 6) << 2) | ((b2 >> 6) << 4);
    }
  }
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const i = 128 * h + l;
      out[o + 64 * h + l] = (v[i]! & 15) | ((v[i + 64]! & 15) << 4);
      out[o + 64 * h + 32 + l] = (v[i + 32]! & 15) | ((v[i + 96]! & 15) << 4);
      out[o + 128 + 32 * h + l] = (v[i]! >> 4) | ((v[i + 32]! >> 4) << 2) | ((v[i + 64]! >> 4) << 4) | ((v[i + 96]! >> 4) << 6);
    }
  }
}

function checkKX4(type: KQuantType, length: number, rows: number, cols: number): void {
  const need = (rows * cols / 256) * K_BLOCK_BYTES[type];
  if (rows % GROUP_ROWS !== 0 || cols % 256 !== 0 || length !== need) {
    throw new RangeError(`repackKX4: ${rows}×${cols} ${type} needs rows % 4 == 0, cols % 256 == 0 and ${need} bytes, got ${length}`);
  }
}

/** Rewrites `bytes` (rows × cols values in GGUF q4_K / q5_K / q6_K super-blocks, rows % 4 == 0) into
 *  the x4 layout, in place (one group of four rows copied aside at a time). */
export function repackKX4(type: KQuantType, bytes: Uint8Array, rows: number, cols: number): void {
  checkKX4(type, bytes.length, rows, cols);
  const BB = K_BLOCK_BYTES[type], nb = cols / 256, groupBytes = GROUP_ROWS * nb * BB;
  for (let g0 = 0; g0 < bytes.length; g0 += groupBytes) {
    const group = bytes.slice(g0, g0 + groupBytes);             // four GGUF rows, one after another
    for (let k = 0; k < GROUP_ROWS; k++) {
      for (let b = 0; b < nb; b++) {
        const src = (k * nb + b) * BB, at = g0 + b * GROUP_ROWS * BB;
        if (type === 'q6_k') { q6ToX4(group, src, bytes, at, k); continue; }
        for (const [from, len, to, step] of KX4_MOVES[type]) bytes.set(group.subarray(src + from, src + from + len), at + to + step * k);
        if (type === 'q4_k') q4Runs(group, src, bytes, at, k, true);
      }
    }
  }
}

/** The GGUF super-blocks of a K-quant x4 matrix again (a copy): the inverse of repackKX4. */
export function unpackKX4(dtype: KRepackedDType, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const type = dtype.slice(0, 4) as KQuantType;
  checkKX4(type, bytes.length, rows, cols);
  const BB = K_BLOCK_BYTES[type], nb = cols / 256, groupBytes = GROUP_ROWS * nb * BB;
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < rows; r++) {
    const k = r & 3;
    for (let b = 0; b < nb; b++) {
      const dst = (r * nb + b) * BB, at = (r >> 2) * groupBytes + b * GROUP_ROWS * BB;
      if (type === 'q6_k') { q6FromX4(bytes, at, k, out, dst); continue; }
      for (const [from, len, to, step] of KX4_MOVES[type]) out.set(bytes.subarray(at + to + step * k, at + to + step * k + len), dst + from);
      if (type === 'q4_k') q4Runs(out, dst, bytes, at, k, false);
    }
  }
  return out;
}

// ---- panels of wide float matrices ---------------------------------------------------------------

/** Rows per group and columns per panel of the panel layout (kernels/matmul.ts declares the same). */
export const PANEL_ROWS = 32;
export const PANEL_COLS = 2048;
export type PanelDType = 'f32p' | 'f16p' | 'bf16p';
type FloatDType = 'f32' | 'f16' | 'bf16';

export function isPanelDType(dtype: WeightDType): dtype is PanelDType {
  return dtype === 'f32p' || dtype === 'f16p' || dtype === 'bf16p';
}

/** The row-major dtype of a panel dtype's values. */
export function panelBase(dtype: PanelDType): FloatDType {
  return dtype.slice(0, -1) as FloatDType;
}

/** Whether a float matrix goes into panels: wider than one panel, in whole groups and panels. */
export function panelsFit(rows: number, cols: number): boolean {
  return cols > PANEL_COLS && cols % PANEL_COLS === 0 && rows % PANEL_ROWS === 0;
}

/** Index of value (r, c) of a rows × cols matrix in the panel layout, in values. */
export function panelIndex(cols: number, r: number, c: number): number {
  return (r - (r % PANEL_ROWS)) * cols + (c - (c % PANEL_COLS)) * PANEL_ROWS + (r % PANEL_ROWS) * PANEL_COLS + (c % PANEL_COLS);
}

/** Where each panel of row r lies (byte pointer from w) and its first column. */
export function panelRowParts(dtype: PanelDType, w: number, r: number, cols: number): [number, number][] {
  const es = dtype === 'f32p' ? 4 : 2, parts: [number, number][] = [];
  for (let c = 0; c < cols; c += PANEL_COLS) parts.push([w + panelIndex(cols, r, c) * es, c]);
  return parts;
}

function checkPanels(fn: string, dtype: string, bytes: Uint8Array, rows: number, cols: number, es: number): void {
  if (!panelsFit(rows, cols) || bytes.length !== rows * cols * es) {
    throw new RangeError(`${fn}: ${rows}×${cols} ${dtype} needs rows % ${PANEL_ROWS} == 0, cols a multiple of ${PANEL_COLS} above it, and ${rows * cols * es} bytes, got ${bytes.length}`);
  }
}

/** Rewrites `bytes` (rows × cols row-major values of a float dtype) into panels, in place (one group
 *  of rows copied aside at a time). */
export function repackPanels(dtype: FloatDType, bytes: Uint8Array, rows: number, cols: number): void {
  const es = dtype === 'f32' ? 4 : 2;
  checkPanels('repackPanels', dtype, bytes, rows, cols, es);
  const groupBytes = PANEL_ROWS * cols * es, runBytes = PANEL_COLS * es, rowBytes = cols * es;
  const group = new Uint8Array(groupBytes);
  for (let g = 0; g < rows / PANEL_ROWS; g++) {
    const base = g * groupBytes;
    group.set(bytes.subarray(base, base + groupBytes));
    for (let k = 0; k < PANEL_ROWS; k++) {
      for (let p = 0; p < cols / PANEL_COLS; p++) {
        const from = k * rowBytes + p * runBytes;
        bytes.set(group.subarray(from, from + runBytes), base + (p * PANEL_ROWS + k) * runBytes);
      }
    }
  }
}

/** The row-major values of a panel matrix again (a copy): the inverse of repackPanels. */
export function unpackPanels(dtype: PanelDType, bytes: Uint8Array, rows: number, cols: number): Uint8Array {
  const es = dtype === 'f32p' ? 4 : 2;
  checkPanels('unpackPanels', dtype, bytes, rows, cols, es);
  const out = new Uint8Array(bytes.length), runBytes = PANEL_COLS * es;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c += PANEL_COLS) {
      const from = panelIndex(cols, r, c) * es;
      out.set(bytes.subarray(from, from + runBytes), (r * cols + c) * es);
    }
  }
  return out;
}
