// One training run from a TrainConfig: data, model, AdamW under warm-up + cosine, the Trainer loop
// (progress bar, periodic held-out loss, resumable checkpoints), then a final evaluation over many
// held-out windows and the exported model folder. Everything lands in cfg.out:
//   train-config.json   the validated config (a resumed run must match it)
//   checkpoint/         resumable training checkpoint (parameters, AdamW moments, RNG, data cursor)
//   loss.json/.csv/.svg training and held-out loss per step
//   per-position.svg    held-out loss at each position of the window
//   model/              config.json + model.safetensors (+ tokenizer.json, tokenizer_config.json)
//   result.json         parameters, tokens, throughput, final held-out loss/perplexity/accuracy

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_TRAIN_MEMORY_BYTES, TrainMemory } from './memory.js';
import { Tape } from './autograd/tape.js';
import { AdamW } from './optim.js';
import { Trainer, type LogRow } from './trainer.js';
import { findCheckpoint, removeStaleTemps } from './checkpoint.js';
import { linePlotSvg } from './plot-svg.js';
import { ThreadPool } from '../runtime/pool.js';
import { checkTrainingPlan, type TrainConfig } from './train-config.js';
import { prepareData, validationTokens, type RunData } from './train-data.js';
import { buildModel, type TrainableModel } from './train-model.js';
import { evaluateBatches, windowBatches, type EvalResult } from './evaluate.js';
import { initFromModel } from './train-init.js';

export interface RunOptions {
  /** Continue from cfg.out/checkpoint if present (the config must be the same). */
  resume?: boolean;
  /** Start over even though cfg.out/checkpoint holds a checkpoint (replaced at the first save). */
  overwrite?: boolean;
  progress?: boolean;
  /** Held-out windows of the final evaluation on a corpus (default 256). */
  finalEvalWindows?: number;
  /** Stop after this many steps of this invocation (tests of resume); the schedule still spans cfg.steps. */
  stopAt?: number;
  log?: (line: string) => void;
}

export interface RunResult {
  family: TrainConfig['family'];
  parameters: number;
  steps: number;
  tokens: number;
  /** Training tokens per second of this invocation (forward + backward + update). */
  tokensPerSec: number;
  seconds: number;
  final: EvalResult & { perplexity: number; windows: number };
  history: LogRow[];
  modelDir: string;
  vocabSize: number;
}

/** Working memory for a run: parameters ×4 (value, grad, two moments) + activations, generously. */
export function memoryBytes(cfg: TrainConfig, vocab: number): number {
  const { d, layers: L, heads: H } = cfg.model;
  const params = vocab * d + L * 13 * d * d;
  const rows = cfg.batch * cfg.context;
  const act = rows * (4 * vocab + L * 80 * d) + cfg.batch * H * cfg.context * cfg.context * 4 * L;
  return Math.min(MAX_TRAIN_MEMORY_BYTES, Math.ceil((params * 5 + act * 2) * 4 + (96 << 20)));
}

/** The same run's config: equal but for the thread count and the out folder (a run folder may be moved
 *  or copied to another checkout and still continue). */
export function sameConfig(a: TrainConfig, b: TrainConfig): boolean {
  const strip = (c: TrainConfig) => JSON.stringify({ ...c, threads: 0, out: '' });
  return strip(a) === strip(b);
}

/** Runs (or resumes) training as configured; writes the outputs listed in the header. */
export async function runTraining(cfg: TrainConfig, opts: RunOptions = {}): Promise<RunResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  mkdirSync(cfg.out, { recursive: true });
  const cfgPath = join(cfg.out, 'train-config.json');
  const ckDir = join(cfg.out, 'checkpoint');
  const existing = findCheckpoint(ckDir);
  if (existing && !opts.resume && !opts.overwrite) {
    throw new Error(`${cfg.out} holds a training checkpoint (${existing}); pass --resume to continue it, --overwrite to start over and replace it, or choose another --out`);
  }
  if (opts.resume && opts.overwrite) throw new Error('--resume and --overwrite contradict each other: continue the checkpoint, or replace it');
  for (const d of [cfg.out, join(cfg.out, 'model')]) {
    for (const name of removeStaleTemps(d)) log(`removed ${join(d, name)} (left by an interrupted write)`);
  }
  if (opts.resume && existsSync(cfgPath)) {
    const saved = JSON.parse(readFileSync(cfgPath, 'utf8')) as TrainConfig;
    if (!sameConfig(saved, cfg)) throw new Error(`--resume: ${cfgPath} differs from this config; resume with the same config (or pick another out folder)`);
  }
  writeFileSync(cfgPath, JSON.stringify(cfg, null, 2) + '\n');

  const data: RunData = prepareData(cfg);
  checkTrainingPlan(cfg, data.vocabSize, cfgPath); // again, now that a tokenizer file's vocabulary is known
  const mem = new TrainMemory({ bytes: memoryBytes(cfg, data.vocabSize), kernels: 'wasm', label: `train-${cfg.family}` });
  const pool = cfg.threads > 1 ? await ThreadPool.create({ threads: cfg.threads, kernels: 'wasm' }) : undefined;
  try {
    const tape = new Tape(mem, pool);
    const model: TrainableModel = buildModel(cfg.family, cfg.model, mem, {
      vocabSize: data.vocabSize, context: cfg.context, seed: cfg.seed, bosTokenId: data.eotId, eosTokenId: data.eotId,
    });
    if (cfg.init !== undefined) initFromModel(model.params, cfg.init);
    const optimizer = new AdamW(model.params, { weightDecay: cfg.weightDecay });
    const trainer = new Trainer({
      tape, params: model.params, optimizer, data: data.train,
      schedule: { lr: cfg.lr, minLr: cfg.minLr, warmup: cfg.warmup, total: cfg.steps },
      steps: cfg.steps, accumulate: cfg.accumulate, clip: cfg.clip, seed: cfg.seed, config: model.configJson,
      checkpointDir: ckDir, checkpointEvery: cfg.checkpointEvery || cfg.steps, logDir: cfg.out, progress: opts.progress ?? true,
      evaluate: { every: cfg.evalEvery || cfg.steps, fn: (t) => evaluateBatches(t, model, data.evalBatches).loss },
      loss: (t, b, rng) => model.loss(t, b.ids, b.targets, b.B, b.T, rng),
    });
    if (opts.resume && trainer.resume()) log(`resumed from ${ckDir} at step ${trainer.step}`);
    log(`${cfg.family}: ${model.params.count().toLocaleString('en-US')} parameters, vocab ${data.vocabSize}, ${cfg.steps} steps × ${cfg.batch * cfg.accumulate} × ${cfg.context} tokens`);
    const t0 = performance.now(), tokens0 = trainer.tokens;
    const history = trainer.run(Math.min(cfg.steps, opts.stopAt ?? cfg.steps));
    const seconds = (performance.now() - t0) / 1000;
    const tokensPerSec = seconds > 0 ? (trainer.tokens - tokens0) / seconds : 0;

    // Final evaluation: many windows of the validation split (corpus) or the held-out task batches.
    const valid = validationTokens(cfg, data);
    const batches = valid ? windowBatches(valid, cfg.batch, cfg.context, opts.finalEvalWindows ?? 256) : data.evalBatches;
    const final = evaluateBatches(tape, model, batches);
    if (!Number.isFinite(final.loss)) throw new Error(`training produced a model whose held-out loss is ${final.loss}: its parameters are not finite; nothing was exported`);
    const windows = batches.reduce((n, b) => n + b.B, 0);

    const modelDir = join(cfg.out, 'model');
    model.exportWeights(modelDir, { tessera_train: JSON.stringify({ family: cfg.family, steps: trainer.step, seed: cfg.seed }) });
    if (data.tokenizerJson) {
      writeFileSync(join(modelDir, 'tokenizer.json'), JSON.stringify(data.tokenizerJson));
      writeFileSync(join(modelDir, 'tokenizer_config.json'), JSON.stringify(data.tokenizerConfig, null, 2) + '\n');
    }
    if (data.generationConfig) writeFileSync(join(modelDir, 'generation_config.json'), JSON.stringify(data.generationConfig, null, 2) + '\n');
    writeFileSync(join(cfg.out, 'per-position.svg'), linePlotSvg({
      title: `held-out loss by position (${cfg.family}, ${cfg.model.layers} layer${cfg.model.layers > 1 ? 's' : ''})`,
      xLabel: 'position in window', yLabel: 'loss (nats)',
      series: [{ name: cfg.family, points: final.perPosition.flatMap((y, x) => (Number.isNaN(y) ? [] : [[x, y] as [number, number]])) }],
    }));
    const result: RunResult = {
      family: cfg.family, parameters: model.params.count(), steps: trainer.step, tokens: trainer.tokens, tokensPerSec, seconds,
      final: { ...final, perplexity: Math.exp(final.loss), windows }, history, modelDir, vocabSize: data.vocabSize,
    };
    writeFileSync(join(cfg.out, 'result.json'), JSON.stringify({ config: cfg, ...result, history: undefined }, null, 2) + '\n');
    log(`${cfg.family}: held-out loss ${final.loss.toFixed(4)} (ppl ${Math.exp(final.loss).toFixed(2)}, accuracy ${(100 * final.accuracy).toFixed(1)}%) over ${final.count} targets; ${tokensPerSec.toFixed(0)} tokens/s; model in ${modelDir}`);
    return result;
  } finally {
    pool?.dispose();
  }
}
