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
//
// --real-prefill: no tiling. Every row prefills its whole context for real (random tokens, in
// `--piece`-token calls that the model runs in 64-row chunks; attention reads K/V in tiles, so no
// step holds more than a chunk's rows, and nothing is T×T) and reports the time to first token (the
// prefill and the first token's logits), then decode speed as above, next to llama.cpp's TTFT and
// decode on the same file. Default contexts 4096,16384,32768, SmolLM2-135M shape; a progress line on
// stderr every 15 s of a long prefill. Its table and JSON are its own (see printReal).

import { readFileSync, writeFileSync } from 'node:fs';
import type { FlagSpecs, FlagValues } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { availableParallelism } from 'node:os';
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

interface RealRow {
  shape: string; ctx: number; engine: 'tessera' | 'llama.cpp'; backend: string;
  ttftS?: number; prefillTps?: number; firstStepS?: number; buildS?: number; ms?: number; tps?: number;
  sampled?: string; planBytes?: number; maxRssBytes?: number; note?: string;
}

/** A real prefill of `ctx` random tokens, then decode steps: time to first token and decode speed. */
async function measureReal(shape: PresetName, ctx: number, spec: string, steps: number, threads: number, piece: number,
                           log: (s: string) => void): Promise<RealRow> {
  const layers: Recorded[] = [];
  const backend = recording(attentionBackend(parseAttentionSpec(spec)), 0, layers); // reaches the layers, keeps no rows
  const capacity = ctx + steps + 4;
  const { model } = await loadModel(q8File(shape), { threads, attention: backend, contextLength: capacity, cacheDType: 'f16', parallel: 1, kvBudget: capacity });
  try {
    const cache = model.createCache();
    let seed = 7;
    const tok = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 200 + 3;
    const prompt = Array.from({ length: ctx }, tok);
    const t0 = performance.now();
    let shown = t0, logits: Float32Array | undefined;
    for (let p = 0; p < ctx; p += piece) {
      const last = p + piece >= ctx;
      [logits] = model.forwardBatch([{ cache, tokens: prompt.slice(p, p + piece), logits: last ? 'last' : 'none', phase: 'prefill' }]);
      const now = performance.now();
      if (now - shown >= 15000 && !last) {
        const done = p + piece, rate = done / ((now - t0) / 1000);
        log(`${shape} ${ctx} ${spec}: prefill ${done}/${ctx} tokens, ${rate.toFixed(1)} tok/s, ~${((ctx - done) / rate).toFixed(0)} s left`);
        shown = now;
      }
    }
    let next = argmax(logits!);                                          // the first token
    const ttft = (performance.now() - t0) / 1000;
    let t1 = performance.now();
    next = argmax(model.forward([next], cache));                         // first decode step: MagicPIG builds its tables
    const first = (performance.now() - t1) / 1000;
    const mp = layers.map((l) => l.att).filter((a): a is MagicPigAttention => a instanceof MagicPigAttention);
    const build = mp.reduce((s, a) => s + a.tables.lastBuildMs, 0);
    next = argmax(model.forward([next], cache));                         // warm-up
    t1 = performance.now();
    for (let i = 0; i < steps; i++) next = argmax(model.forward([next], cache));
    const ms = (performance.now() - t1) / steps;
    const frac = mp.length ? mp.reduce((s, a) => s + a.lastSampled / a.lastLength, 0) / mp.length : 1;
    return {
      shape, ctx, engine: 'tessera', backend: spec, ttftS: ttft, prefillTps: ctx / ttft, firstStepS: first,
      buildS: mp.length ? build / 1000 : undefined, ms, tps: 1000 / ms, sampled: mp.length ? `${(100 * frac).toFixed(2)}%` : '100%',
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    model.dispose();
    collect();
  }
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** The --real-prefill run: llama.cpp first (per context, alone), then Tessera dense and MagicPIG. */
async function mainReal(log: (s: string) => void): Promise<void> {
  const shapes = arg('shape', 'smollm2-135m').split(',') as PresetName[];
  const steps = int('steps', 5), threads = int('threads', 2), piece = int('piece', 512);
  const sparse = arg('magicpig', 'magicpig:K=10,L=150'), jsonFile = arg('json', '');
  const contexts = contextList([4096, 16384, 32768]);
  for (const [name, x] of [['steps', steps], ['threads', threads], ['piece', piece], ...contexts.map((c) => ['contexts', c] as const)] as const) {
    if (!Number.isInteger(x) || x < 1) throw new RangeError(`long-context: --${name} must be a positive integer, got ${x}`);
  }
  const llama = llamaCppScript(arg('llamacpp', 'auto'));
  const rows: RealRow[] = [];
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadStart = load();
  log(`load average at start: ${loadStart}`);
  if (llama.script && shapes.includes('smollm2-135m')) {
    for (const ctx of contexts) {
      log(`llama.cpp dense, ${ctx} tokens: real prefill, then ${Math.max(steps, 8)} decode steps (no progress line from it; ~806 s at 32K on an idle machine)`);
      try {
        const [l] = runLlamaCpp(llama.script, q8File('smollm2-135m'), [ctx], threads, Math.max(steps, 8));
        rows.push({ shape: 'smollm2-135m', ctx, engine: 'llama.cpp', backend: 'dense', ttftS: l!.prefillSeconds, prefillTps: ctx / l!.prefillSeconds,
          ms: 1000 / l!.decodeTokensPerSecond, tps: l!.decodeTokensPerSecond, note: l!.reference });
        log(`llama.cpp ${ctx}: TTFT ${l!.prefillSeconds.toFixed(1)} s, decode ${l!.decodeTokensPerSecond} tok/s`);
      } catch (e) { rows.push({ shape: 'smollm2-135m', ctx, engine: 'llama.cpp', backend: 'dense', note: `failed: ${(e as Error).message.split('\n')[0]}` }); }
    }
  }
  for (const shape of shapes) {
    for (const ctx of contexts) {
      for (const spec of sparse === 'none' ? ['dense'] : ['dense', sparse]) {
        let r: RealRow = { shape, ctx, engine: 'tessera', backend: spec };
        try {
          const p = plan(shape, ctx, spec, ctx + steps + 4), avail = availableBytes();
          r.planBytes = p.total;
          if (avail !== undefined && p.total > avail - 0.5 * GiB) r.note = `skipped: needs ${(p.total / GiB).toFixed(2)} GiB, ${(avail / GiB).toFixed(2)} GiB available`;
          else { log(`${shape} ${ctx} ${spec}: real prefill of ${ctx} tokens`); r = { ...(await measureReal(shape, ctx, spec, steps, threads, piece, log)), planBytes: p.total }; }
        } catch (e) { r.note = `failed: ${(e as Error).message.split('\n')[0]}`; }
        rows.push(r);
        log(`${shape} ${ctx} ${spec}: ${r.ttftS !== undefined ? `TTFT ${r.ttftS.toFixed(1)} s, decode ${r.ms!.toFixed(1)} ms/token` : r.note}`);
      }
    }
  }
  const loadEnd = load();
  log(`load average at end: ${loadEnd}`);
  printReal(rows, threads, steps, loadStart, loadEnd, llama.note);
  if (jsonFile) {
    writeFileSync(jsonFile, JSON.stringify({ date: new Date().toISOString(), mode: 'real-prefill', argv: process.argv.slice(2), threads, steps, piece,
      loadAverage: { start: loadStart, end: loadEnd }, cpus: availableParallelism(), rows }, null, 1) + '\n');
  }
}

/** The real-prefill table: TTFT and decode per row, each Tessera row's ratios to llama.cpp's at that context. */
function printReal(rows: RealRow[], threads: number, steps: number, loadStart: string, loadEnd: string, llamaNote?: string): void {
  console.log(`real prefills, threads ${threads}, q8_0 weights, f16 KV cache (both engines), ${steps} timed decode steps after 1 first step + 1 warm-up; load average ${loadStart} at the start, ${loadEnd} at the end`);
  console.log('| model | context | engine / backend | time to first token s | prefill tok/s | TTFT ÷ llama.cpp | decode ms/token | tokens/s | decode ÷ llama.cpp dense | keys sampled | first decode step s (table build) | arenas GiB | max RSS GiB | note |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const l = rows.find((x) => x.engine === 'llama.cpp' && x.shape === r.shape && x.ctx === r.ctx && x.ttftS !== undefined);
    const ttftRatio = r.engine === 'tessera' && l && r.ttftS !== undefined ? `${(r.ttftS / l.ttftS!).toFixed(2)}×` : r === l ? '1.00×' : '';
    const decRatio = r.engine === 'tessera' && l && r.tps !== undefined ? `${(r.tps / l.tps!).toFixed(2)}×` : r === l ? '1.00×' : '';
    const first = r.firstStepS !== undefined ? `${r.firstStepS.toFixed(2)}${r.buildS !== undefined ? ` (${r.buildS.toFixed(2)})` : ''}` : '';
    console.log(`| ${r.shape} | ${r.ctx} | ${r.engine} ${r.backend} | ${f(r.ttftS, 1)} | ${f(r.prefillTps, 1)} | ${ttftRatio} | ${f(r.ms, 1)} | ${f(r.tps, 2)} | ${decRatio} | ${r.sampled ?? ''} | ${first} | ${r.planBytes !== undefined ? (r.planBytes / GiB).toFixed(2) : ''} | ${r.maxRssBytes !== undefined ? (r.maxRssBytes / GiB).toFixed(2) : ''} | ${r.note ?? ''} |`);
  }
  if (llamaNote) console.log(`\n${llamaNote}`);
}

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

// Defaults depend on the mode and the shape, so they live where each is read (arg's fallback).
const FLAGS: FlagSpecs = {
  'real-prefill': { type: 'boolean', description: 'prefill each context for real (time to first token) instead of tiling a short prefill' },
  shape: { type: 'string', placeholder: 'LIST', description: 'smollm2-135m and/or llama3.2-1b (default smollm2-135m,llama3.2-1b; smollm2-135m with --real-prefill)' },
  contexts: { type: 'integer', list: true, min: 1, placeholder: 'LIST', description: 'context lengths (default per shape; 4096,16384,32768 with --real-prefill)' },
  steps: { type: 'integer', min: 1, placeholder: 'N', description: 'timed decode steps (default 5)' },
  prefill: { type: 'integer', min: 1, placeholder: 'N', description: 'real prefill that tiled caches repeat (default 512)' },
  piece: { type: 'integer', min: 1, placeholder: 'N', description: 'tokens per forward call of a real prefill (default 512)' },
  threads: { type: 'integer', min: 1, max: 256, placeholder: 'N', description: 'threads (default 2)' },
  magicpig: { type: 'string', placeholder: 'SPEC', description: 'the sparse backend of the second row, or none for dense only (default magicpig:K=10,L=150)' },
  llamacpp: { type: 'string', placeholder: 'auto|off|PATH', description: "llama.cpp's rows (default auto: when tools/reference is installed)" },
  'llamacpp-max': { type: 'integer', min: 1, placeholder: 'N', description: 'longest context llama.cpp runs in the tiled mode (default 32768)' },
  'plan-only': { type: 'boolean', description: 'print the memory plan of each row, allocate nothing' },
  json: { type: 'string', placeholder: 'PATH', description: 'write the rows as JSON here too' },
};
let flags: FlagValues = {};

function arg(name: string, fallback: string): string {
  const x = flags[name];
  return typeof x === 'string' && x !== '' ? x : fallback;
}

/** An integer flag (checked by the parser), or its mode's default. */
function int(name: string, fallback: number): number {
  const x = flags[name];
  return typeof x === 'number' ? x : fallback;
}

/** The context list (checked by the parser), or the default for the mode and shape. */
function contextList(fallback: readonly number[]): number[] {
  const x = flags.contexts;
  return Array.isArray(x) && x.length ? (x as number[]) : [...fallback];
}

const DEFAULT_CONTEXTS: Record<string, number[]> = { 'smollm2-135m': [4096, 16384, 32768, 65536], 'llama3.2-1b': [4096, 16384, 32768, 65536, 131072] };
const f = (x: number | undefined, digits: number) => (x === undefined ? '' : x.toFixed(digits));

function printRow(r: Row, speedDense: string, speedLlama: string): void {
  const mem = r.bytesPerToken !== undefined ? String(r.bytesPerToken) : '';
  const build = r.buildS !== undefined ? `${r.buildS.toFixed(1)} (first step ${f(r.firstStepS, 1)})` : r.engine === 'tessera' && r.ms !== undefined ? '-' : '';
  const plan = r.planBytes !== undefined ? (r.planBytes / GiB).toFixed(2) : '';
  console.log(`| ${r.shape} | ${r.ctx} | ${r.engine} ${r.backend} | ${r.made} | ${f(r.ms, 1)} | ${f(r.tps, 2)} | ${speedDense} | ${speedLlama} | ${r.sampled ?? ''} | ${build} | ${mem} | ${plan} | ${r.note ?? ''} |`);
}

async function main(): Promise<number | void> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Long-context decode: Tessera dense vs MagicPIG next to llama.cpp (random-weight q8_0 files, f16 KV).');
  if (!v) return 0;
  flags = v;
  const log = (s: string) => process.stderr.write(`[long-context ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
  if (flags['real-prefill'] === true) { await mainReal(log); return; }
  const shapes = arg('shape', 'smollm2-135m,llama3.2-1b').split(',') as PresetName[];
  const steps = int('steps', 5), prefill = int('prefill', 512), threads = int('threads', 2);
  const sparse = arg('magicpig', 'magicpig:K=10,L=150'), planOnly = flags['plan-only'] === true;
  const llamaMax = int('llamacpp-max', 32768), jsonFile = arg('json', '');
  const llama = planOnly ? { note: 'llama.cpp not run (--plan-only)' } : llamaCppScript(arg('llamacpp', 'auto'));
  const rows: Row[] = [];
  // llama.cpp first (alone on the machine, as every row is), so its rows can sit beside Tessera's.
  const llamaCtx = shapes.includes('smollm2-135m') ? contextList(DEFAULT_CONTEXTS['smollm2-135m']!).filter((c) => c <= llamaMax) : [];
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
    const contexts = contextList(DEFAULT_CONTEXTS[shape] ?? [4096]);
    for (const ctx of contexts) {
      const pair: Row[] = [];
      for (const spec of sparse === 'none' ? ['dense'] : ['dense', sparse]) {
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
      if (m) printRow(m, d!.ms && m.ms ? `${(d!.ms / m.ms).toFixed(2)}×` : '', l && m.tps ? `${(m.tps / l.decodeTokensPerSecond).toFixed(2)}×` : '');
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

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
