// Experiment a: in-context associative recall and induction with ONE layer. The paper's claim
// (PAPERS.md §3): a 1-layer Memory Mosaic solves induction because its keys mix the past (leaky
// average) and its values look one step ahead, while a transformer needs two layers (a previous-token
// head feeding an induction head). We train, at equal parameter count, steps and tokens:
//   1-layer mosaic, 1-layer transformer (the claim), and a 2-layer transformer (control: the task is
//   learnable by a transformer with enough depth)
// on configs/{recall,induction}-{mosaic-l1,llama-l1,llama-l2}.json and report the accuracy on
// held-out sequences (16 batches × 32 sequences drawn from a seed stream training never uses).
//
// Run:  node dist/src/experiments/recall.js            (a few minutes on 2 cores; writes docs/)
//       node dist/src/experiments/recall.js --quick    (seconds; temp folder)

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../training/train-config.js';
import { runTraining, type RunResult } from '../training/train-run.js';
import { EXPERIMENT_FLAGS, experimentDirs, fmt, markdownTable, thinHistory, writeFiles, REPO_ROOT, type ExperimentArgs } from './report.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export const RECALL_RUNS = ['recall-mosaic-l1', 'recall-llama-l1', 'recall-llama-l2', 'induction-mosaic-l1', 'induction-llama-l1', 'induction-llama-l2'] as const;

export interface RecallRun { name: string; config: TrainConfig; result: RunResult; chance: number }

export function recallConfig(name: string, args: ExperimentArgs): TrainConfig {
  const raw = JSON.parse(readFileSync(join(REPO_ROOT, 'configs', `${name}.json`), 'utf8')) as Record<string, unknown>;
  raw.out = join(args.runsDir, name);
  if (args.quick) {
    Object.assign(raw, { steps: 4, batch: 4, context: 32, warmup: 1, evalEvery: 2, evalBatches: 1 });
    raw.model = { ...(raw.model as object), d: 16 };
    const data = raw.data as Record<string, unknown>;
    if (data.task === 'recall') data.queries = 4; else data.segment = 8;
  }
  return parseTrainConfig(raw, `configs/${name}.json`);
}

/** Accuracy of guessing uniformly among the ids an answer can take. */
function chanceOf(c: TrainConfig): number {
  const d = c.data as { task: string; vocabSize: number };
  const ids = d.vocabSize - 1;                                   // ids 1 … vocabSize−1
  return d.task === 'recall' ? 1 / (ids - Math.floor(ids / 2)) : 1 / ids;
}

export async function runRecallExperiment(args: ExperimentArgs, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<RecallRun[]> {
  const runs: RecallRun[] = [];
  for (const name of RECALL_RUNS) {
    const config = recallConfig(name, args);
    log(`== ${name}`);
    const result = await runTraining(config, { progress: !args.quick, log, overwrite: true }); // a reproduction starts over
    runs.push({ name, config, result, chance: chanceOf(config) });
  }
  writeRecallReport(runs, args);
  return runs;
}

const label = (r: RecallRun) => `${r.config.family === 'llama' ? 'transformer' : 'mosaic'} ${r.config.model.layers} layer${r.config.model.layers > 1 ? 's' : ''}`;

export function writeRecallReport(runs: RecallRun[], args: ExperimentArgs): string[] {
  const rows = runs.map((r) => [(r.config.data as { task: string }).task, label(r), r.result.parameters.toLocaleString('en-US'),
    r.result.tokens.toLocaleString('en-US'), `${(100 * r.result.final.accuracy).toFixed(1)}%`, `${(100 * r.chance).toFixed(1)}%`,
    fmt(r.result.final.loss), r.result.final.count, `${r.result.seconds.toFixed(0)} s`]);
  const table = markdownTable(['task', 'model', 'parameters', 'training tokens', 'held-out accuracy', 'chance', 'held-out loss', 'answers scored', 'wall'], rows);
  const plots: Record<string, string> = {};
  for (const task of ['recall', 'induction']) {
    const sel = runs.filter((r) => (r.config.data as { task: string }).task === task);
    plots[`plots/${task}-loss.svg`] = linePlotSvg({
      title: `${task === 'recall' ? 'associative recall' : 'induction copy'}: held-out loss on answers`, xLabel: 'step', yLabel: 'loss (nats)',
      series: sel.map((r) => ({ name: label(r), dashed: r.config.family === 'llama',
        points: r.result.history.filter((h) => h.evalLoss !== undefined).map((h) => [h.step, h.evalLoss!] as [number, number]) })),
    });
  }
  const json = runs.map((r) => ({ name: r.name, config: r.config, chance: r.chance, ...r.result, history: thinHistory(r.result.history) }));
  return writeFiles(args.docsDir, {
    'experiments/recall.md': `# Experiment a: associative recall and induction with one layer\n\n${table}`,
    'experiments/recall.json': JSON.stringify(json) + '\n',
    ...plots,
  });
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, EXPERIMENT_FLAGS, 'Experiment a: in-context recall and induction with one layer, Memory Mosaic vs transformer (experiments/recall.md under --docs).');
  if (!v) return 0;
  const args = experimentDirs(v, 'recall', REPO_ROOT);
  const runs = await runRecallExperiment(args);
  for (const r of runs) console.log(`${r.name}: held-out accuracy ${(100 * r.result.final.accuracy).toFixed(1)}% (chance ${(100 * r.chance).toFixed(1)}%)`);
  console.log(`wrote ${args.docsDir}/experiments/recall.md and plots`);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
