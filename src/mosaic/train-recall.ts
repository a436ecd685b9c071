// Sanity training of a small Memory Mosaic on multi-query associative recall (src/data/synthetic-recall):
// k1 v1 k2 v2 … then queries q a; the loss is on the answers only. A 1-layer mosaic should solve it
// (keys that mix the past + values that peek one step ahead = an induction head in one layer).
// Run: node dist/src/mosaic/train-recall.js [--steps 600] [--seed 1]  (prints a loss/accuracy table; the steps may be given bare)

import { TrainMemory } from '../training/memory.js';
import { Tape } from '../training/autograd/tape.js';
import { AdamW, clipGradNorm, lrAt } from '../training/optim.js';
import { Rng } from '../training/rng.js';
import { associativeRecall } from '../data/synthetic-recall.js';
import { mosaicConfig, type MosaicConfig } from './config.js';
import { MosaicTrainModel } from './model-train.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface RecallRunOptions {
  steps: number;
  seed?: number;
  batch?: number;
  /** Sequence length (even). */
  length?: number;
  numQueries?: number;
  lr?: number;
  config?: Partial<MosaicConfig>;
  /** Called every `every` steps with the mean training loss since the last call and eval accuracy. */
  onLog?: (row: { step: number; loss: number; accuracy: number }) => void;
  every?: number;
}

/** A batch of B recall sequences: inputs = tokens[0..T−1), targets = next token at answers, −100 elsewhere. */
function recallBatch(seed: number, B: number, T: number, vocab: number, m: number) {
  const inputs = new Int32Array(B * T), targets = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) {
    const task = associativeRecall({ seed: seed * 1009 + b, vocabSize: vocab, length: T, numQueries: m });
    inputs.set(task.tokens, b * T);
    for (const p of task.answerPositions) targets[b * T + p - 1] = task.tokens[p];
  }
  return { inputs, targets };
}

/** Trains and returns the final eval accuracy and the logged rows. */
export function trainRecall(opts: RecallRunOptions): { accuracy: number; rows: { step: number; loss: number; accuracy: number }[] } {
  const B = opts.batch ?? 16, T = opts.length ?? 32, m = opts.numQueries ?? 4, seed = opts.seed ?? 1;
  const cfg = mosaicConfig({ vocab_size: 48, n_embd: 32, n_layer: 1, n_head: 4, block_size: T, ...opts.config });
  const mem = new TrainMemory({ bytes: 256 << 20, kernels: 'wasm' });
  const tape = new Tape(mem);
  const model = new MosaicTrainModel(mem, cfg, seed);
  const opt = new AdamW(model.params, { weightDecay: 0.1 });
  const rng = new Rng(seed);
  const evalBatch = recallBatch(1_000_000 + seed, 64, T, cfg.vocab_size, m);
  const evaluate = (): number => {
    tape.reset();
    const prev = tape.training;
    tape.training = false;
    const logits = tape.noGrad(() => model.forward(tape, evalBatch.inputs, 64, T));
    tape.training = prev;
    const V = cfg.vocab_size;
    let right = 0, total = 0;
    for (let r = 0; r < 64 * T; r++) {
      const t = evalBatch.targets[r];
      if (t < 0) continue;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[r * V + v] > logits.data[r * V + best]) best = v;
      right += best === t ? 1 : 0; total++;
    }
    return right / total;
  };
  const rows: { step: number; loss: number; accuracy: number }[] = [];
  const every = opts.every ?? 50;
  let sum = 0, count = 0;
  for (let step = 0; step < opts.steps; step++) {
    const { inputs, targets } = recallBatch(seed * 7919 + step, B, T, cfg.vocab_size, m);
    tape.reset();
    model.params.zeroGrad();
    const loss = model.loss(tape, inputs, targets, B, T, { rng });
    sum += loss.data[0]; count++;
    tape.backward(loss);
    clipGradNorm(model.params, 1);
    opt.step(lrAt(step, { lr: opts.lr ?? 3e-3, warmup: Math.min(50, opts.steps / 10), total: opts.steps, minLr: 1e-4 }));
    if ((step + 1) % every === 0 || step + 1 === opts.steps) {
      const row = { step: step + 1, loss: sum / count, accuracy: evaluate() };
      rows.push(row);
      opts.onLog?.(row);
      sum = 0; count = 0;
    }
  }
  return { accuracy: rows[rows.length - 1]?.accuracy ?? evaluate(), rows };
}

const FLAGS: FlagSpecs = {
  steps: { type: 'integer', min: 1, default: 600, positional: true, placeholder: 'N', description: 'training steps' },
  seed: { type: 'integer', min: 0, default: 1, description: 'initialisation and data seed' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Sanity training of a small Memory Mosaic on multi-query associative recall (a loss/accuracy table).');
  if (!v) return 0;
  const t0 = Date.now();
  console.log('step  train-loss(answers)  eval-accuracy');
  trainRecall({ steps: v.steps as number, seed: v.seed as number, onLog: (r) => console.log(`${String(r.step).padStart(4)}  ${r.loss.toFixed(4).padStart(19)}  ${r.accuracy.toFixed(3).padStart(13)}`) });
  console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
