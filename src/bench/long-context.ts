// Long-context decode benchmark: dense vs MagicPIG on random-weight SmolLM2-135M- / Llama-3.2-1B-
// shaped models (q8_0 weights, f16 KV cache, 2 threads), next to llama.cpp's dense decode of the same
// SmolLM2-135M-shaped GGUF file. Prints one table: decode latency and tokens/s per context length,
// the speed-ups, the keys MagicPIG sampled, its table build time and memory per token (KV + tables).
//
// How long caches are made (a real 64K prefill takes hours on 2 cores): the model prefills a
// `--prefill`-token random text normally, then every layer's K/V rows of that text are tiled
// (repeated, RoPE phases included) up to the context length, written through the backend's own
// store(); MagicPIG then builds its tables over the tiled cache at the first decode step (timed as
// "build"). Decode steps then run the real model. The prefill is computed once per shape (it is
// dense for every backend) and reused by every row. llama.cpp's rows are real prefills of random
// tokens; it runs first, alone, as every row does (its spinning threads suffer most from other load).
//
//   node dist/src/bench/long-context.js [--shape smollm2-135m,llama3.2-1b]
//        [--contexts 4096,16384] (default: 4K..64K for 135M, 4K..128K for 1B) [--steps 5]
//        [--prefill 512] [--magicpig magicpig:K=10,L=150] [--threads 2]
//        [--llamacpp auto|off|PATH/bench-llamacpp.mjs] [--llamacpp-max 32768] [--json FILE] [--plan-only]
// A row that fails (or would not fit in the available memory) prints as a row saying why.

import { readFileSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describeModel, loadModel } from '../models/load.js';
import { attentionBackend, type AttentionBackend } from '../attention/create.js';
import { parseAttentionSpec } from '../attention/spec.js';
import { MagicPigAttention } from '../attention/magicpig.js';
import type { PresetName } from '../testing/checkpoints.js';
import { benchFile } from './bench-files.js';
import { recording, tile, type Recorded } from './kv-tiling.js';
import type { LlamaModel } from '../models/llama.js';
import { llamaCppScript, runLlamaCpp, type LlamaCppRow } from './llamacpp-child.js';

const GiB = 2 ** 30;

// A full collection between rows frees the previous model's arenas (a 1B-shaped 128K row plans 14.5
// GiB; two at once would not fit in 24 GiB). --expose-gc on the command line would reach the pool's
// workers too, which reject it, so the flag is set here and gc taken from a fresh context.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** The q8_0 bench file of `shape` (weights stay q8_0, as in `tessera bench`). */
const q8File = (shape: PresetName): string => benchFile(shape, 'q8_0');

/** MemAvailable from /proc/meminfo (bytes), or undefined off Linux. */
function availableBytes(): number | undefined {
  try { const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8')); return m ? Number(m[1]) * 1024 : undefined; } catch { return undefined; }
}

interface Row {
  shape: string; ctx: number; engine: 'tessera' | 'llama.cpp'; backend: string; made: string;
  ms?: number; tps?: number; sampled?: string; buildS?: number; firstStepS?: number;
  bytesPerToken?: number; planBytes?: number; note?: string;
}

/** Arena bytes the loader will reserve for this row (weights + KV + tables + scratch), and its parts. */
function plan(shape: PresetName, ctx: number, spec: string, capacity: number): { total: number; weights: number; kv: number; rest: number } {
  const info = describeModel(q8File(shape), { cacheDType: 'f16', attention: spec });
  const total = info.memoryNeeded(capacity), kv = capacity * info.kvBytesPerToken;
  return { total, weights: info.weightBytes, kv, rest: total - info.weightBytes - kv };
}

/** The recorded K/V rows of each shape's prefill, per layer (see measure). */
const prefills = new Map<string, { k: Float32Array[]; v: Float32Array[] }>();

async function measure(shape: PresetName, ctx: number, spec: string, prefill: number, steps: number, threads: number): Promise<Row> {
  const path = q8File(shape);
  const layers: Recorded[] = [];
  const backend: AttentionBackend = recording(attentionBackend(parseAttentionSpec(spec)), prefill, layers);
  const capacity = ctx + steps + 4;
  const { model } = await loadModel(path, { threads, attention: backend, contextLength: capacity, cacheDType: 'f16', parallel: 1, kvBudget: capacity });
  try {
    const cache = model.createCache();
    let seed = 7;
    const tok = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 200 + 3;
    const prompt = Array.from({ length: Math.min(prefill, ctx) }, tok);
    const key = `${shape}/${prefill}`, kept = prefills.get(key);
    if (ctx > prefill && kept) {
      // Prefill is dense for every backend, so its K/V rows are the same in every row of a shape:
      // computed once (a 512-token prefill of the 1B shape takes ~20 s), then tiled from position 0.
      layers.forEach((l, i) => { l.rowsK.set(kept.k[i]!); l.rowsV.set(kept.v[i]!); });
      (model as LlamaModel).reserveRows(cache, ctx);
      tile(layers, prefill, 0, ctx);
    } else {
      model.forward(prompt, cache);
      if (ctx > prefill) {
        prefills.set(key, { k: layers.map((l) => l.rowsK), v: layers.map((l) => l.rowsV) });
        (model as LlamaModel).reserveRows(cache, ctx);
        tile(layers, prefill, prefill, ctx);
      }
    }
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
      shape, ctx, engine: 'tessera', backend: spec, made: ctx > prefill ? `real prefill of ${prefill} tokens, K/V tiled to ${ctx}` : `real prefill of ${ctx} tokens`,
      ms, tps: 1000 / ms, sampled: mp.length ? `${(100 * frac).toFixed(2)}%` : '100%',
      buildS: mp.length ? build / 1000 : undefined, firstStepS: first / 1000,
      bytesPerToken: layers.reduce((s, l) => s + l.att.bytesPerToken, 0),
    };
  } finally {
    model.dispose();
    collect();                                                         // free the arenas before the next row
  }
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const DEFAULT_CONTEXTS: Record<string, string> = { 'smollm2-135m': '4096,16384,32768,65536', 'llama3.2-1b': '4096,16384,32768,65536,131072' };
const f = (x: number | undefined, digits: number) => (x === undefined ? '' : x.toFixed(digits));

function printRow(r: Row, speedDense: string, speedLlama: string): void {
  const mem = r.bytesPerToken !== undefined ? String(r.bytesPerToken) : '';
  const build = r.buildS !== undefined ? `${r.buildS.toFixed(1)} (first step ${f(r.firstStepS, 1)})` : r.engine === 'tessera' && r.ms !== undefined ? '-' : '';
  const plan = r.planBytes !== undefined ? (r.planBytes / GiB).toFixed(2) : '';
  console.log(`| ${r.shape} | ${r.ctx} | ${r.engine} ${r.backend} | ${r.made} | ${f(r.ms, 1)} | ${f(r.tps, 2)} | ${speedDense} | ${speedLlama} | ${r.sampled ?? ''} | ${build} | ${mem} | ${plan} | ${r.note ?? ''} |`);
}

async function main(): Promise<void> {
  const shapes = arg('shape', 'smollm2-135m,llama3.2-1b').split(',') as PresetName[];
  const steps = Number(arg('steps', '5')), prefill = Number(arg('prefill', '512')), threads = Number(arg('threads', '2'));
  const sparse = arg('magicpig', 'magicpig:K=10,L=150'), planOnly = process.argv.includes('--plan-only');
  const llamaMax = Number(arg('llamacpp-max', '32768')), jsonFile = arg('json', '');
  const llama = planOnly ? { note: 'llama.cpp not run (--plan-only)' } : llamaCppScript(arg('llamacpp', 'auto'));
  const rows: Row[] = [];
  const log = (s: string) => process.stderr.write(`[long-context ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  // llama.cpp first (alone on the machine, as every row is), so its rows can sit beside Tessera's.
  const llamaCtx = shapes.includes('smollm2-135m') ? arg('contexts', DEFAULT_CONTEXTS['smollm2-135m']!).split(',').map(Number).filter((c) => c <= llamaMax) : [];
  let lrows: LlamaCppRow[] = [], lnote = llama.note;
  if (llama.script && llamaCtx.length) {
    log(`llama.cpp dense on ${q8File('smollm2-135m')}, contexts ${llamaCtx.join(',')} (its prefill is slow: ~10 min at 32K)`);
    try { lrows = runLlamaCpp(llama.script, q8File('smollm2-135m'), llamaCtx, threads, Math.max(steps, 8)); } catch (e) { lnote = `llama.cpp failed: ${(e as Error).message}`; }
    log(`llama.cpp: ${lrows.map((l) => `${l.ctx}: ${l.decodeTokensPerSecond} tok/s`).join(', ') || lnote}`);
  }
  console.log(`threads ${threads}, q8_0 weights, f16 KV cache, ${steps} timed decode steps after 1 build step + 1 warm-up${planOnly ? ' (plan only: nothing allocated)' : ''}`);
  console.log('| model | context | engine / backend | cache made from | decode ms/token | tokens/s | speed-up vs Tessera dense | speed-up vs llama.cpp | keys sampled (per head, sparse layers) | table build s (prefill cost) | bytes/token (KV f16 + tables) | arenas GiB | note |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const shape of shapes) {
    const contexts = arg('contexts', DEFAULT_CONTEXTS[shape] ?? '4096').split(',').map(Number);
    for (const ctx of contexts) {
      const pair: Row[] = [];
      for (const spec of ['dense', sparse]) {
        let r: Row = { shape, ctx, engine: 'tessera', backend: spec, made: '' };
        try {
          const p = plan(shape, ctx, spec, ctx + steps + 4), avail = availableBytes();
          r.planBytes = p.total;
          const parts = `weights ${(p.weights / GiB).toFixed(2)} + KV ${(p.kv / GiB).toFixed(2)} + tables/scratch ${(p.rest / GiB).toFixed(2)} GiB`;
          if (planOnly) r.note = parts;
          else if (avail !== undefined && p.total > avail - 0.5 * GiB) r.note = `skipped: needs ${(p.total / GiB).toFixed(2)} GiB (${parts}), ${(avail / GiB).toFixed(2)} GiB available`;
          else { log(`${shape} ${ctx} ${spec}: loading (${parts})`); r = { ...(await measure(shape, ctx, spec, prefill, steps, threads)), planBytes: p.total }; }
        } catch (e) { r.note = `failed: ${(e as Error).message.split('\n')[0]}`; }
        pair.push(r); rows.push(r);
        log(`${shape} ${ctx} ${spec}: ${r.ms !== undefined ? `${r.ms.toFixed(1)} ms/token${r.buildS !== undefined ? `, build ${r.buildS.toFixed(1)} s` : ''}` : r.note}`);
      }
      const [d, m] = pair;
      const l = shape === 'smollm2-135m' ? lrows.find((x) => x.ctx === ctx) : undefined;
      printRow(d!, '1.00×', l && d!.tps ? `${(d!.tps / l.decodeTokensPerSecond).toFixed(2)}×` : '');
      printRow(m!, d!.ms && m!.ms ? `${(d!.ms / m!.ms).toFixed(2)}×` : '', l && m!.tps ? `${(m!.tps / l.decodeTokensPerSecond).toFixed(2)}×` : '');
      if (l) {
        const r: Row = { shape, ctx, engine: 'llama.cpp', backend: 'dense', made: `real prefill of ${ctx} random tokens (${l.prefillSeconds.toFixed(0)} s)`,
          ms: 1000 / l.decodeTokensPerSecond, tps: l.decodeTokensPerSecond, note: l.reference };
        rows.push(r);
        printRow(r, '', '1.00×');
      }
    }
  }
  if (!lrows.length) console.log(`\n${lnote ?? 'llama.cpp column: no SmolLM2-135M context <= --llamacpp-max'}`);
  if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), argv: process.argv.slice(2), threads, steps, prefill, rows }, null, 1) + '\n');
}

await main();
