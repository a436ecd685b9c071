// The kernel contract. Every compute kernel in Tessera works on one linear memory (an arena, see
// src/runtime/arena.ts) and takes byte offsets ("pointers") and sizes; kernels allocate nothing.
// Two implementations exist side by side:
//   - src/kernels/wasm.ts       the WebAssembly SIMD build of kernels/*.ts (AssemblyScript) — the fast path
//   - src/kernels/reference.ts  plain TypeScript over typed-array views of the same memory — the test oracle
// Both implement `Kernels`, and tests run the same cases through both (sizes not multiple of 4/32).
//
// Shape legend: n = tokens in a batch, rows/cols = weight matrix shape (row-major, rows = out features),
// H = query heads, Hkv = key/value heads, D = head dim, S = keys in the cache.
// All activations are f32. Weights may be f32, f16, bf16, GGUF q8_0 / q4_0 blocks or GGUF K-quant
// super-blocks (q4_K, q5_K, q6_K; layouts in ./k-quants.ts).
// Kernels that can be split across threads take a half-open range [r0, r1) of rows or heads.

/** Byte offset into one arena's linear memory. Always < 2^32. */
export type Ptr = number;

/** Storage type of a weight matrix. Quantised types use GGUF block layouts:
 *  q8_0: blocks of 32 values = f16 scale d + 32 × int8 q           (34 bytes), x = d·q
 *  q4_0: blocks of 32 values = f16 scale d + 16 bytes of nibbles   (18 bytes), x = d·(q − 8);
 *        byte j holds element j (low nibble) and element j+16 (high nibble).
 *  q4_k / q5_k / q6_k: super-blocks of 256 values (144 / 176 / 210 bytes), see ./k-quants.ts.
 *  q8_0x4 / q4_0x4: the same blocks repacked in memory at load (./repack.ts), four rows interleaved
 *        with their scales apart; never in a file. Same size as q8_0 / q4_0, rows % 4 == 0. */
export type WeightDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_0x4' | 'q4_0x4';

/** The form a matmul takes its input X in: f32, q8_0 blocks (for q8_0 / q4_0 weights) or q8_K
 *  super-blocks (for K-quant weights) — llama.cpp's pairing, so the integer dot products match it. */
export type ActivationFormat = 'f32' | 'q8_0' | 'q8_K';

export function activationFormat(dtype: WeightDType): ActivationFormat {
  switch (dtype) {
    case 'q8_0': case 'q4_0': case 'q8_0x4': case 'q4_0x4': return 'q8_0';
    case 'q4_k': case 'q5_k': case 'q6_k': return 'q8_K';
    default: return 'f32';
  }
}

/** Bytes of `count` activations in a quantised format (count a multiple of its block: 32 or 256). */
export function activationBytes(format: 'q8_0' | 'q8_K', count: number): number {
  return format === 'q8_0' ? (count / 32) * 34 : (count / 256) * 292;
}

/** Values per block of a weight dtype: a matrix's cols must be a multiple of it. */
export function blockValues(dtype: WeightDType): number {
  switch (dtype) {
    case 'q8_0': case 'q4_0': case 'q8_0x4': case 'q4_0x4': return 32;
    case 'q4_k': case 'q5_k': case 'q6_k': return 256;
    default: return 1;
  }
}

/** Storage type of the KV cache rows. */
export type CacheDType = 'f32' | 'f16';

/** Where the K/V rows of a cache lie, relative to the pool base pointer: row s at s·rowBytes when
 *  `pages` is 0 (contiguous), else at pages[s >> pageShift] + (s mod 2^pageShift)·rowBytes, where
 *  `pages` points to one u32 byte offset per page. K and V pools share one layout, so one table
 *  serves both. */
export interface KVRows { readonly rowBytes: number; readonly pages: Ptr; readonly pageShift: number }

/** Byte offset of row s (see KVRows), for TypeScript-side readers of the rows. */
export function kvRowOffset(rows: KVRows, s: number, table?: Uint32Array): number {
  if (rows.pages === 0) return s * rows.rowBytes;
  const shift = rows.pageShift;
  return table![s >>> shift]! + (s & ((1 << shift) - 1)) * rows.rowBytes;
}

/** Rotary embedding layout. 'neox': pairs (i, i + D/2) (Hugging Face rotate_half).
 *  'normal': adjacent pairs (2i, 2i+1) (llama.cpp's LLAMA_ROPE_TYPE_NORM, used with GGUF's permuted Q/K). */
export type RopeStyle = 'neox' | 'normal';

/** Bytes needed to store `count` elements of a weight dtype (count a multiple of blockValues(dtype)). */
export function weightBytes(dtype: WeightDType, count: number): number {
  switch (dtype) {
    case 'f32': return count * 4;
    case 'f16': case 'bf16': return count * 2;
    case 'q8_0': case 'q8_0x4': return (count / 32) * 34;
    case 'q4_0': case 'q4_0x4': return (count / 32) * 18;
    case 'q4_k': return (count / 256) * 144;
    case 'q5_k': return (count / 256) * 176;
    case 'q6_k': return (count / 256) * 210;
    default: { const never: never = dtype; throw new Error(`weightBytes: unknown dtype ${String(never)}`); }
  }
}

/** Scratch bytes of the attention kernel (Kernels.attention's `state`) for up to n queries: each
 *  (query, head)'s online-softmax max and sum, n·H·2 f32, then per query head the scratch of a
 *  block of rows = min(ATTENTION_ROWS, n·min(H/Hkv, ATTENTION_ROWS)) query rows: per row
 *  2·ATTENTION_TILE f32 of scores and its query scaled (D f32). A thread's slice of heads starting
 *  at head h uses the scratch of head h; kernels/attention.ts reads the same layout. */
export function attentionStateBytes(n: number, H: number, Hkv: number, D: number): number {
  const softmax = Math.ceil((n * H * 8) / 16) * 16;
  return 16 + softmax + H * attentionBlockRows(n, H, Hkv) * (ATTENTION_TILE * 8 + D * 4);
}

/** Query rows of one block of the attention kernel for n queries (kernels/attention.ts blockRows). */
export function attentionBlockRows(n: number, H: number, Hkv: number): number {
  return Math.min(ATTENTION_ROWS, n * Math.min(H / Hkv, ATTENTION_ROWS));
}

/** Keys per tile and most query rows per block of the attention kernel (kernels/attention.ts TILE
 *  and ROWS): they size its score buffers. */
export const ATTENTION_TILE = 32;
export const ATTENTION_ROWS = 32;

/** The i32 words of one item of Kernels.attentionBatch's table (kernels/attention.ts reads the same
 *  indices): one sequence's attention call, as Kernels.attention's per-sequence arguments. */
export const ATTENTION_ITEM = { Q: 0, QPOS: 1, OUT: 2, N: 3, S: 4, PAGES: 5, STATE: 6 } as const;
export const ATTENTION_ITEM_WORDS = 8;

export interface Kernels {
  /** Y (n, rows) = X (n, cols) · Wᵀ for output rows [r0, r1); W (rows, cols) stored as `dtype`.
   *  For quantised dtypes `x` must point to X already in activationFormat(dtype): q8_0 blocks from
   *  `quantizeQ8(x, xq, n*cols)` for q8_0 / q4_0, q8_K from `quantizeQ8K` for K-quants (llama.cpp
   *  does the same, so the integer dot products match it); otherwise `x` is f32.
   *  cols must be a multiple of blockValues(dtype). n = 1 is the decode (matrix–vector) case. */
  matmul(dtype: WeightDType, w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;

  /** xq = q8_0 blocks of x (count values, count % 32 == 0): per block d = max|x|/127, q = round(x/d). */
  quantizeQ8(x: Ptr, xq: Ptr, count: number): void;

  /** xq = q8_K super-blocks of x (count % 256 == 0), llama.cpp's quantize_row_q8_K_ref: per 256 values
   *  max = the value of largest magnitude, d = max/−127, q = min(127, round-half-even(x/d)), plus the
   *  sums of each 16 q. */
  quantizeQ8K(x: Ptr, xq: Ptr, count: number): void;

  /** dst (count) f32 = src (count) converted from dtype (dequantisation, f16/bf16 widening, copy);
   *  not for the x4 layouts, whose rows are interleaved (rowToF32 reads those). */
  toF32(dtype: WeightDType, src: Ptr, dst: Ptr, count: number): void;

  /** dst (cols) f32 = row `row` of the matrix at w (cols per row) stored as dtype, x4 layouts
   *  included: an embedding lookup. Same values as toF32 of that row's GGUF blocks. */
  rowToF32(dtype: WeightDType, w: Ptr, row: number, cols: number, dst: Ptr): void;

  /** y (n, dim) = x / sqrt(mean(x²) + eps) ⊙ w;  w (dim) f32. y may equal x. */
  rmsNorm(x: Ptr, w: Ptr, y: Ptr, n: number, dim: number, eps: number): void;

  /** y (n, dim) = (x − mean) / sqrt(var + eps) ⊙ w (+ b if b != 0); y may equal x. */
  layerNorm(x: Ptr, w: Ptr, b: Ptr, y: Ptr, n: number, dim: number, eps: number): void;

  /** Rotates x (n, heads, D) in place. pos (n) i32 absolute positions; invFreq (D/2) f32 per pair,
   *  already including any rope scaling. angle = pos·invFreq[i]. */
  rope(x: Ptr, pos: Ptr, invFreq: Ptr, n: number, heads: number, headDim: number, style: RopeStyle): void;

  /** In place softmax over each of the n rows of length len (rows of -Infinity only → all zeros). */
  softmax(x: Ptr, n: number, len: number): void;

  /** gate (count) = silu(gate) ⊙ up  (SwiGLU). */
  siluMul(gate: Ptr, up: Ptr, count: number): void;
  /** gate (count) = gelu_tanh(gate) ⊙ up  (GeGLU). */
  geluMul(gate: Ptr, up: Ptr, count: number): void;

  /** y (count) += x (count). */
  add(y: Ptr, x: Ptr, count: number): void;
  /** y (rows, cols) += bias (cols) broadcast over rows. */
  addBias(y: Ptr, bias: Ptr, rows: number, cols: number): void;

  /** Causal attention over a KV cache, for query heads [h0, h1).
   *  q   (n, H, D) f32 — queries of n new tokens whose absolute positions are qPos (n, i32)
   *  k,v (S, Hkv, D) in cacheDType — rows 0..S-1 of the cache, row s holds position s; contiguous
   *      when `pages` is 0, else paged: row s lies at k + pages[s >> pageShift] + (s mod 2^pageShift)·rowBytes
   *      (`pages`: u32 byte offsets, one per page of at least 4 rows; K and V pools share one layout)
   *  out (n, H, D) f32
   *  state: attentionStateBytes(n, H, Hkv, D) bytes of scratch (never 0), not shared with
   *      another call running at the same time. The key tiles run outermost for all n queries and
   *      the heads of a GQA group (flash attention), so each K/V tile is read (and widened from f16)
   *      once for all of them; a query's result bits are the same whatever n, the other queries and
   *      the head range [h0, h1) (one query at a time gives the bits of a chunk, and of a batch).
   *  Token i attends to cache rows s <= qPos[i] (and s < S); query head h reads KV head h / (H/Hkv).
   *  Scores are scaled by `scale` (normally 1/sqrt(D)); softmax is computed online (one pass, no
   *  scores buffer beyond one tile), so memory does not grow with S. */
  attention(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
            n: number, S: number, H: number, Hkv: number, D: number, scale: number, pages: Ptr, pageShift: number,
            state: Ptr, h0: number, h1: number): void;

  /** Kernels.attention of `count` sequences that share one K/V pool (one layer's pages), for work
   *  units [u0, u1): unit u is query head u mod H of item ⌊u / H⌋ of `table` (count ×
   *  ATTENTION_ITEM_WORDS i32 words: each item's q, qPos, out, n, S, page table and state, as
   *  Kernels.attention takes them; each item's state its own). One job covers every sequence of a step; each item's result
   *  bits are those of Kernels.attention on its own. */
  attentionBatch(table: Ptr, count: number, k: Ptr, v: Ptr, cacheDType: CacheDType, H: number, Hkv: number, D: number,
                 scale: number, pageShift: number, u0: number, u1: number): void;

  /** dst (count) in cacheDType = src (count) f32 (used to append K/V rows to an f16 cache). */
  storeRows(cacheDType: CacheDType, src: Ptr, dst: Ptr, count: number): void;
}
