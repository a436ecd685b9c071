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
 *        with their scales apart; never in a file. Same size as q8_0 / q4_0, rows % 4 == 0.
 *  q4_kx4 / q5_kx4 / q6_kx4: the K-quant super-blocks repacked likewise (./repack.ts); same size
 *        as q4_k / q5_k / q6_k, rows % 4 == 0.
 *  f32p / f16p / bf16p: wide float matrices in panels (./repack.ts), made at load: groups of 32 rows,
 *        each cut into panels of 2048 columns; rows % 32 == 0, cols % 2048 == 0. A row's dot product
 *        is the sum of its panels' in order. Same size as f32 / f16 / bf16. */
export type WeightDType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q5_k' | 'q6_k' | 'q8_0x4' | 'q4_0x4'
  | 'q4_kx4' | 'q5_kx4' | 'q6_kx4' | 'f32p' | 'f16p' | 'bf16p';

/** The form a matmul takes its input X in: f32, q8_0 blocks (for q8_0 / q4_0 weights) or q8_K
 *  super-blocks (for K-quant weights) — llama.cpp's pairing, so the integer dot products match it. */
export type ActivationFormat = 'f32' | 'q8_0' | 'q8_K';

export function activationFormat(dtype: WeightDType): ActivationFormat {
  switch (dtype) {
    case 'q8_0': case 'q4_0': case 'q8_0x4': case 'q4_0x4': return 'q8_0';
    case 'q4_k': case 'q5_k': case 'q6_k': case 'q4_kx4': case 'q5_kx4': case 'q6_kx4': return 'q8_K';
    default: return 'f32';
  }
}

/** Bytes of `count` activations in a quantised format (count a multiple of its block: 32 or 256).
 *  q8_0: count/32 blocks of 34 bytes (GGUF's block_q8_0: f16 d, 32 i8 q), then, from
 *  q8BlockSumsOffset, one entry of Q8_SUMS_BYTES per block: the i32 Σq of its quants, its d × 2^112 as
 *  f32 (exact and finite for a finite d; the x4 kernels multiply it by weight scales read as value ×
 *  2^-112), the
 *  i32 Σ|q| of its negative quants and the i32 8·Σq (what q4_0's offset 8, the x4 kernels' scales and
 *  q8_0 x4's sign trick take per block; llama.cpp's q8_1 keeps such a sum too).
 *  q8_K: count/256 blocks of 292 bytes (f32 d, 256 i8 q, 16 i16 sums of 16 q). */
export function activationBytes(format: 'q8_0' | 'q8_K', count: number): number {
  return format === 'q8_0' ? q8BlockSumsOffset(count) + (count / 32) * Q8_SUMS_BYTES : (count / 256) * 292;
}

/** Bytes of one q8_0 activation block's entry in its block sums (kernels/quant.ts and
 *  kernels/matmul-quant-x4.ts step by the same). */
export const Q8_SUMS_BYTES = 16;

/** Byte offset of q8_0 activations' block sums (see activationBytes): the blocks' end, rounded up to 16
 *  (kernels/quant.ts computes the same). */
export function q8BlockSumsOffset(count: number): number {
  return Math.ceil((count / 32) * 34 / 16) * 16;
}

/** Values per block of a weight dtype: a matrix's cols must be a multiple of it. */
export function blockValues(dtype: WeightDType): number {
  switch (dtype) {
    case 'q8_0': case 'q4_0': case 'q8_0x4': case 'q4_0x4': return 32;
    case 'q4_k': case 'q5_k': case 'q6_k': case 'q4_kx4': case 'q5_kx4': case 'q6_kx4': return 256;
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
    case 'f32': case 'f32p': return count * 4;
    case 'f16': case 'bf16': case 'f16p': case 'bf16p': return count * 2;
    case 'q8_0': case 'q8_0x4': return (count / 32) * 34;
    case 'q4_0': case 'q4_0x4': return (count / 32) * 18;
    case 'q4_k': case 'q4_kx4': return (count / 256) * 144;
    case 'q5_k': case 'q5_kx4': return (count / 256) * 176;
    case 'q6_k': case 'q6_kx4': return (count / 256) * 210;
    default: { const never: never = dtype; throw new Error(`weightBytes: unknown dtype ${String(never)}`); }
  }
}

/** Scratch bytes of the attention kernel (Kernels.attention's and attentionChunks' `state`) for up
 *  to n queries over up to `keys` keys, in this order, each area 16-byte aligned (kernels/attention.ts
 *  reads the same layout):
 *  - each (query, head)'s online-softmax max and sum, n·H·2 f32;
 *  - per query head the scratch of a block of rows = min(ATTENTION_ROWS, n·min(H/Hkv, ATTENTION_ROWS))
 *    query rows: per row 2·ATTENTION_TILE f32 of scores and its query scaled (D f32); a head slice
 *    starting at head h uses the scratch of head h;
 *  past one chunk (keys > ATTENTION_CHUNK):
 *  - partial results, per row D + 2 f32 (unnormalised output, max, sum): one slot of n·H rows for a
 *    head slice, or chunks − 1 slots for a call split by key chunks (attentionSplitsKeys);
 *  - per (chunk, KV head) unit the block scratch of min(n, ATTENTION_SPLIT_QUERIES) queries, used by
 *    the attentionChunks slice that starts at that unit.
 *  Grows with n and keys, so scratch declared for (nMax, capacity) serves every smaller call. */
export function attentionStateBytes(n: number, H: number, Hkv: number, D: number, keys: number): number {
  const up16 = (x: number) => Math.ceil(x / 16) * 16;
  const rowBytes = ATTENTION_TILE * 8 + D * 4;
  const fixed = 16 + up16(n * H * 8) + up16(H * attentionBlockRows(n, H, Hkv) * rowBytes);
  if (keys <= ATTENTION_CHUNK) return fixed;
  const chunks = attentionChunkCount(keys), splitN = Math.min(n, ATTENTION_SPLIT_QUERIES);
  const partials = H * Math.max(n, splitN * (chunks - 1)) * (D + 2) * 4;
  return fixed + up16(partials) + Hkv * chunks * attentionBlockRows(splitN, H, Hkv) * rowBytes;
}

/** Key chunks of a call over S keys (kernels/attention.ts chunkCount): 1 up to ATTENTION_CHUNK keys. */
export function attentionChunkCount(S: number): number {
  return S <= ATTENTION_CHUNK ? 1 : Math.ceil(S / ATTENTION_CHUNK);
}

/** Whether n queries over S keys run as (key chunk, KV head) units, Kernels.attentionChunks then
 *  attentionMerge (kernels/attention.ts splitsKeys): past one chunk, for up to
 *  ATTENTION_SPLIT_QUERIES queries (decode, a speculative verification). Depends on neither the
 *  threads nor the batch; either way a row gets the same bits. */
export function attentionSplitsKeys(n: number, S: number): boolean {
  return S > ATTENTION_CHUNK && n <= ATTENTION_SPLIT_QUERIES;
}

/** Throws unless attentionSplitsKeys(n, S): what Kernels.attentionChunks needs. */
export function checkSplitsKeys(n: number, S: number): void {
  if (!attentionSplitsKeys(n, S)) {
    throw new RangeError(`attentionChunks: ${n} queries over ${S} keys are not split by key chunks (that takes more than ` +
      `${ATTENTION_CHUNK} keys and at most ${ATTENTION_SPLIT_QUERIES} queries: attentionSplitsKeys); call attention instead`);
  }
}

/** Throws unless [b0, b1) is a range of whole blocks inside the count / 32 blocks of a quantisation
 *  (Kernels.quantizeQ8's slices). */
export function checkBlockRange(name: string, count: number, b0: number, b1: number): void {
  const nb = count / 32;
  if (!(Number.isInteger(nb) && Number.isInteger(b0) && Number.isInteger(b1) && 0 <= b0 && b0 <= b1 && b1 <= nb)) {
    throw new RangeError(`${name}: blocks [${b0}, ${b1}) are not a range inside the ${nb} blocks of ${count} values (count % 32 == 0, 0 ≤ b0 ≤ b1 ≤ count/32)`);
  }
}

/** Byte offset of partial slot j in an attention state at `state` (kernels/attention.ts partialSlot):
 *  (n, H, D) f32 unnormalised outputs, then (n, H, 2) f32 max and sum. */
export function attentionPartialSlot(state: Ptr, n: number, H: number, Hkv: number, D: number, j: number): Ptr {
  const up16 = (x: number) => Math.ceil(x / 16) * 16;
  const heads = up16(state + n * H * 8) + H * attentionBlockRows(n, H, Hkv) * (ATTENTION_TILE * 8 + D * 4);
  return up16(heads) + j * n * H * (D + 2) * 4;
}

/** Work units of one call: Hkv·chunks when split by key chunks, else H (one per query head). */
export function attentionUnits(n: number, S: number, H: number, Hkv: number): number {
  return attentionSplitsKeys(n, S) ? Hkv * attentionChunkCount(S) : H;
}

/** The work of unit u of a call (attentionUnits numbers them), in keys × query rows read: a unit
 *  split by key chunks holds its chunk's keys (the last chunk may hold only a few) for a GQA group,
 *  a query head unit all S keys. The pool splits units by this cost, not by their count. */
export function attentionUnitCost(n: number, S: number, H: number, Hkv: number, u: number): number {
  if (!attentionSplitsKeys(n, S)) return n * S;
  const c = Math.floor(u / Hkv);
  return n * (H / Hkv) * (Math.min(S, (c + 1) * ATTENTION_CHUNK) - c * ATTENTION_CHUNK);
}

/** Query rows of one block of the attention kernel for n queries (kernels/attention.ts blockRows). */
export function attentionBlockRows(n: number, H: number, Hkv: number): number {
  return Math.min(ATTENTION_ROWS, n * Math.min(H / Hkv, ATTENTION_ROWS));
}

/** Keys per tile and most query rows per block of the attention kernel (kernels/attention.ts TILE
 *  and ROWS): they size its score buffers. */
export const ATTENTION_TILE = 32;
export const ATTENTION_ROWS = 32;
/** Keys per chunk and most queries of a call split by key chunks (kernels/attention.ts CHUNK and
 *  SPLIT_QUERIES). Chunk boundaries are fixed multiples of ATTENTION_CHUNK, so no split moves them. */
export const ATTENTION_CHUNK = 2048;
export const ATTENTION_SPLIT_QUERIES = 8;

/** The i32 words of one item of Kernels.attentionBatch's table (kernels/attention.ts reads the same
 *  indices): one sequence's attention call, as Kernels.attention's per-sequence arguments, and the
 *  index of its first work unit (the sum of attentionUnits over the items before it). */
export const ATTENTION_ITEM = { Q: 0, QPOS: 1, OUT: 2, N: 3, S: 4, PAGES: 5, STATE: 6, FIRST: 7 } as const;
export const ATTENTION_ITEM_WORDS = 8;

export interface Kernels {
  /** Y (n, rows) = X (n, cols) · Wᵀ for output rows [r0, r1); W (rows, cols) stored as `dtype`.
   *  For quantised dtypes `x` must point to X already in activationFormat(dtype): q8_0 blocks from
   *  `quantizeQ8(x, xq, n*cols)` for q8_0 / q4_0 — for exactly these n rows, as the block sums after
   *  the blocks lie where n·cols puts them — q8_K from `quantizeQ8K` for K-quants (llama.cpp does the
   *  same, so the integer dot products match it); otherwise `x` is f32.
   *  cols must be a multiple of blockValues(dtype). n = 1 is the decode (matrix–vector) case. */
  matmul(dtype: WeightDType, w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;

  /** xq = q8_0 blocks of x (count values, count % 32 == 0): per block d = max|x|/127, q = round(x/d);
   *  then the blocks' sums (activationBytes('q8_0', count) bytes in all). With [b0, b1) only those
   *  blocks and their sums (the padding before the sums with the range ending at the last block):
   *  slices that cover [0, count/32) write what one call does. */
  quantizeQ8(x: Ptr, xq: Ptr, count: number, b0?: number, b1?: number): void;

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
  /** out (n, F) = silu(gu[:, :F]) ⊙ gu[:, F:]: siluMul on the stacked gate|up rows gu (n, 2F) of one
   *  matmul, without splitting them first; the same values as siluMul. */
  siluMulStacked(gu: Ptr, out: Ptr, n: number, F: number): void;
  /** out (n, F) = gelu_tanh(gu[:, :F]) ⊙ gu[:, F:] (as siluMulStacked). */
  geluMulStacked(gu: Ptr, out: Ptr, n: number, F: number): void;

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
   *  state: attentionStateBytes(n, H, Hkv, D, S) bytes of scratch (never 0), not shared with
   *      another call running at the same time. The key tiles run outermost for all n queries and
   *      the heads of a GQA group (flash attention), so each K/V tile is read (and widened from f16)
   *      once for all of them; a query's result bits are the same whatever n, the other queries and
   *      the head range [h0, h1) (one query at a time gives the bits of a chunk, and of a batch).
   *      Past ATTENTION_CHUNK keys each fixed chunk of keys gives a partial result that is folded
   *      into the row in chunk order: the bits of attentionChunks + attentionMerge.
   *  Token i attends to cache rows s <= qPos[i] (and s < S); query head h reads KV head h / (H/Hkv).
   *  Scores are scaled by `scale` (normally 1/sqrt(D)); softmax is computed online (one pass, no
   *  scores buffer beyond one tile), so memory does not grow with S beyond the chunks' partials. */
  attention(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
            n: number, S: number, H: number, Hkv: number, D: number, scale: number, pages: Ptr, pageShift: number,
            state: Ptr, h0: number, h1: number): void;

  /** Kernels.attention split by key chunks (flash decoding), for a call where
   *  attentionSplitsKeys(n, S): work units [u0, u1) of Hkv·attentionChunkCount(S), unit u = chunk
   *  ⌊u / Hkv⌋ (keys [c·ATTENTION_CHUNK, (c + 1)·ATTENTION_CHUNK) ∩ [0, S)) of KV head u mod Hkv,
   *  all its query heads. Each unit writes its rows' partial result (chunk 0 into out and the
   *  softmax state, chunk c > 0 into the state's partial slot c − 1); once every unit has run,
   *  attentionMerge gives the bits Kernels.attention gives. Same arguments as attention. */
  attentionChunks(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
                  n: number, S: number, H: number, Hkv: number, D: number, scale: number, pages: Ptr, pageShift: number,
                  state: Ptr, u0: number, u1: number): void;

  /** After attentionChunks over all its units: folds the chunks' partials into out in chunk order
   *  and normalises the rows. */
  attentionMerge(qPos: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number, D: number, state: Ptr): void;

  /** Kernels.attention of `count` sequences that share one K/V pool (one layer's pages), for work
   *  units [u0, u1) of Σ attentionUnits over the items of `table` (count × ATTENTION_ITEM_WORDS i32
   *  words: each item's q, qPos, out, n, S, page table and state, as Kernels.attention takes them,
   *  each item's state its own, and the index of its first unit). An item's units are those of
   *  attentionChunks when attentionSplitsKeys(n, S), else one per query head; attentionBatchMerge
   *  then finishes the split items. One job covers every sequence of a step; each item's result
   *  bits are those of Kernels.attention on its own. */
  attentionBatch(table: Ptr, count: number, k: Ptr, v: Ptr, cacheDType: CacheDType, H: number, Hkv: number, D: number,
                 scale: number, pageShift: number, u0: number, u1: number): void;

  /** After attentionBatch over all units: attentionMerge of every item split by key chunks. */
  attentionBatchMerge(table: Ptr, count: number, H: number, Hkv: number, D: number): void;

  /** dst (count) in cacheDType = src (count) f32 (used to append K/V rows to an f16 cache). */
  storeRows(cacheDType: CacheDType, src: Ptr, dst: Ptr, count: number): void;
}
