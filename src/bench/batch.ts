// `tessera bench --batch 1,4,16`: decode throughput of B sequences decoded together, Tessera next to
// llama.cpp decoding B sequences of one context (node-llama-cpp's multi-sequence contexts), same
// file, same threads, same run. Each of the B sequences is prefilled with its own ctx random ids
// (distinct K/V, as real requests have), then every step decodes one token of each: Tessera with
// one model.forwardBatch per step (each weight read once per step), llama.cpp with one llama_decode
// batch per step. Prints one markdown table: total decode tok/s, per-sequence ms/token, the speed-up
// over batch 1, the weight bytes streamed per second (each weight is read once per step) and the KV
// memory the B sequences hold.
// With prefillOnce (for long contexts, where B real prefills per batch size take hours), each engine
// prefills one prompt for real and gives every sequence its own copy of its K/V (Tessera: private
// copies of the pages, copyCache; llama.cpp: the sequence state saved to a file and loaded into each
// sequence): the same bytes held and read per sequence as distinct prompts, the same K/V values.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadModel } from '../models/load.js';
import type { LlamaModel } from '../models/llama.js';
import type { ModelCache } from '../models/types.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';
import { randomIds } from '../testing/random-model.js';

export interface BatchRow {
  model: string; dtype: string; ctx: number; batch: number; engine: 'tessera' | 'llama.cpp'; threads: number;
  /** Decode tokens per second over all sequences. */
  decodeTps: number;
  /** Wall time of one step, i.e. per generated token of each sequence. */
  msPerToken: number;
  /** KV bytes the sequences hold (Tessera: pages in use; llama.cpp: the context's state size). */
  kvBytes: number;
  /** Weight bytes one step reads (the file's matrices, each read once per step whatever the batch). */
  weightBytes: number;
}

export interface BatchBenchOptions {
  threads: number; decodeTokens: number; cacheDType: 'f32' | 'f16'; repo: string; llamaCpp: boolean;
  /** One real prefill per (file, ctx), copied into every sequence, instead of one per sequence. */
  prefillOnce?: boolean;
}

const argmax = (x: Float32Array) => { let b = 0; for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i; return b; };

/** Tessera rows for every batch size, one model load per (file, ctx). */
export async function benchTesseraBatch(file: string, shape: string, dtype: string, ctx: number, batches: readonly number[],
                                        o: BatchBenchOptions): Promise<BatchRow[]> {
  const once = o.prefillOnce === true;
  const B = Math.max(...batches) + (once ? 1 : 0), per = ctx + o.decodeTokens + 3;   // + the prompt copied from
  // every sequence holds whole pages
  const kvBudget = B * Math.ceil(per / KV_PAGE_TOKENS) * KV_PAGE_TOKENS;
  const { model, info } = await loadModel(file, { threads: o.threads, contextLength: per, parallel: B, kvBudget, cacheDType: o.cacheDType });
  const m = model as LlamaModel;
  const rows: BatchRow[] = [];
  try {
    let prompt: { cache: ModelCache; token: number } | undefined;
    if (once) {
      process.stderr.write(`bench: ${shape} ${dtype} ctx ${ctx}: tessera prefill (once, copied into every sequence)…\n`);
      const cache = model.createCache();
      prompt = { cache, token: argmax(model.forward(randomIds(1234, ctx, model.vocabSize), cache)) };
    }
    const held = m.kvPages.used;                                          // the prompt copied from is not counted
    for (const b of batches) {
      process.stderr.write(`bench: ${shape} ${dtype} ctx ${ctx} batch ${b}: tessera ${prompt ? 'copies of the prompt' : 'prefill'}…\n`);
      const caches = Array.from({ length: b }, () => (prompt ? m.copyCache(prompt.cache) : model.createCache()));
      const tokens = caches.map((c, i) => (prompt ? prompt.token : argmax(model.forward(randomIds(1234 + i, ctx, model.vocabSize), c))));
      const kvBytes = (m.kvPages.used - held) * KV_PAGE_TOKENS * info.kvBytesPerToken;
      let t0 = 0;
      for (let step = -2; step < o.decodeTokens; step++) {               // two untimed warm-up steps, as for llama.cpp
        if (step === 0) t0 = performance.now();
        const logits = model.forwardBatch(caches.map((cache, i) => ({ cache, tokens: [tokens[i]!] })));
        logits.forEach((l, i) => { tokens[i] = argmax(l); });
      }
      const seconds = (performance.now() - t0) / 1000;
      for (const c of caches) c.release();
      rows.push({ model: shape, dtype, ctx, batch: b, engine: 'tessera', threads: o.threads,
        decodeTps: (b * o.decodeTokens) / seconds, msPerToken: (1000 * seconds) / o.decodeTokens, kvBytes, weightBytes: info.weightBytes });
    }
    prompt?.cache.release();
  } finally { model.dispose(); }
  return rows;
}

/** llama.cpp rows (tools/reference/bench-llamacpp.mjs --parallel), or a reason why there are none. */
export function benchLlamaCppBatch(file: string, shape: string, dtype: string, ctx: number, batches: readonly number[],
                                   o: BatchBenchOptions, weightBytes: number): BatchRow[] | string {
  const script = join(o.repo, 'tools/reference/bench-llamacpp.mjs');
  if (!existsSync(join(o.repo, 'tools/reference/node_modules/node-llama-cpp'))) {
    return 'llama.cpp not installed: run `bash tools/reference/install.sh` for its rows';
  }
  process.stderr.write(`bench: ${shape} ${dtype} ctx ${ctx} batch ${batches.join(',')}: llama.cpp…\n`);
  const r = spawnSync(process.execPath, [script, '--model', file, '--threads', String(o.threads), '--ctx', String(ctx),
    '--decode', String(o.decodeTokens), '--parallel', batches.join(','), '--kv', o.cacheDType, '--json',
    ...(o.prefillOnce ? ['--prefill-once'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) return `llama.cpp failed on ${file}: ${r.stderr.trim().split('\n').at(-1)}`;
  return r.stdout.trim().split('\n').flatMap((l) => { try { return [JSON.parse(l)]; } catch { return []; } })
    .filter((j) => j.parallel !== undefined)
    .map((j) => ({ model: shape, dtype, ctx, batch: j.parallel, engine: 'llama.cpp' as const, threads: o.threads,
      decodeTps: j.decodeTokensPerSecond, msPerToken: j.msPerToken, kvBytes: j.kvBytes, weightBytes }));
}

export function formatBatchTable(rows: readonly BatchRow[], notes: readonly string[]): string {
  const lines = [
    '| model | dtype | ctx | batch | engine | threads | decode tok/s (all sequences) | ms/token per sequence | × batch 1 | weights GB/s | KV held | tessera/llama.cpp |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const one = rows.find((o) => o.engine === r.engine && o.model === r.model && o.dtype === r.dtype && o.ctx === r.ctx && o.batch === 1);
    const peer = rows.find((o) => o.engine !== r.engine && o.model === r.model && o.dtype === r.dtype && o.ctx === r.ctx && o.batch === r.batch);
    const ratio = r.engine === 'tessera' && peer ? (r.decodeTps / peer.decodeTps).toFixed(2) : '';
    lines.push(`| ${r.model} | ${r.dtype} | ${r.ctx} | ${r.batch} | ${r.engine} | ${r.threads} | ${r.decodeTps.toFixed(1)} | ${r.msPerToken.toFixed(1)} | ` +
      `${one ? (r.decodeTps / one.decodeTps).toFixed(2) : ''} | ${(r.weightBytes / r.msPerToken / 1e6).toFixed(2)} | ${(r.kvBytes / 2 ** 20).toFixed(1)} MiB | ${ratio} |`);
  }
  return [...notes, '', ...lines].join('\n') + '\n';
}
