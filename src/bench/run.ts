// `tessera bench`: prefill and decode throughput of Tessera next to llama.cpp on the same GGUF files,
// same thread count, same run, plus the memory bandwidth decoding achieves as a fraction of what the
// machine sustains. Models are random-weight files with the shapes of real ones (SmolLM2-135M,
// Llama-3.2-1B), written once into a cache folder. Prints one table (markdown).

import { existsSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadModel } from '../models/load.js';
import { measureReadBandwidth } from './bandwidth.js';
import { BENCH_PRESETS } from '../testing/checkpoints.js';
import { benchFile } from './bench-files.js';
import { randomIds } from '../testing/random-model.js';
import { benchLlamaCppBatch, benchTesseraBatch, formatBatchTable, type BatchRow } from './batch.js';

interface Row {
  model: string; dtype: string; ctx: number; engine: string; threads: number;
  prefillTps: number; decodeTps: number; decodeBytesPerToken: number;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

async function benchTessera(file: string, shape: string, dtype: string, ctx: number, threads: number, decodeTokens: number, cacheDType: 'f32' | 'f16'): Promise<Row> {
  const { model, info } = await loadModel(file, { threads, contextLength: ctx + decodeTokens + 1, prefillChunk: 64, cacheDType });
  try {
    const cache = model.createCache();
    const prompt = randomIds(1234, ctx, model.vocabSize);
    const t0 = performance.now();
    let tok = argmax(model.forward(prompt, cache));
    const t1 = performance.now();
    for (let i = 0; i < decodeTokens; i++) tok = argmax(model.forward([tok], cache));
    const t2 = performance.now();
    const kvRead = (ctx + decodeTokens / 2) * info.kvBytesPerToken;
    return {
      model: shape, dtype, ctx, engine: 'tessera', threads,
      prefillTps: ctx / ((t1 - t0) / 1000), decodeTps: decodeTokens / ((t2 - t1) / 1000),
      decodeBytesPerToken: info.weightBytes + kvRead,
    };
  } finally { model.dispose(); }
}

function benchLlamaCpp(file: string, shape: string, dtype: string, ctx: number, threads: number, decodeTokens: number, bytesPerToken: number): Row | null {
  const script = join(REPO, 'tools/reference/bench-llamacpp.mjs');
  if (!existsSync(join(REPO, 'tools/reference/node_modules/node-llama-cpp'))) return null;
  const r = spawnSync(process.execPath, [script, '--model', file, '--threads', String(threads), '--ctx', String(ctx), '--decode', String(decodeTokens), '--json'], { encoding: 'utf8' });
  if (r.status !== 0) { process.stderr.write(`bench: llama.cpp failed on ${file}:\n${r.stderr}\n`); return null; }
  const line = r.stdout.trim().split('\n').map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((o) => o && o.ctx === ctx);
  if (!line) return null;
  return { model: shape, dtype, ctx, engine: 'llama.cpp', threads, prefillTps: line.prefillTokensPerSecond, decodeTps: line.decodeTokensPerSecond, decodeBytesPerToken: bytesPerToken };
}

export async function runBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv, options: {
      shapes: { type: 'string', default: 'smollm2-135m,llama3.2-1b' },
      dtypes: { type: 'string', default: 'f32,q8_0' },
      ctx: { type: 'string', default: '512,4096' },
      threads: { type: 'string', default: String(availableParallelism()) },
      'decode-tokens': { type: 'string', default: '32' },
      'no-llama-cpp': { type: 'boolean', default: false },
      'kv-type': { type: 'string', default: 'f16' },
      batch: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`tessera bench [--shapes smollm2-135m,llama3.2-1b] [--dtypes f32,q8_0] [--ctx 512,4096] [--threads N] [--decode-tokens N] [--kv-type f16|f32] [--batch 1,4,16] [--no-llama-cpp]
  The KV cache is f16 by default, as llama.cpp's is, so both engines read the same bytes per token.
  --batch B1,B2,…: decode B sequences together (each prefilled with its own random ids) and report
  total decode tok/s, per-sequence ms/token and KV held, next to llama.cpp's multi-sequence contexts.
  Random-weight GGUF files with each shape are written once to $TESSERA_BENCH_DIR (default ~/.cache/tessera/bench).
  llama.cpp rows appear when tools/reference is installed (bash tools/reference/install.sh).\n`);
    return;
  }
  const threads = Number(values.threads), decodeTokens = Number(values['decode-tokens']);
  const kvType = values['kv-type'];
  if (kvType !== 'f32' && kvType !== 'f16') throw new Error(`bench: --kv-type must be f32 or f16, got ${kvType}`);
  const ctxs = values.ctx!.split(',').map(Number);
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`bench: --threads must be a positive integer, got ${values.threads}`);
  if (ctxs.some((c) => !Number.isInteger(c) || c < 1)) throw new Error(`bench: --ctx must be a comma-separated list of positive integers, got ${values.ctx}`);
  if (values.batch !== undefined) {
    const batches = values.batch.split(',').map(Number);
    if (batches.some((b) => !Number.isInteger(b) || b < 1 || b > 256)) throw new Error(`bench: --batch must be a comma-separated list of integers in [1, 256], got ${values.batch}`);
    const o = { threads, decodeTokens, cacheDType: kvType as 'f32' | 'f16', repo: REPO, llamaCpp: !values['no-llama-cpp'] };
    const rows: BatchRow[] = [], notes = new Set<string>();
    for (const shape of values.shapes!.split(',')) {
      for (const dtype of values.dtypes!.split(',')) {
        const file = benchFile(shape, dtype, (p) => process.stderr.write(`bench: writing the random-weight ${shape} ${dtype} file ${p} (once)…\n`));
        for (const ctx of ctxs) {
          rows.push(...await benchTesseraBatch(file, shape, dtype, ctx, batches, o));
          if (!o.llamaCpp) { notes.add('llama.cpp rows skipped (--no-llama-cpp).'); continue; }
          const l = benchLlamaCppBatch(file, shape, dtype, ctx, batches, o);
          if (typeof l === 'string') notes.add(l); else rows.push(...l);
        }
      }
    }
    notes.add(`Random-weight files; ${kvType} KV cache on both engines; ${decodeTokens} timed decode steps after 2 warm-up steps; each sequence prefilled with its own ${ctxs.join('/')} random ids.`);
    process.stdout.write(formatBatchTable(rows, [...notes]));
    return;
  }
  const sustained = await measureReadBandwidth(threads);
  const rows: Row[] = [];
  for (const shape of values.shapes!.split(',')) {
    for (const dtype of values.dtypes!.split(',')) {
      process.stderr.write(`bench: preparing ${shape} ${dtype}…\n`);
      const file = benchFile(shape, dtype);
      for (const ctx of ctxs) {
        process.stderr.write(`bench: ${shape} ${dtype} ctx ${ctx}: tessera…\n`);
        const t = await benchTessera(file, shape, dtype, ctx, threads, decodeTokens, kvType);
        rows.push(t);
        if (!values['no-llama-cpp']) {
          process.stderr.write(`bench: ${shape} ${dtype} ctx ${ctx}: llama.cpp…\n`);
          const l = benchLlamaCpp(file, shape, dtype, ctx, threads, decodeTokens, t.decodeBytesPerToken);
          if (l) rows.push(l);
        }
      }
    }
  }
  process.stdout.write(formatTable(rows, sustained));
}

export function formatTable(rows: Row[], sustained: number): string {
  const lines = [
    `Sustained read bandwidth (native memcmp, ${rows[0]?.threads ?? 1} threads): ${(sustained / 1e9).toFixed(1)} GB/s.`,
    'decode GB/s = (weights + K/V rows read per token) × decode tok/s; both engines use an f16 KV cache unless --kv-type says otherwise.',
    '',
    '| model | dtype | ctx | engine | threads | prefill tok/s | decode tok/s | decode GB/s | % of sustained | tessera/llama.cpp decode |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const gbs = (r.decodeTps * r.decodeBytesPerToken) / 1e9;
    const peer = rows.find((o) => o !== r && o.model === r.model && o.dtype === r.dtype && o.ctx === r.ctx);
    const ratio = r.engine === 'tessera' && peer ? (r.decodeTps / peer.decodeTps).toFixed(2) : '';
    lines.push(`| ${r.model} | ${r.dtype} | ${r.ctx} | ${r.engine} | ${r.threads} | ${r.prefillTps.toFixed(1)} | ${r.decodeTps.toFixed(1)} | ${gbs.toFixed(2)} | ${((100 * gbs * 1e9) / sustained).toFixed(0)}% | ${ratio} |`);
  }
  return lines.join('\n') + '\n';
}
