// Training throughput of the four SOTU configs (configs/sotu-*-d128-l*.json): tokens/s of whole
// optimizer steps (forward, backward, clipping, AdamW) on 1 thread and on the thread pool, measured
// back to back in one process on random token ids, after one warm-up step. The machine may be shared
// (CI, other jobs): the load average is printed with the table.
//
// Run:  node dist/src/experiments/throughput.js [--steps 5]   (the steps may also be given bare: throughput.js 4)

import { availableParallelism, loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrainMemory } from '../training/memory.js';
import { Tape } from '../training/autograd/tape.js';
import { AdamW, clipGradNorm } from '../training/optim.js';
import { Rng } from '../training/rng.js';
import { ThreadPool } from '../runtime/pool.js';
import { parseTrainConfig, type TrainConfig } from '../training/train-config.js';
import { buildModel } from '../training/train-model.js';
import { memoryBytes } from '../training/train-run.js';
import { markdownTable, REPO_ROOT } from './report.js';
import { LM_RUNS } from './lm-sotu.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface ThroughputRow { name: string; threads: number; parameters: number; stepMs: number; tokensPerSec: number }

export async function measureThroughput(cfg: TrainConfig, vocab: number, threads: number, steps: number): Promise<ThroughputRow> {
  const mem = new TrainMemory({ bytes: memoryBytes(cfg, vocab), kernels: 'wasm', label: 'throughput' });
  const pool = threads > 1 ? await ThreadPool.create({ threads, kernels: 'wasm' }) : undefined;
  try {
    const tape = new Tape(mem, pool);
    const model = buildModel(cfg.family, cfg.model, mem, { vocabSize: vocab, context: cfg.context, seed: 1 });
    const opt = new AdamW(model.params);
    const rng = new Rng(1), B = cfg.batch, T = cfg.context;
    const step = () => {
      const ids = Int32Array.from({ length: B * T }, () => rng.int(vocab)), targets = Int32Array.from({ length: B * T }, () => rng.int(vocab));
      model.params.zeroGrad();
      tape.backward(model.loss(tape, ids, targets, B, T));
      tape.reset();
      clipGradNorm(model.params, 1);
      opt.step(1e-3);
    };
    step();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step();
    const stepMs = (performance.now() - t0) / steps;
    return { name: '', threads, parameters: model.params.count(), stepMs, tokensPerSec: (B * T * 1000) / stepMs };
  } finally {
    pool?.dispose();
  }
}

const FLAGS: FlagSpecs = {
  steps: { type: 'integer', min: 1, default: 5, positional: true, placeholder: 'N', description: 'timed steps per row, after one warm-up step' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Training throughput (tokens/s of whole optimizer steps) of the four SOTU configs on 1 thread and on the pool.');
  if (!v) return 0;
  const steps = v.steps as number;
  const cores = availableParallelism();
  const rows: (string | number)[][] = [];
  const load0 = loadavg()[0];
  for (const name of LM_RUNS) {
    const cfg = parseTrainConfig(JSON.parse(readFileSync(join(REPO_ROOT, 'configs', `${name}.json`), 'utf8')), name);
    for (const threads of cores > 1 ? [1, cores] : [1]) {
      const r = await measureThroughput(cfg, 2048, threads, steps);
      rows.push([name, threads, r.parameters.toLocaleString('en-US'), r.stepMs.toFixed(0), Math.round(r.tokensPerSec).toLocaleString('en-US')]);
      process.stderr.write(`${name} threads ${threads}: ${r.tokensPerSec.toFixed(0)} tokens/s\n`);
    }
  }
  console.log(`training steps of batch 16 × 128 tokens, vocab 2048, ${steps} timed steps each; load average ${load0.toFixed(2)} → ${loadavg()[0].toFixed(2)} on ${cores} cores`);
  console.log(markdownTable(['config', 'threads', 'parameters', 'ms/step', 'tokens/s'], rows));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
