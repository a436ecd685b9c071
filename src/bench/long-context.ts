// Long-context decode benchmark: dense vs MagicPIG on random-weight SmolLM2-135M- / Llama-3.2-1B-
// shaped models, f16 KV cache, 2 threads. Prints one table: decode latency and tokens/s per context
// length, the keys MagicPIG sampled, its table build time and memory per token (KV + tables).
//
// How long caches are made (a real 64K prefill takes hours on 2 cores): the model prefills a
// `--prefill`-token random text normally, then every layer's K/V rows of that text are tiled
// (repeated, RoPE phases included) up to the context length, written through the backend's own
// store(); MagicPIG then builds its tables over the tiled cache at the first decode step (timed as
// "build"). The table says "tiled P" for such rows. Decode steps then run the real model.
//
//   node dist/src/bench/long-context.js [--shape smollm2-135m|llama3.2-1b] [--contexts 4096,16384,...]
//        [--steps 5] [--prefill 512] [--magicpig magicpig] [--threads 2]

import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { loadModel } from '../models/load.js';
import { attentionBackend, type AttentionBackend, type LayerAttentionDims } from '../attention/create.js';
import { parseAttentionSpec } from '../attention/spec.js';
import type { LayerAttention } from '../attention/types.js';
import { MagicPigAttention } from '../attention/magicpig.js';
import type { Arena } from '../runtime/arena.js';
import { planArena } from '../runtime/arena.js';
import { writeTestCheckpoint, type PresetName } from '../testing/checkpoints.js';

interface Recorded { att: LayerAttention; arena: Arena; d: LayerAttentionDims; k: number; v: number; rowsK: Float32Array; rowsV: Float32Array }

/** Wraps a backend so the prefill's K/V rows are kept (for tiling) and the layers are reachable. */
function recording(inner: AttentionBackend, prefill: number, out: Recorded[]): AttentionBackend {
  const scratch = (d: LayerAttentionDims) => prefill * d.kvHeads * d.headDim * 4;
  return {
    arenaBytes: (d) => inner.arenaBytes(d) + planArena([scratch(d), scratch(d)]) + 128,
    create: (arena, pool, d) => {
      const att = inner.create(arena, pool, d), kvDim = d.kvHeads * d.headDim;
      const r: Recorded = { att, arena, d, k: arena.alloc(scratch(d)), v: arena.alloc(scratch(d)),
        rowsK: new Float32Array(prefill * kvDim), rowsV: new Float32Array(prefill * kvDim) };
      out.push(r);
      return {
        store(k, v, p0, n) {
          const m = Math.min(n, prefill - p0);
          if (m > 0) { r.rowsK.set(arena.f32(k, m * kvDim), p0 * kvDim); r.rowsV.set(arena.f32(v, m * kvDim), p0 * kvDim); }
          att.store(k, v, p0, n);
        },
        attend: (q, qPos, o, n, length, phase) => att.attend(q, qPos, o, n, length, phase),
        truncate: (n) => att.truncate(n),
        get bytesPerToken() { return att.bytesPerToken; },
      };
    },
  };
}

/** Fills positions [from, to) of every layer with the prefill rows repeated. */
function tile(layers: Recorded[], prefill: number, from: number, to: number): void {
  for (const r of layers) {
    const kvDim = r.d.kvHeads * r.d.headDim;
    r.arena.f32(r.k, prefill * kvDim).set(r.rowsK);
    r.arena.f32(r.v, prefill * kvDim).set(r.rowsV);
    for (let p = from; p < to;) {
      const src = p % prefill, n = Math.min(prefill - src, to - p);
      r.att.store(r.k + src * kvDim * 4, r.v + src * kvDim * 4, p, n);
      p += n;
    }
  }
}

function benchFile(shape: PresetName): { path: string; quantize?: 'q8_0' } {
  const dir = join(process.env.TESSERA_BENCH_DIR ?? join(homedir(), '.cache', 'tessera', 'bench'), shape);
  for (const f of ['model-q8_0.gguf', 'model-f32.gguf']) if (existsSync(join(dir, f))) return { path: join(dir, f), quantize: f.includes('f32') ? 'q8_0' : undefined };
  return { path: writeTestCheckpoint(dir, shape, { formats: ['gguf-q8_0'] }).gguf.q8_0! };
}

interface Row { shape: string; ctx: number; backend: string; made: string; ms: number; tps: number; sampled: string; buildS: string; bytesPerToken: number }

async function measure(shape: PresetName, ctx: number, spec: string, prefill: number, steps: number, threads: number): Promise<Row> {
  const { path, quantize } = benchFile(shape);
  const layers: Recorded[] = [];
  const backend = recording(attentionBackend(parseAttentionSpec(spec)), prefill, layers);
  const { model } = await loadModel(path, { threads, attention: backend, contextLength: ctx + steps + 4, cacheDType: 'f16', quantize });
  try {
    const cache = model.createCache();
    let seed = 7;
    const tok = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 200 + 3;
    model.forward(Array.from({ length: Math.min(prefill, ctx) }, tok), cache);
    if (ctx > prefill) { tile(layers, prefill, prefill, ctx); (cache as { length: number }).length = ctx; }
    let t0 = performance.now();
    model.forward([tok()], cache);                                     // first step: MagicPIG builds its tables
    const first = performance.now() - t0;
    const mp = layers.map((l) => l.att).filter((a): a is MagicPigAttention => a instanceof MagicPigAttention);
    const build = mp.reduce((s, a) => s + a.tables.lastBuildMs, 0);
    model.forward([tok()], cache);                                     // warm-up
    t0 = performance.now();
    for (let i = 0; i < steps; i++) model.forward([tok()], cache);
    const ms = (performance.now() - t0) / steps;
    const frac = mp.length ? mp.reduce((s, a) => s + a.lastSampled / a.lastLength, 0) / mp.length : 1;
    return {
      shape, ctx, backend: spec, made: ctx > prefill ? `prefill ${prefill} + tiled` : `prefill ${ctx}`, ms, tps: 1000 / ms,
      sampled: mp.length ? `${(100 * frac).toFixed(2)}%` : '100%', buildS: mp.length ? `${(build / 1000).toFixed(1)} (first step ${(first / 1000).toFixed(1)})` : '-',
      bytesPerToken: layers.reduce((s, l) => s + l.att.bytesPerToken, 0),
    };
  } finally { model.dispose(); }
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function main(): Promise<void> {
  const shapes = arg('shape', 'smollm2-135m').split(',') as PresetName[];
  const contexts = arg('contexts', '4096,16384,32768,65536').split(',').map(Number);
  const steps = Number(arg('steps', '5')), prefill = Number(arg('prefill', '512')), threads = Number(arg('threads', '2'));
  const sparse = arg('magicpig', 'magicpig');
  const rows: Row[] = [];
  console.log('| model | context | backend | cache made from | decode ms/token | tokens/s | keys sampled (per head, sparse layers) | table build s | bytes/token (KV f16 + tables) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const shape of shapes) {
    for (const ctx of contexts) {
      for (const spec of ['dense', sparse]) {
        const r = await measure(shape, ctx, spec, prefill, steps, threads);
        rows.push(r);
        console.log(`| ${r.shape} | ${r.ctx} | ${r.backend} | ${r.made} | ${r.ms.toFixed(1)} | ${r.tps.toFixed(2)} | ${r.sampled} | ${r.buildS} | ${r.bytesPerToken} |`);
      }
      const [d, m] = rows.slice(-2);
      console.log(`|  |  | speed-up |  | ${(d!.ms / m!.ms).toFixed(2)}× |  |  |  |  |`);
    }
  }
}

await main();
