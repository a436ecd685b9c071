// The word layout of a MagicPIG decode descriptor (kernels/sparse.ts reads the same indices): one
// block of i32 words per layer in its arena, written once at creation and patched per step, so the
// pool op needs a single pointer argument whichever thread runs which heads.

export const DESC = {
  Q: 0, OUT: 1, K: 2, V: 3, F16: 4, ROW: 5, H: 6, HKV: 7, D: 8, SCALE: 9, KBITS: 10, L: 11,
  R: 12, MU: 13, KNORM: 14, CAP: 15, MAIN_OFF: 16, MAIN_IDS: 17, MAIN_STRIDE: 18,
  DELTA_OFF: 19, DELTA_IDS: 20, DELTA_STRIDE: 21, COUNTERS: 22, LISTS: 23, LOGU: 24, LOGU_N: 25,
  DENSE_IDS: 26, DENSE_N: 27, STATS: 28, QB: 29, PARTS: 30, DELTA_N: 31, MAIN_N: 32,
  SCRATCH: 33, ID_LO: 34, ID_HI: 35, PAGES: 36, PAGE_SHIFT: 37,
} as const;
export const DESC_WORDS = 38;

/** Logits per chunk of the kernel's two-pass softmax; SCRATCH holds this many f32 per query head. */
export const MAGICPIG_CHUNK = 64;

/** Bytes of one query head's slot in COUNTERS: the kernel's hit bits (one u64 per 32 token ids)
 *  and the twin's u8 counter per token both fit. */
export function counterStride(cap: number): number { return Math.max(cap, ((cap + 31) >> 5) * 8); }

