// The random-weight GGUF files the benchmarks run on: one per (shape, dtype), with the shapes of real
// models (src/testing/checkpoints.ts), written once into $TESSERA_BENCH_DIR (default
// ~/.cache/tessera/bench/<shape>/model-<dtype>.gguf) and reused by every benchmark.

import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BENCH_PRESETS, writeTestCheckpoint, type CheckpointFormat, type PresetName } from '../testing/checkpoints.js';

export const BENCH_DTYPES = ['f32', 'f16', 'q8_0', 'q4_0'] as const;
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
  const path = join(dir, `model-${dtype}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(dir, { recursive: true });
  onWrite?.(path);
  return writeTestCheckpoint(dir, shape as PresetName, { formats: [`gguf-${dtype}` as CheckpointFormat] }).gguf[dtype as BenchDType]!;
}
