// Learning-rate check for experiment b at depth 1: the same two 1-layer configs (transformer and
// mosaic, configs/sotu-{llama,mosaic}-d128-l1.json) at other peak learning rates, everything else
// equal, so the depth-1 comparison is not an artefact of one shared learning rate (the mosaic starts
// from the paper's N(0, 1) embedding, the transformer from N(0, 0.02): they need not share an optimum).
//
// Run:  node dist/src/experiments/lm-sotu-lr.js [--quick] [--lr 0.01,0.001]

import { join } from 'node:path';
import { runTraining, type RunResult } from '../training/train-run.js';
import { EXPERIMENT_FLAGS, experimentDirs, fmt, markdownTable, thinHistory, writeFiles, REPO_ROOT, type ExperimentArgs } from './report.js';
import { lmConfig } from './lm-sotu.js';
import { parseTrainConfig } from '../training/train-config.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface LrRun { name: string; lr: number; result: RunResult }

export async function runLrCheck(args: ExperimentArgs, lrs: number[], log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<LrRun[]> {
  const runs: LrRun[] = [];
  for (const lr of lrs) {
    for (const name of ['sotu-llama-d128-l1', 'sotu-mosaic-d128-l1']) {
      const base = lmConfig(name, args);
      const cfg = parseTrainConfig({ ...base, lr, minLr: lr / 10, out: join(args.runsDir, `${name}-lr${lr}`) }, `${name} at lr ${lr}`);
      log(`== ${name} lr ${lr}`);
      runs.push({ name, lr, result: await runTraining(cfg, { progress: !args.quick, log, overwrite: true, finalEvalWindows: args.quick ? 4 : 256 }) });
    }
  }
  const rows = runs.map((r) => [r.name, r.lr, fmt(r.result.final.loss), fmt(r.result.final.perplexity, 1)]);
  writeFiles(args.docsDir, {
    'experiments/lm-sotu-lr.md': `# Experiment b, depth 1: other learning rates\n\n${markdownTable(['config', 'peak lr', 'val loss', 'val ppl'], rows)}`,
    'experiments/lm-sotu-lr.json': JSON.stringify(runs.map((r) => ({ name: r.name, lr: r.lr, ...r.result, history: thinHistory(r.result.history) }))) + '\n',
  });
  return runs;
}

const FLAGS: FlagSpecs = {
  ...EXPERIMENT_FLAGS,
  lr: { type: 'number', list: true, min: 0, exclusiveMin: true, default: '0.01', placeholder: 'LIST', description: 'peak learning rates' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Experiment b, depth 1: the SOTU language models at other peak learning rates.');
  if (!v) return 0;
  const args = experimentDirs(v, 'lm-sotu-lr', REPO_ROOT);
  for (const r of await runLrCheck(args, v.lr as number[])) console.log(`${r.name} lr ${r.lr}: val loss ${fmt(r.result.final.loss)}`);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
