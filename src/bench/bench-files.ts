// The random-weight GGUF files the benchmarks run on: one per (shape, dtype), with the shapes of real
// models (src/testing/checkpoints.ts), written once into $TESSERA_BENCH_DIR (default
// ~/.cache/tessera/bench/<shape>/model-<dtype>.gguf) and reused by every benchmark. K-quant files
// (q4_k_m, q5_k_m, q6_k) are the f32 file through `tessera quantize`.

import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PRESETS, presetConfig, writeTestCheckpoint, type CheckpointFormat, type PresetName } from '../testing/checkpoints.js';
import { derive } from '../models/config.js';

export const BENCH_DTYPES = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'q6_k'] as const;
export type BenchDType = (typeof BENCH_DTYPES)[number];

/** The cache folder of the bench files. */
export function benchDir(): string {
  return process.env.TESSERA_BENCH_DIR ?? join(homedir(), '.cache', 'tessera', 'bench');
}

/** The bench GGUF for (shape, dtype), written on first use (`onWrite` is told before the write). */
export function benchFile(shape: string, dtype: string, onWrite?: (path: string) => void): string {
  if (!(BENCH_PRESETS as readonly string[]).includes(shape)) throw new Error(`bench: unknown shape ${shape}; choose from ${BENCH_PRESETS.join(', ')}`);
  if (!(BENCH_DTYPES as readonly string[]).includes(dtype)) throw new Error(`bench: unknown dtype ${dtype}; choose from ${BENCH_DTYPES.join(', ')}`);
  const dir = join(benchDir(), shape);
  const path = benchFilePath(shape, dtype);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  onWrite?.(path);
  return writeTestCheckpoint(dir, shape as PresetName, { formats: [`gguf-${dtype}` as CheckpointFormat] }).gguf[dtype as BenchDType]!;
}

// K-quant mixes are sized by their main type (q4_k_m / q5_k_m keep some tensors in q6_K: a slight underestimate)
const BYTES_PER_WEIGHT: Record<BenchDType, number> = { f32: 4, f16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q4_k_m: 144 / 256, q5_k_m: 176 / 256, q6_k: 210 / 256 };

/** The size a bench file will have, from the shape alone (matrices in `dtype`, norms f32; the small
 *  header and vocabulary are left out), so the user is told before gigabytes are written. */
export function estimatedBenchFileBytes(shape: PresetName, dtype: BenchDType): number {
  const c = presetConfig(shape), d = derive(c), h = c.hidden_size;
  const perLayer = h * d.qDim * 2 + h * d.kvDim * 2 + 3 * h * c.intermediate_size;
  const matrices = c.num_hidden_layers * perLayer + c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2);
  const norms = (2 * c.num_hidden_layers + 1) * h;
  return matrices * BYTES_PER_WEIGHT[dtype] + norms * 4;
}

/** The bench file's path whether or not it exists yet. */
export function benchFilePath(shape: string, dtype: string): string {
  return join(benchDir(), shape, `model-${dtype}.gguf`);
}
