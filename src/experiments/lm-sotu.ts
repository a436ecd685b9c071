// Experiment b: language modelling on the State of the Union corpus, Memory Mosaic vs a
// Llama-architecture transformer at matched parameters (a mosaic block has 12d² + 2d + 7H parameters,
// the transformer block 4d² + 3dF + 2d with F = 344 ≈ 8d/3) and equal training tokens, at depths 1
// and 4. The four runs use configs/sotu-{llama,mosaic}-d128-l{1,4}.json (same BPE tokenizer trained on
// the train split, same batches, schedule and seed), one after another. Reported: held-out loss
// (256 windows of 128 tokens of the validation split), curves, per-position loss, and the loss of
// the exported models through the inference engine at 128 and 512 tokens of context.
//
// Run:  node dist/src/experiments/lm-sotu.js            (~20 min on 2 cores; writes docs/)
//       node dist/src/experiments/lm-sotu.js --quick    (seconds; tiny models, temp folder)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../training/train-config.js';
import { runTraining, type RunResult } from '../training/train-run.js';
import { evalPerplexity, type PerplexityResult } from '../eval/perplexity.js';
import { bucketed } from '../training/evaluate.js';
import { EXPERIMENT_FLAGS, experimentDirs, fmt, markdownTable, thinHistory, writeFiles, REPO_ROOT, type ExperimentArgs } from './report.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export const LM_RUNS = ['sotu-llama-d128-l1', 'sotu-mosaic-d128-l1', 'sotu-llama-d128-l4', 'sotu-mosaic-d128-l4'] as const;

export interface LmRun { name: string; config: TrainConfig; result: RunResult; engine: PerplexityResult[] }

/** The config of one run: configs/NAME.json, out under runsDir; --quick shrinks it to seconds. */
export function lmConfig(name: string, args: ExperimentArgs): TrainConfig {
  const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'configs', `${name}.json`), 'utf8')) as Record<string, unknown>;
  raw.out = join(args.runsDir, name);
  if (args.quick) {
    Object.assign(raw, { steps: 3, batch: 2, context: 32, warmup: 1, evalEvery: 2, evalBatches: 1, checkpointEvery: 0 });
    raw.model = { ...(raw.model as object), d: 32 };
    raw.data = { corpus: 'sotu', vocabSize: 300 };
  }
  return parseTrainConfig(raw, `configs/${name}.json`);
}

export async function runLmExperiment(args: ExperimentArgs, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<LmRun[]> {
  const runs: LmRun[] = [];
  for (const name of LM_RUNS) {
    const config = lmConfig(name, args);
    log(`== ${name}`);
    const result = await runTraining(config, { progress: !args.quick, log, overwrite: true, finalEvalWindows: args.quick ? 4 : 256 }); // a reproduction starts over
    const engine: PerplexityResult[] = [];
    for (const ctx of args.quick ? [config.context] : [config.context, 4 * config.context]) {
      engine.push(await evalPerplexity(result.modelDir, { corpus: 'sotu', ctx, maxWindows: args.quick ? 2 : Math.round(8192 / ctx) * 2, threads: 1 }));
    }
    runs.push({ name, config, result, engine });
  }
  writeLmReport(runs, args);
  return runs;
}

function label(r: LmRun): string {
  return `${r.config.family === 'llama' ? 'transformer' : 'mosaic'} L${r.config.model.layers}`;
}

export function writeLmReport(runs: LmRun[], args: ExperimentArgs): string[] {
  const rows = runs.map((r) => {
    const [e1, e4] = r.engine;
    return [label(r), r.result.parameters.toLocaleString('en-US'), r.result.tokens.toLocaleString('en-US'), fmt(r.result.final.loss),
      fmt(r.result.final.perplexity, 1), fmt(e1?.loss ?? NaN), e4 ? `${fmt(e4.loss)} (${e4.ctx})` : '–',
      Math.round(r.result.tokensPerSec).toLocaleString('en-US'), `${(r.result.seconds / 60).toFixed(1)} min`];
  });
  const table = markdownTable(['model', 'parameters', 'training tokens', 'val loss', 'val ppl', 'engine loss @T', 'engine loss @4T', 'train tokens/s (1 thread)', 'wall'], rows);
  const q = (pos: number[], lo: number, hi: number) => { const s = pos.slice(lo, hi).filter((x) => !Number.isNaN(x)); return s.reduce((a, b) => a + b, 0) / s.length; };
  const T = runs[0].config.context;
  const posRows = runs.map((r) => {
    const p = r.result.final.perPosition;
    return [label(r), fmt(q(p, 0, 8)), fmt(q(p, 8, 32)), fmt(q(p, 32, 64)), fmt(q(p, 64, 96)), fmt(q(p, Math.max(0, T - 32), T))];
  });
  const posTable = markdownTable(['model', 'pos 0–7', '8–31', '32–63', '64–95', `${Math.max(0, T - 32)}–${T - 1}`], posRows);
  const tokensPerStep = runs[0].config.batch * runs[0].config.context;
  const curves = linePlotSvg({
    title: 'SOTU: held-out loss during training', xLabel: 'training tokens', yLabel: 'held-out loss (nats)',
    series: runs.map((r) => ({ name: label(r), dashed: r.config.family === 'llama',
      points: r.result.history.filter((h) => h.evalLoss !== undefined).map((h) => [h.step * tokensPerStep, h.evalLoss!] as [number, number]) })),
  });
  const train = linePlotSvg({
    title: 'SOTU: training loss', xLabel: 'step', yLabel: 'training loss (nats)',
    series: runs.map((r) => ({ name: label(r), dashed: r.config.family === 'llama', points: r.result.history.map((h) => [h.step, h.loss] as [number, number]) })),
  });
  const perPos = linePlotSvg({
    title: 'SOTU: held-out loss by position in the window', xLabel: 'position', yLabel: 'loss (nats)',
    series: runs.map((r) => ({ name: label(r), dashed: r.config.family === 'llama', points: bucketed(r.result.final.perPosition, 32) })),
  });
  const extra = runs.every((r) => r.engine.length > 1) ? linePlotSvg({
    title: `SOTU: loss by position beyond the training context (inference engine, ${runs[0].engine[1].ctx} tokens)`, xLabel: 'position', yLabel: 'loss (nats)',
    series: runs.map((r) => ({ name: label(r), dashed: r.config.family === 'llama', points: bucketed(r.engine[1].perPosition, 32) })),
  }) : null;
  const json = runs.map((r) => ({ name: r.name, config: r.config, ...r.result, history: thinHistory(r.result.history), engine: r.engine }));
  const md = `# Experiment b: language modelling on State of the Union\n\n${table}\n## Held-out loss by position\n\n${posTable}`;
  return writeFiles(args.docsDir, {
    'experiments/lm-sotu.md': md,
    'experiments/lm-sotu.json': JSON.stringify(json) + '\n',
    'plots/lm-sotu-eval-loss.svg': curves,
    'plots/lm-sotu-train-loss.svg': train,
    'plots/lm-sotu-per-position.svg': perPos,
    ...(extra ? { 'plots/lm-sotu-per-position-long.svg': extra } : {}),
  });
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, EXPERIMENT_FLAGS, 'Experiment b: language modelling on the State of the Union corpus, Memory Mosaic vs transformer (experiments/lm-sotu.md under --docs).');
  if (!v) return 0;
  const args = experimentDirs(v, 'lm-sotu', REPO_ROOT);
  const runs = await runLmExperiment(args);
  for (const r of runs) console.log(`${r.name}: val loss ${fmt(r.result.final.loss)} ppl ${fmt(r.result.final.perplexity, 1)} ${Math.round(r.result.tokensPerSec)} tok/s`);
  console.log(`wrote ${args.docsDir}/experiments/lm-sotu.md and plots`);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
