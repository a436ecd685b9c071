// What a checkpoint reader hands to the model loader: a table of tensors (name, dtype, shape and the
// byte range that holds them) plus a way to copy those bytes into memory the caller owns. Readers
// validate every entry before returning, so an entry's byte range is always inside its file.
// Shapes are outermost-first (PyTorch order: a Linear weight is [out_features, in_features]); the GGUF
// reader reverses GGUF's ne[] order to match.

import type { WeightDType } from '../kernels/types.js';

/** Most tensors one checkpoint file may list (GGUF or safetensors). Released models have at most a few
 *  thousand per file (Llama 3.1 405B: 1,138; MoE shards a few thousand); the cap bounds the memory a
 *  header of millions of zero-size tensors would take (each entry costs a few hundred bytes in JS). */
export const MAX_TENSORS_PER_FILE = 1 << 16;

/** Weight dtypes plus the integer/other dtypes a file may legally contain (not loadable as weights). */
export type TensorDType = WeightDType | 'f64' | 'i8' | 'u8' | 'i16' | 'u16' | 'i32' | 'u32' | 'i64' | 'u64' | 'bool' | 'other';

export interface TensorEntry {
  name: string;
  dtype: TensorDType;
  shape: number[];
  /** Path of the file holding the bytes. */
  file: string;
  /** Absolute byte offset of the first byte in `file`. */
  offset: number;
  byteLength: number;
}

export interface TensorSource {
  /** Human-readable origin, used in error messages. */
  readonly description: string;
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  /** Copies the entry's bytes into dst (dst.byteLength must equal entry.byteLength). */
  read(entry: TensorEntry, dst: Uint8Array): void;
  /** Releases file handles. */
  close(): void;
}
