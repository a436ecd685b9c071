// The training loop: micro-batches with gradient accumulation, global-norm clipping, AdamW under the
// warm-up + cosine schedule, periodic evaluation, progress on stderr, loss curves as JSON/CSV/SVG,
// and atomic checkpoints that resume exactly (parameters, moments, optimizer step, dropout RNG, data
// cursor and history are all in the checkpoint; nothing else influences the next step).

import { writeFileAtomic } from '../formats/safetensors-writer.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Tape } from './autograd/tape.js';
import type { Tensor } from './autograd/tensor.js';
import type { Params } from './params.js';
import { AdamW, clipGradNorm, lrAt, type Schedule } from './optim.js';
import { Rng, type RngState } from './rng.js';
import type { Batch, BatchSource } from './batches.js';
import { ProgressBar } from './progress.js';
import { loadCheckpoint, saveCheckpoint, findCheckpoint } from './checkpoint.js';
import { linePlotSvg } from './plot-svg.js';

export interface LogRow {
  step: number;           // 1-based: the row after optimizer step `step`
  loss: number;           // mean of the micro-batch losses of this step
  lr: number;
  gradNorm: number;       // before clipping
  tokens: number;         // total training tokens so far
  tokensPerSec: number;
  evalLoss?: number;
}

export interface TrainerOptions {
  tape: Tape;
  params: Params;
  optimizer: AdamW;
  /** Scalar loss of one micro-batch (rng: for dropout). */
  loss: (tape: Tape, batch: Batch, rng: Rng) => Tensor;
  data: BatchSource;
  schedule: Schedule;
  /** Optimizer steps in total (the schedule's `total` is usually the same). */
  steps: number;
  /** Micro-batches per optimizer step (default 1). */
  accumulate?: number;
  /** Global gradient-norm limit (default 1; 0 = off). */
  clip?: number;
  /** Seed of the dropout RNG. */
  seed: number;
  /** config.json written into checkpoints. */
  config: Record<string, unknown>;
  checkpointDir?: string;
  checkpointEvery?: number;
  /** Evaluation loss every `every` steps (run with the tape in no-grad, eval mode). */
  evaluate?: { every: number; fn: (tape: Tape) => number };
  /** Folder for loss.json, loss.csv and loss.svg (written at every checkpoint and at the end). */
  logDir?: string;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  /** Called after every step (for tests and custom logging). */
  onStep?: (row: LogRow) => void;
}

interface TrainerState { step: number; tokens: number; rng: RngState; data: unknown; history: LogRow[] }

/** trainer_state.json checked field by field against what save() writes; errors name the file. */
function trainerState(raw: unknown, file: string, totalSteps: number): TrainerState {
  const fail = (msg: string): never => { throw new Error(`Trainer.resume: ${file}: ${msg}; it was not written by this run (resume with the file it wrote, or start over with --overwrite)`); };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('must be a JSON object');
  const s = raw as Record<string, unknown>;
  for (const f of ['step', 'tokens', 'rng', 'data', 'history']) if (!(f in s)) fail(`the field "${f}" is missing`);
  if (!Number.isSafeInteger(s.step) || (s.step as number) < 0 || (s.step as number) > totalSteps) {
    fail(`step = ${JSON.stringify(s.step)} must be an integer in [0, ${totalSteps}] (the run's steps)`);
  }
  if (!Number.isSafeInteger(s.tokens) || (s.tokens as number) < 0) fail(`tokens = ${JSON.stringify(s.tokens)} must be a non-negative integer`);
  if (!Array.isArray(s.history) || s.history.length !== s.step) fail(`history must hold one row per step (${String(s.step)})`);
  return s as unknown as TrainerState;
}

export class Trainer {
  step = 0;
  tokens = 0;
  readonly history: LogRow[] = [];
  private readonly rng: Rng;
  private readonly bar: ProgressBar;

  constructor(readonly o: TrainerOptions) {
    this.rng = new Rng(o.seed);
    this.bar = new ProgressBar(process.stderr, 10, o.progress ?? true);
  }

  /** Resumes from o.checkpointDir if it holds a checkpoint; returns whether it did. A trainer state that
   *  is not one this trainer wrote, or parameters that are not finite, are refused naming the file. */
  resume(): boolean {
    const dir = this.o.checkpointDir;
    if (!dir || !findCheckpoint(dir)) return false;
    const ck = loadCheckpoint(dir, { params: this.o.params, optimizer: this.o.optimizer });
    if (ck.state === null) throw new Error(`Trainer.resume: ${ck.dir} has no trainer_state.json; it cannot be resumed (start over with --overwrite)`);
    const s = trainerState(ck.state, ck.statePath, this.o.steps);
    for (const p of this.o.params.list()) {
      const i = p.data.findIndex((x) => !Number.isFinite(x));
      if (i >= 0) {
        throw new Error(`Trainer.resume: ${join(ck.dir, 'model.safetensors')}: parameter ${p.name} holds ${p.data[i]} (element ${i}): the checkpoint was saved `
          + 'from a diverged run; start over with --overwrite (and a lower learning rate)');
      }
    }
    const restore = (what: string, set: () => void) => {
      try { set(); } catch (e) { throw new Error(`Trainer.resume: ${ck.statePath}: ${what} is not a state this run wrote (${(e as Error).message})`); }
    };
    restore('rng', () => this.rng.setState(s.rng));
    restore('data', () => this.o.data.setState(s.data));
    this.step = s.step;
    this.tokens = s.tokens;
    this.history.splice(0, this.history.length, ...s.history);
    return true;
  }

  /** Writes a checkpoint of the current state to o.checkpointDir (and the logs). */
  save(): void {
    const dir = this.o.checkpointDir;
    if (!dir) throw new Error('Trainer.save: no checkpointDir was given');
    saveCheckpoint(dir, {
      params: this.o.params, config: this.o.config, optimizer: this.o.optimizer,
      state: { step: this.step, tokens: this.tokens, rng: this.rng.getState(), data: this.o.data.getState(), history: this.history },
    });
    this.writeLogs();
  }

  /** Runs optimizer steps until `until` (default o.steps); returns the history. */
  run(until = this.o.steps): LogRow[] {
    const { tape, params, optimizer } = this.o;
    const accum = this.o.accumulate ?? 1, clip = this.o.clip ?? 1;
    const t0 = performance.now(), startTokens = this.tokens, startStep = this.step;
    while (this.step < until) {
      const lr = lrAt(this.step, this.o.schedule);
      let lossSum = 0;
      params.zeroGrad();
      for (let a = 0; a < accum; a++) {
        const batch = this.o.data.next();
        const loss = this.o.loss(tape, batch, this.rng);
        if (!Number.isFinite(loss.data[0])) this.diverged('loss', loss.data[0], lr);
        lossSum += loss.data[0];
        tape.backward(loss, 1 / accum);
        tape.reset();
        this.tokens += batch.B * batch.T;
      }
      const gradNorm = clipGradNorm(params, clip);
      if (!Number.isFinite(gradNorm)) this.diverged('gradient norm', gradNorm, lr);
      optimizer.step(lr);
      this.step++;
      const secs = (performance.now() - t0) / 1000;
      const row: LogRow = { step: this.step, loss: lossSum / accum, lr, gradNorm, tokens: this.tokens, tokensPerSec: (this.tokens - startTokens) / secs };
      const ev = this.o.evaluate;
      if (ev && (this.step % ev.every === 0 || this.step === this.o.steps)) row.evalLoss = this.evaluate(ev.fn);
      this.history.push(row);
      this.o.onStep?.(row);
      this.bar.update({ step: this.step, total: this.o.steps, loss: row.loss, lr, tokensPerSec: row.tokensPerSec,
        etaSec: ((this.o.steps - this.step) * secs) / (this.step - startStep),
        extra: row.evalLoss !== undefined ? `eval ${row.evalLoss.toFixed(4)}` : undefined });
      if (this.o.checkpointDir && this.o.checkpointEvery && this.step % this.o.checkpointEvery === 0) this.save();
    }
    this.bar.done();
    if (this.o.checkpointDir && this.o.checkpointEvery) this.save();
    else this.writeLogs();
    return this.history;
  }

  /** Stops a run whose loss or gradients stopped being numbers: every later step would be NaN, and a
   *  checkpoint of it would overwrite the last good one. Nothing is saved after this. */
  private diverged(what: string, value: number, lr: number): never {
    this.bar.done();
    throw new Error(`training diverged: the ${what} of step ${this.step + 1} is ${value} (learning rate ${lr.toPrecision(3)}); `
      + `${this.o.checkpointDir ? `the checkpoint in ${this.o.checkpointDir} keeps the last good step` : 'nothing was saved'}; lower the learning rate or raise warm-up, then start over`);
  }

  private evaluate(fn: (tape: Tape) => number): number {
    const tape = this.o.tape;
    const prev = tape.training;
    tape.training = false;
    try { return tape.noGrad(() => fn(tape)); } finally { tape.training = prev; tape.reset(); }
  }

  /** loss.json, loss.csv and loss.svg in o.logDir. */
  writeLogs(): void {
    const dir = this.o.logDir;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    const enc = (s: string) => [new TextEncoder().encode(s)];
    writeFileAtomic(join(dir, 'loss.json'), enc(JSON.stringify(this.history) + '\n'));
    const csv = ['step,loss,lr,grad_norm,tokens,tokens_per_sec,eval_loss',
      ...this.history.map((r) => [r.step, r.loss, r.lr, r.gradNorm, r.tokens, r.tokensPerSec.toFixed(1), r.evalLoss ?? ''].join(','))];
    writeFileAtomic(join(dir, 'loss.csv'), enc(csv.join('\n') + '\n'));
    const series = [{ name: 'train loss', points: this.history.map((r) => [r.step, r.loss] as [number, number]) }];
    const evals = this.history.filter((r) => r.evalLoss !== undefined).map((r) => [r.step, r.evalLoss!] as [number, number]);
    if (evals.length) series.push({ name: 'eval loss', points: evals });
    writeFileAtomic(join(dir, 'loss.svg'), enc(linePlotSvg({ title: 'Loss', xLabel: 'step', yLabel: 'loss', series })));
  }
}
