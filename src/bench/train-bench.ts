// Training throughput: tokens/s of one full training step (forward, backward, clip, AdamW) of a small
// Llama-architecture model in Tessera (1 thread, and the thread pool), next to the same model and
// step in PyTorch on this CPU (tools/torch-bench/train_step.py), in one table from one run.
// Run: node dist/src/bench/train-bench.js [--steps N]   (N may also be given bare: train-bench.js 3)
// PyTorch comes from Debian (`apt-get install python3-torch`); without it the torch row says so.

import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { TrainMemory } from '../training/memory.js';
import { Tape } from '../training/autograd/tape.js';
import { Params } from '../training/params.js';
import { AdamW, clipGradNorm } from '../training/optim.js';
import { LlamaTrain, llamaTrainConfig } from '../training/models/llama-train.js';
import { Rng } from '../training/rng.js';
import { ThreadPool } from '../runtime/pool.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export const BENCH = { vocab: 512, d: 128, layers: 4, heads: 4, kv_heads: 4, ffn: 384, ctx: 128, batch: 8 };

interface Row { engine: string; threads: number; stepMs: number; tokensPerSec: number; note?: string }

async function tessera(threads: number, steps: number): Promise<Row> {
  const c = llamaTrainConfig({ vocab_size: BENCH.vocab, hidden_size: BENCH.d, intermediate_size: BENCH.ffn, num_hidden_layers: BENCH.layers,
    num_attention_heads: BENCH.heads, num_key_value_heads: BENCH.kv_heads });
  const mem = new TrainMemory({ bytes: 512 << 20, kernels: 'wasm', label: 'train-bench' });
  const pool = threads > 1 ? await ThreadPool.create({ threads, kernels: 'wasm' }) : undefined;
  try {
    const tape = new Tape(mem, pool);
    const params = new Params(mem, 0);
    const model = new LlamaTrain(c, params);
    const opt = new AdamW(params);
    const rng = new Rng(1);
    const { batch: B, ctx: T } = BENCH;
    const step = () => {
      const ids = Int32Array.from({ length: B * T }, () => rng.int(BENCH.vocab));
      const targets = Int32Array.from({ length: B * T }, () => rng.int(BENCH.vocab));
      params.zeroGrad();
      tape.backward(model.loss(tape, ids, targets, B, T));
      tape.reset();
      clipGradNorm(params, 1);
      opt.step(1e-3);
    };
    step();                                     // warm-up (JIT, first-touch of memory)
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    const ms = (performance.now() - t0) / steps;
    return { engine: 'Tessera (wasm SIMD)', threads, stepMs: ms, tokensPerSec: (B * T * 1000) / ms };
  } finally {
    pool?.dispose();
  }
}

function torchRow(threads: number, steps: number): Row {
  const script = join(dirname(fileURLToPath(import.meta.url)), '../../../tools/torch-bench/train_step.py');
  // Debian's python3-torch lives in /usr/bin/python3's dist-packages (a pyenv python3 may shadow it).
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (py.startsWith('/') && !existsSync(py)) continue;
    const r = spawnSync(py, [script, JSON.stringify({ ...BENCH, steps, threads })], { encoding: 'utf8', timeout: 600_000 });
    if (r.status === 0) {
      const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { tokens_per_sec: number; step_ms: number; threads: number; torch: string };
      return { engine: `PyTorch ${j.torch} (CPU)`, threads: j.threads, stepMs: j.step_ms, tokensPerSec: j.tokens_per_sec };
    }
    if (!/No module named 'torch'|ENOENT/.test(`${r.stderr}${r.error?.message ?? ''}`)) {
      return { engine: 'PyTorch', threads, stepMs: NaN, tokensPerSec: NaN, note: `failed: ${r.stderr.trim().split('\n').pop()}` };
    }
  }
  return { engine: 'PyTorch', threads, stepMs: NaN, tokensPerSec: NaN, note: 'skipped: torch not installed (apt-get install python3-torch)' };
}

export async function runTrainBench(steps = 5): Promise<Row[]> {
  const cores = availableParallelism();
  const rows: Row[] = [await tessera(1, steps)];
  if (cores > 1) rows.push(await tessera(cores, steps));
  rows.push(torchRow(1, steps));
  if (cores > 1) rows.push(torchRow(cores, steps));
  const { d, layers, heads, ctx, batch, vocab, ffn } = BENCH;
  console.log(`training step, Llama architecture d=${d} L=${layers} H=${heads} F=${ffn} V=${vocab}, batch ${batch} × ctx ${ctx} (${batch * ctx} tokens/step), ${cores} cores`);
  console.log('| engine | threads | ms/step | tokens/s |\n|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.engine} | ${r.threads} | ${Number.isFinite(r.stepMs) ? r.stepMs.toFixed(0) : '—'} | ${Number.isFinite(r.tokensPerSec) ? r.tokensPerSec.toFixed(0) : r.note} |`);
  }
  return rows;
}

const FLAGS: FlagSpecs = {
  steps: { type: 'integer', min: 1, default: 5, positional: true, placeholder: 'N', description: 'timed training steps per row' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Training throughput of one full training step of a small Llama model: Tessera on 1 thread and the pool, next to PyTorch.');
  if (!v) return 0;
  await runTrainBench(v.steps as number);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
