// Trains the long-context model: a Llama-architecture transformer, on the synthetic long-context
// tasks (tasks.ts) with a context curriculum (config stages), by Tessera's training engine, and
// exports a Hugging Face Llama folder that loadModel runs.
//
//   node dist/src/experiments/long-context/train.js [--config configs/long-context.json] [--resume]
//        [--stop-at N] [--export-only] [--no-progress]
//
// A config with `initFrom` (a folder this script exported, same architecture and tokenizer) starts
// from that model's parameters with a fresh optimizer and step 0: longer-context continued training.
//
// Loss: cross-entropy on the answer tokens and the EOS after them, plus lmWeight × cross-entropy on
// lmRows random positions per sequence (ordinary next-token loss, which shapes the copy heads early).
// Everything random is a function of the config seed; an interrupted run resumes exactly from
// <out>/checkpoint (parameters, AdamW moments, step, data cursor). Held-out answer loss and
// teacher-forced answer accuracy at evalContext are logged to <out>/eval.jsonl.

import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlagSpecs } from '../../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../../cli/script.js';
import { TrainMemory } from '../../training/memory.js';
import { Tape } from '../../training/autograd/tape.js';
import { Params } from '../../training/params.js';
import { AdamW } from '../../training/optim.js';
import { Trainer } from '../../training/trainer.js';
import { loadCheckpoint, findCheckpoint } from '../../training/checkpoint.js';
import type { Batch, BatchSource } from '../../training/batches.js';
import { hfConfigJson, llamaTrainConfig } from '../../training/models/llama-train.js';
import type { LlamaConfig } from '../../models/config.js';
import { writeSafetensors } from '../../formats/safetensors-writer.js';
import { ThreadPool } from '../../runtime/pool.js';
import { deriveSeed, Rng } from '../../data/rng.js';
import { LongContextModel, type ScoredRows } from './model.js';
import { LongContextTasks, trainLongContextTokenizer, tokenizerConfig, TASK_KINDS, TASK_OPTIONS_FILE, type TaskKind } from './tasks.js';
import { initFromFolder } from './init-from.js';
import { finalContext, readConfig, stageAt, totalSteps, type LongContextConfig } from './config.js';

/** A batch with its scored rows split into answers (targets ≠ −100) and sampled LM rows. */
export interface LongBatch extends Batch { lm: ScoredRows }

/** The curriculum's batches: batch `step` holds examples deriveSeed(seed, step, b) at the stage's context. */
export class CurriculumBatches implements BatchSource {
  step = 0;
  constructor(readonly cfg: LongContextConfig, readonly tasks: LongContextTasks) {}

  next(): LongBatch {
    const stage = stageAt(this.cfg, this.step), { context: T, batch: B } = stage, mix = stage.mix ?? this.cfg.mix;
    const pad = this.tasks.eot;
    const ids = new Int32Array(B * T).fill(pad), targets = new Int32Array(B * T).fill(-100); // (B, T)
    const lmRows: number[] = [], lmTargets: number[] = [];
    for (let b = 0; b < B; b++) {
      const seed = deriveSeed(this.cfg.seed, this.step, b);
      const ex = this.tasks.example(LongContextTasks.pickKind(mix, seed), T, seed, { extraQuestions: this.cfg.extraQuestions });
      const n = ex.tokens.length;
      if (n > T + 1) throw new Error(`CurriculumBatches: an example of ${n} tokens does not fit a window of ${T} + 1`);
      ids.set(ex.tokens.subarray(0, Math.min(n, T)), b * T);
      for (const p of ex.answerPositions) targets[b * T + p - 1] = ex.tokens[p];
      // LM rows: positions whose next token is not an answer (those are scored already).
      const isAnswer = new Uint8Array(n);
      for (const p of ex.answerPositions) isAnswer[p] = 1;
      const free: number[] = [];
      for (let t = 0; t + 1 < Math.min(n, T + 1); t++) if (!isAnswer[t + 1]) free.push(t);
      // lmRows ≥ the free rows: all of them; fewer: a random sample.
      const rng = new Rng(deriveSeed(seed, 0x1a));
      const all = this.cfg.lmRows >= free.length;
      for (let i = 0; i < Math.min(this.cfg.lmRows, free.length); i++) {
        const t = all ? free[i] : free[rng.int(free.length)];
        lmRows.push(b * T + t); lmTargets.push(ex.tokens[t + 1]);
      }
    }
    this.step++;
    return { ids, targets, B, T, lm: { rows: Int32Array.from(lmRows), targets: Int32Array.from(lmTargets) } };
  }

  getState(): { step: number } { return { step: this.step }; }
  setState(s: unknown): void { this.step = (s as { step: number }).step; }
}

/** The answer rows of a batch: where targets ≠ −100. */
export function answerRows(b: Batch): ScoredRows {
  const rows: number[] = [], targets: number[] = [];
  b.targets.forEach((t, i) => { if (t !== -100) { rows.push(i); targets.push(t); } });
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

export function modelConfig(cfg: LongContextConfig, vocabSize: number, eot: number): LlamaConfig {
  const m = cfg.model;
  return llamaTrainConfig({
    vocab_size: vocabSize, hidden_size: m.d, intermediate_size: m.ffn, num_hidden_layers: m.layers,
    num_attention_heads: m.heads, num_key_value_heads: m.kvHeads, rope_theta: m.ropeTheta,
    max_position_embeddings: finalContext(cfg), bos_token_id: eot, eos_token_id: eot,
  });
}

/** Held-out examples at evalContext (seeds the training stream never draws), kinds in turn. */
export function heldOutExamples(cfg: LongContextConfig, tasks: LongContextTasks, count: number, context: number, kinds: readonly TaskKind[] = TASK_KINDS) {
  return Array.from({ length: count }, (_, i) => tasks.example(kinds[i % kinds.length], context, deriveSeed(cfg.seed, 0x5eed, i)));
}

/** Answer loss and teacher-forced accuracy (every answer token right) per kind. */
export function evaluateHeldOut(tape: Tape, model: LongContextModel, examples: ReturnType<typeof heldOutExamples>) {
  let lossSum = 0;
  const byKind: Record<string, { right: number; loss: number; n: number }> = {};
  for (const ex of examples) {
    const T = ex.tokens.length - 1;
    const rows = Int32Array.from(ex.answerPositions, (p) => p - 1), targets = Int32Array.from(ex.answerPositions, (p) => ex.tokens[p]);
    const logits = model.rowLogits(tape, model.hidden(tape, ex.tokens.subarray(0, T), 1, T), rows); // (n, V)
    const V = model.config.vocab_size;
    let ok = true, loss = 0;
    for (let r = 0; r < rows.length; r++) {
      const row = logits.data.subarray(r * V, (r + 1) * V);
      let max = -Infinity, arg = 0, z = 0;
      for (let v = 0; v < V; v++) if (row[v] > max) { max = row[v]; arg = v; }
      for (let v = 0; v < V; v++) z += Math.exp(row[v] - max);
      loss += Math.log(z) + max - row[targets[r]];
      if (arg !== targets[r]) ok = false;
    }
    lossSum += loss / rows.length;
    const k = (byKind[ex.kind] ??= { right: 0, loss: 0, n: 0 });
    k.right += ok ? 1 : 0; k.loss += loss / rows.length; k.n++;
    tape.reset();
  }
  const per = (f: (k: { right: number; loss: number; n: number }) => number) => Object.fromEntries(Object.entries(byKind).map(([kind, k]) => [kind, f(k)]));
  return { loss: lossSum / examples.length, accuracy: per((k) => k.right / k.n), lossByKind: per((k) => k.loss / k.n) };
}

/** Writes config.json, model.safetensors (f32), tokenizer.json and tokenizer_config.json. */
export function exportModel(dir: string, config: LlamaConfig, params: Params, tasks: LongContextTasks, meta: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'model.safetensors'), params.list().map((t) => ({
    name: t.name, dtype: 'F32' as const, shape: [...t.shape], data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice(),
  })), { format: 'pt', ...meta });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfigJson(config), null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tasks.tokenizerJson));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig(config.max_position_embeddings), null, 2) + '\n');
  writeFileSync(join(dir, TASK_OPTIONS_FILE), JSON.stringify({ counting: tasks.counting, needle: tasks.needle }, null, 2) + '\n');
}

export interface TrainOptions { resume?: boolean; stopAt?: number; exportOnly?: boolean; progress?: boolean; log?: (s: string) => void }

/** Runs (or resumes) the configured training and exports the model; returns the final held-out result. */
export async function trainLongContext(cfg: LongContextConfig, o: TrainOptions = {}) {
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  mkdirSync(cfg.out, { recursive: true });
  writeFileSync(join(cfg.out, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const tasks = new LongContextTasks(trainLongContextTokenizer(cfg.tokenizer.vocabSize, cfg.tokenizer.seed), cfg.counting, cfg.needle);
  const config = modelConfig(cfg, tasks.vocabSize, tasks.eot);
  const maxTokens = Math.max(...cfg.stages.map((s) => s.batch * s.context), cfg.evalContext);
  const mem = new TrainMemory({ bytes: Math.min(3 * 2 ** 30, (96 << 20) + maxTokens * cfg.model.layers * 40 * (6 * cfg.model.d + 3 * cfg.model.ffn) + 40 * tasks.vocabSize * cfg.model.d * 4 + (cfg.lmRows > 0 ? maxTokens * tasks.vocabSize * 16 : 0)), kernels: 'wasm', label: 'train-long-context' });
  const pool = cfg.threads > 1 ? await ThreadPool.create({ threads: cfg.threads, kernels: 'wasm' }) : undefined;
  try {
    const tape = new Tape(mem, pool);
    const params = new Params(mem, cfg.seed);
    const model = new LongContextModel(config, params);
    const optimizer = new AdamW(params, { weightDecay: cfg.weightDecay });
    const data = new CurriculumBatches(cfg, tasks);
    // Held-out examples of the kinds the final stage trains on (untrained kinds would only add noise).
    const lastMix = cfg.stages[cfg.stages.length - 1].mix ?? cfg.mix;
    const held = heldOutExamples(cfg, tasks, cfg.evalExamples, cfg.evalContext, TASK_KINDS.filter((k) => (lastMix[k] ?? 0) > 0));
    const ckDir = join(cfg.out, 'checkpoint');
    const steps = totalSteps(cfg);
    let trainer: Trainer | null = null;
    const evalLog = (tape: Tape) => {
      const r = evaluateHeldOut(tape, model, held);
      const line = { step: trainer?.step ?? 0, loss: r.loss, accuracy: r.accuracy, lossByKind: r.lossByKind };
      appendFileSync(join(cfg.out, 'eval.jsonl'), JSON.stringify(line) + '\n');
      log(`\n[eval @${line.step}, ${cfg.evalContext} tokens] answer loss ${r.loss.toFixed(3)}; ${Object.entries(r.accuracy).map(([k, a]) => `${k} ${(100 * a).toFixed(0)}% (loss ${r.lossByKind[k].toFixed(2)})`).join(', ')}`);
      return r.loss;
    };
    trainer = new Trainer({
      tape, params, optimizer, data,
      schedule: { lr: cfg.lr, minLr: cfg.minLr, warmup: cfg.warmup, total: steps, decayFrom: cfg.decayFrom },
      steps, clip: cfg.clip, seed: cfg.seed, config: hfConfigJson(config),
      checkpointDir: ckDir, checkpointEvery: cfg.checkpointEvery || steps, logDir: cfg.out, progress: o.progress ?? true,
      evaluate: cfg.evalEvery > 0 ? { every: cfg.evalEvery, fn: evalLog } : undefined,
      loss: (t, b) => model.loss(t, b.ids, b.B, b.T, answerRows(b), (b as LongBatch).lm, cfg.lmWeight),
    });
    if (o.exportOnly) {
      if (!findCheckpoint(ckDir)) throw new Error(`--export-only: no checkpoint in ${ckDir}; train first`);
      const ck = loadCheckpoint(ckDir, { params });
      trainer.step = (ck.state as { step?: number } | null)?.step ?? 0;
    } else {
      if (cfg.initFrom !== undefined) initFromFolder(params, cfg.initFrom, config, tasks.tokenizerJson);
      if (o.resume && trainer.resume()) log(`resumed from ${ckDir} at step ${trainer.step}`);
      else if (cfg.initFrom !== undefined) log(`starting from the parameters of ${cfg.initFrom} (fresh optimizer, step 0)`);
      log(`long-context: ${params.count().toLocaleString('en-US')} parameters, vocab ${tasks.vocabSize}, ${steps} steps: ${cfg.stages.map((s) => `${s.steps} × ${s.batch} × ${s.context}`).join(', then ')}`);
      trainer.run(Math.min(steps, o.stopAt ?? steps));
    }
    const final = tape.noGrad(() => evaluateHeldOut(tape, model, held));
    exportModel(cfg.modelDir, config, params, tasks, { tessera_train: JSON.stringify({ experiment: 'long-context', steps: trainer.step, seed: cfg.seed }) });
    log(`long-context: step ${trainer.step}, held-out answer loss ${final.loss.toFixed(3)}; model in ${cfg.modelDir}`);
    return { step: trainer.step, ...final, parameters: params.count(), vocabSize: tasks.vocabSize, history: trainer.history };
  } finally {
    pool?.dispose();
  }
}

const FLAGS: FlagSpecs = {
  config: { type: 'string', default: 'configs/long-context.json', placeholder: 'PATH', description: 'training config (stages, model, out, modelDir)' },
  resume: { type: 'boolean', description: "continue from <out>/checkpoint (the next stage's config resumes the previous one)" },
  'stop-at': { type: 'integer', min: 1, placeholder: 'N', description: 'stop after step N (a checkpoint is written)' },
  'export-only': { type: 'boolean', description: 'only export <out>/checkpoint to the model folder' },
  'no-progress': { type: 'boolean', description: 'no progress bar' },
};

async function main(): Promise<number> {
  // parsed before anything runs: an unknown option (or --help) must never start hours of training
  // that end by exporting over the config's model folder
  const v = scriptFlags(import.meta.url, FLAGS, 'Trains the long-context model (docs/LONG_CONTEXT_MODEL.md) and exports it to the config\'s modelDir.');
  if (!v) return 0;
  await trainLongContext(readConfig(v.config as string), {
    resume: v.resume === true, exportOnly: v['export-only'] === true, progress: v['no-progress'] !== true, stopAt: v['stop-at'] as number | undefined,
  });
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
