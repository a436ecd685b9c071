// Prefill and decode throughput of Tessera next to llama.cpp on the same GGUF files, same thread
// count, same run, plus the memory bandwidth decoding achieves as a fraction of what the machine
// sustains. `tessera bench` (src/cli/bench.ts) runs these on the user's model or on random-weight
// files with the shapes of real ones (bench-files.ts). Prints one table (markdown).

import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../models/load.js';
import { randomIds } from '../testing/random-model.js';

/** One measured engine at one context, or (`note`) why an engine has no numbers there. */
export interface Row {
  model: string; dtype: string; ctx: number; engine: string; threads: number;
  prefillTps: number; decodeTps: number; decodeBytesPerToken: number;
  /** With alternating rounds (alternate.ts): decodeTps is the median block's; these the slowest and fastest. */
  decodeRange?: [number, number];
  /** With alternating prefills (--prefill-rounds): prefillTps is the median prefill's; these the slowest and fastest. */
  prefillRange?: [number, number];
  note?: string;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LLAMA_CPP_DIR = join(REPO, 'tools/reference');
/** llama.cpp's side of the bench (node-llama-cpp; tools/reference/install.sh). */
export const LLAMA_CPP_SCRIPT = join(LLAMA_CPP_DIR, 'bench-llamacpp.mjs');

/** Why llama.cpp rows cannot be measured here, or undefined when they can. */
export function llamaCppMissing(): string | undefined {
  if (!existsSync(LLAMA_CPP_SCRIPT)) return 'not available: llama.cpp rows need a clone of the Tessera repository (tools/reference)';
  if (!existsSync(join(LLAMA_CPP_DIR, 'node_modules/node-llama-cpp'))) return 'not installed: run bash tools/reference/install.sh (~700 MB) for llama.cpp rows';
  return undefined;
}

/** A table row that says why an engine has no numbers for (model, dtype, ctx). */
export function noteRow(model: string, dtype: string, ctx: number, engine: string, threads: number, note: string): Row {
  return { model, dtype, ctx, engine, threads, prefillTps: NaN, decodeTps: NaN, decodeBytesPerToken: NaN, note };
}

/** The greedy token of a logits row. */
function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Tessera with a prompt of `ctx` random ids prefilled, ready to decode up to `decodeTotal` greedy
 *  tokens in blocks: what both benchTessera and the alternating bench (alternate.ts) time. */
export interface PrefilledTessera {
  /** The seconds of the prefill that made the current cache. */
  prefillSeconds: number;
  /** Prefills the same prompt again into a fresh cache, which decoding then continues from; its seconds. */
  prefillAgain(): number;
  /** Greedy decode of n tokens; its seconds. */
  decode(n: number): number;
  /** Weights + K/V rows read per decode token, at the mean context of `decoded` tokens past the prompt. */
  bytesPerToken(decoded: number): number;
  dispose(): void;
}

export async function prefillTessera(file: string, ctx: number, decodeTotal: number, threads: number, cacheDType: 'f32' | 'f16'): Promise<PrefilledTessera> {
  const { model, info } = await loadModel(file, { threads, contextLength: ctx + decodeTotal + 1, prefillChunk: 64, cacheDType });
  try {
    const prompt = randomIds(1234, ctx, model.vocabSize);
    let cache = model.createCache(), tok = 0;
    const prefill = (): number => {
      const t0 = performance.now();
      tok = argmax(model.forward(prompt, cache));
      return (performance.now() - t0) / 1000;
    };
    const prefilled: PrefilledTessera = {
      prefillSeconds: prefill(),
      prefillAgain() {
        cache.release();
        cache = model.createCache();
        return (prefilled.prefillSeconds = prefill());
      },
      decode(n) {
        const t = performance.now();
        for (let i = 0; i < n; i++) tok = argmax(model.forward([tok], cache));
        return (performance.now() - t) / 1000;
      },
      bytesPerToken: (decoded) => info.weightBytes + (ctx + decoded / 2) * info.kvBytesPerToken,
      dispose: () => model.dispose(),
    };
    return prefilled;
  } catch (e) { model.dispose(); throw e; }
}

export async function benchTessera(file: string, label: string, dtype: string, ctx: number, threads: number, decodeTokens: number, cacheDType: 'f32' | 'f16'): Promise<Row> {
  const t = await prefillTessera(file, ctx, decodeTokens, threads, cacheDType);
  try {
    const seconds = t.decode(decodeTokens);
    return {
      model: label, dtype, ctx, engine: 'tessera', threads,
      prefillTps: ctx / t.prefillSeconds, decodeTps: decodeTokens / seconds, decodeBytesPerToken: t.bytesPerToken(decodeTokens),
    };
  } finally { t.dispose(); }
}

/** llama.cpp on the same file; a note row when it cannot run or fails. */
export function benchLlamaCpp(file: string, label: string, dtype: string, ctx: number, threads: number, decodeTokens: number, bytesPerToken: number,
                              cacheDType: 'f32' | 'f16'): Row {
  if (!file.endsWith('.gguf')) return noteRow(label, dtype, ctx, 'llama.cpp', threads, 'not measured: llama.cpp reads .gguf files only');
  const missing = llamaCppMissing();
  if (missing) return noteRow(label, dtype, ctx, 'llama.cpp', threads, missing);
  const r = spawnSync(process.execPath, [LLAMA_CPP_SCRIPT, '--model', file, '--threads', String(threads), '--ctx', String(ctx), '--decode', String(decodeTokens), '--kv', cacheDType, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`bench: llama.cpp failed on ${file}:\n${r.stderr}\n`);
    return noteRow(label, dtype, ctx, 'llama.cpp', threads, 'failed (its error is on stderr)');
  }
  const line = r.stdout.trim().split('\n').map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((o) => o && o.ctx === ctx);
  if (!line) return noteRow(label, dtype, ctx, 'llama.cpp', threads, 'failed: no result line for this context');
  return { model: label, dtype, ctx, engine: 'llama.cpp', threads, prefillTps: line.prefillTokensPerSecond, decodeTps: line.decodeTokensPerSecond, decodeBytesPerToken: bytesPerToken };
}

/** The table; `load`: the 1-, 5- and 15-minute load averages at the run's start and end (the rows
 *  of a shared machine are only comparable with them). */
export function formatTable(rows: Row[], sustained: number, load?: { start: number[]; end: number[] }, rounds?: { rounds: number; tokens: number; prefills?: number }): string {
  const avg = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const lines = [
    `Sustained read bandwidth (native memcmp, ${rows[0]?.threads ?? 1} threads): ${(sustained / 1e9).toFixed(1)} GB/s.`,
    'decode GB/s = (weights + K/V rows read per token) × decode tok/s; both engines use an f16 KV cache unless --kv-type says otherwise.',
    ...(load ? [`Load average (1, 5, 15 min): ${avg(load.start)} at the start, ${avg(load.end)} at the end.`] : []),
    ...(rounds ? [`decode tok/s: the median of ${rounds.rounds} blocks of ${rounds.tokens} tokens per engine, the engines alternating block by block (the order flipping each round); in brackets the slowest and fastest block.`] : []),
    ...(rounds?.prefills !== undefined && rounds.prefills > 1
      ? [`prefill tok/s: the median of ${rounds.prefills} prefills of the same prompt into a fresh cache per engine, alternating (the first of each right after loading); in brackets the slowest and fastest.`] : []),
    '',
    '| model | dtype | ctx | engine | threads | prefill tok/s | decode tok/s | decode GB/s | % of sustained | tessera/llama.cpp decode | tessera/llama.cpp prefill |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.note !== undefined) { lines.push(`| ${r.model} | ${r.dtype} | ${r.ctx} | ${r.engine} | ${r.threads} | ${r.note} | | | | | |`); continue; }
    const gbs = (r.decodeTps * r.decodeBytesPerToken) / 1e9;
    const peer = rows.find((o) => o !== r && o.note === undefined && o.model === r.model && o.dtype === r.dtype && o.ctx === r.ctx);
    const ratio = (of: (x: Row) => number) => r.engine === 'tessera' && peer ? (of(r) / of(peer)).toFixed(2) : '';
    const range = r.decodeRange ? ` (${r.decodeRange[0].toFixed(1)}–${r.decodeRange[1].toFixed(1)})` : '';
    const prefillRange = r.prefillRange ? ` (${r.prefillRange[0].toFixed(1)}–${r.prefillRange[1].toFixed(1)})` : '';
    lines.push(`| ${r.model} | ${r.dtype} | ${r.ctx} | ${r.engine} | ${r.threads} | ${r.prefillTps.toFixed(1)}${prefillRange} | ${r.decodeTps.toFixed(1)}${range} | ${gbs.toFixed(2)} | ${((100 * gbs * 1e9) / sustained).toFixed(0)}% | ${ratio((x) => x.decodeTps)} | ${ratio((x) => x.prefillTps)} |`);
  }
  return lines.join('\n') + '\n';
}
