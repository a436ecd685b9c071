// MagicPIG table build benchmark: the time LshTables.build takes over N cached keys of one layer
// (SmolLM2-135M shape by default: 3 KV heads of dim 64, f16 cache, K=10, L=150), per thread count.
// Uses only LshTables' public API (constructor, build, lastBuildMs, lshTableSizes), so the same
// compiled file can be copied into an older build tree and run there to compare two versions:
//
//   node dist/src/bench/lsh-build.js [--tokens 16384] [--threads 1,2] [--kvHeads 3] [--headDim 64]
//        [--K 10] [--L 150] [--repeat 2] [--json]
//
// Keys are Gaussian with a per-dimension offset (real keys are not centered), seeded, so every
// version hashes the same rows. Prints the best of --repeat builds per thread count, and the
// projection to a whole model: seconds × sparse layers.

import { Arena, planArena } from '../runtime/arena.js';
import { ThreadPool } from '../runtime/pool.js';
import { singleSequenceKV, singleSequenceKVBytes } from '../attention/kv-store.js';
import { LshTables, lshTableSizes, type LshDims } from '../attention/lsh-tables.js';
import type { LayerAttentionDims } from '../attention/create.js';
import { gaussian, rng } from '../attention/lsh-math.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const FLAGS: FlagSpecs = {
  tokens: { type: 'integer', min: 1, default: 16384, placeholder: 'N', description: 'cached keys of the layer' },
  threads: { type: 'integer', list: true, min: 1, default: '1,2', placeholder: 'LIST', description: 'thread counts, one build each' },
  kvHeads: { type: 'integer', min: 1, default: 3, placeholder: 'N', description: 'KV heads' },
  headDim: { type: 'integer', min: 1, default: 64, placeholder: 'N', description: 'head dimension' },
  K: { type: 'integer', min: 1, default: 10, placeholder: 'N', description: 'bits per hash table' },
  L: { type: 'integer', min: 1, default: 150, placeholder: 'N', description: 'hash tables' },
  repeat: { type: 'integer', min: 1, default: 2, placeholder: 'N', description: 'builds per thread count (the best is printed)' },
  json: { type: 'boolean', description: 'print one JSON line per thread count' },
};

interface Result { tokens: number; threads: number; kvHeads: number; headDim: number; K: number; L: number; buildMs: number; gflops: number }

async function measure(N: number, threads: number, G: number, D: number, K: number, L: number, repeat: number): Promise<Result> {
  const d: LayerAttentionDims = { layer: 1, layers: 30, heads: G * 3, kvHeads: G, headDim: D, capacity: N, dtype: 'f16' };
  const ld: LshDims = { layer: 1, kvHeads: G, headDim: D, capacity: N, K, L, deltaCap: Math.min(4096, N), seed: 1 };
  const stage = 1024 * G * D * 4;
  const arena = Arena.create(singleSequenceKVBytes(d) + planArena([...lshTableSizes(ld), stage]) + 4096, { kernels: 'wasm', label: 'lsh-build bench' });
  const pool = await ThreadPool.create({ threads, kernels: 'wasm' });
  try {
    pool.register(arena);
    const kv = singleSequenceKV(arena, d);
    const tables = new LshTables(arena, pool, kv, ld);
    const buf = arena.alloc(stage), g = gaussian(rng(12345));
    const offset = Float32Array.from({ length: G * D }, () => 2 * g());                     // (Hkv·D) key mean
    for (let p = 0; p < N; p += 1024) {
      const n = Math.min(1024, N - p), rows = arena.f32(buf, n * G * D);                    // (n, Hkv·D)
      for (let i = 0; i < rows.length; i++) rows[i] = offset[i % (G * D)]! + g();
      kv.store(buf, buf, p, n);
    }
    let best = Infinity;
    for (let r = 0; r < repeat; r++) { tables.build(0, N); best = Math.min(best, tables.lastBuildMs); }
    return { tokens: N, threads, kvHeads: G, headDim: D, K, L, buildMs: best, gflops: (2 * N * G * K * L * D) / best / 1e6 };
  } finally { pool.dispose(); }
}

async function main(): Promise<number | void> {
  const v = scriptFlags(import.meta.url, FLAGS, "MagicPIG's table build time over one layer's cached keys, per thread count.");
  if (!v) return 0;
  const N = v.tokens as number, G = v.kvHeads as number, D = v.headDim as number;
  const K = v.K as number, L = v.L as number, repeat = v.repeat as number;
  for (const threads of v.threads as number[]) {
    const r = await measure(N, threads, G, D, K, L, repeat);
    if (v.json === true) console.log(JSON.stringify(r));
    else console.log(`lsh build: ${N} tokens × ${G} KV heads (D=${D}, K=${K}, L=${L}), ${threads} thread(s): ${(r.buildMs / 1000).toFixed(3)} s per layer (hashing ${r.gflops.toFixed(1)} GFLOP/s equivalent)`);
  }
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
