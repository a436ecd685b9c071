// Experiment c: a fair language-modelling comparison of the Memory Mosaic and the Llama-architecture
// transformer (PAPERS.md §3). Fair means: each family at its own best peak learning rate (a sweep per
// family and depth on State of the Union, seed 1, extended beyond an edge until the best rate is
// bracketed), then further seeds at that rate, matched parameter counts (the experiment-b configs
// configs/sotu-{llama,mosaic}-d128-l{1,4}.json at the plan's width: SwiGLU width round(8d/3) against
// the mosaic's 12d² block), equal tokens, and the mosaic with the short-budget initialisation
// (model.init "short-budget"). Moby Dick repeats the comparison at the rates chosen on SOTU (no
// second sweep: CPU). The default plan is experiment b's size; --plan d64 is the earlier, smaller one.
//
// A finished run folder (result.json of all steps with the same config) is reused and a stopped one
// resumes from its last checkpoint, so an interrupted reproduction continues where it stopped (also in
// another checkout that copied results/lm-fair/: configs are compared without their out folder).
// A run without a folder (results/ is not in git) is read back from the kept report
// docs/results/<plan>.json when that holds a finished run of the same config, so extending the plan
// trains only the new runs. --fresh retrains everything.
//
// Run:  node dist/src/experiments/lm-fair.js [--plan d128|d64] [--steps N] [--quick] [--fresh] [--report-only]
//       (--report-only: train nothing; tables from the finished runs, the others listed as not run)
//       writes docs/results/<plan>.{md,json} and docs/results/<plan>-*.svg (lm-fair, lm-fair-d64);
//       run folders in results/lm-fair/

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { parseTrainConfig, type TrainConfig } from '../training/train-config.js';
import { runTraining, sameConfig, type RunResult } from '../training/train-run.js';
import { bucketed } from '../training/evaluate.js';
import { linePlotSvg } from '../training/plot-svg.js';
import type { CorpusName } from '../data/corpora.js';
import type { MosaicInitPreset } from '../mosaic/config.js';
import { fmt, markdownTable, meanSpread, thinHistory, writeFiles, REPO_ROOT } from './report.js';

/** A model family as compared here: the transformer, or the mosaic with one initialisation preset. */
export type Arm = 'transformer' | 'mosaic-short' | 'mosaic-library';

export interface FairPlan {
  /** Names the report files: docs/results/<name>.md, .json, <name>-*.svg. */
  name: string;
  /** Width (4 heads) and BPE vocabulary of every model. */
  d: number;
  vocabSize: number;
  steps: number;
  batch: number;
  context: number;
  depths: number[];
  /** Peak learning rates of the sweep (cosine to lr/10, warm-up 10% of the steps). */
  lrs: number[];
  /** How many rates a sweep may add beyond its edges (one half-decade step each) while its best rate
   *  sits at an edge, so that the optimum is bracketed; 0 keeps the sweep to `lrs`. */
  edgeRates: number;
  /** Seeds at the best rate (the sweep's seed 1 is the first). */
  seeds: number[];
  /** Arms swept at each depth; mosaic-library (the preset comparison) runs at the first depth on the
   *  first corpus only. */
  arms: Arm[];
  corpora: CorpusName[];
  /** Depths repeated on the corpora after the first (at the rates chosen on the first). */
  otherCorpusDepths: number[];
  finalEvalWindows: number;
  /** Steps between checkpoints (0: none), so that a stopped run resumes where it was. */
  checkpointEvery: number;
}

/** Experiment c at experiment b's size (d 128, 4 heads, its 2,048-token SOTU BPE), 300 steps × 8 × 128
 *  = 307,200 tokens per run: sized from the tokens/s measured on the shared 2-core machine (one
 *  thread, nice 19: ~2,000 tokens/s for the 1-layer models, ~650 for the 4-layer mosaic) so that
 *  the 24 runs of SOTU (both depths) and Moby Dick at depth 1 finish in about 90 minutes; Moby Dick
 *  at depth 4 adds 4 runs (~40 minutes). */
export const FULL_PLAN: FairPlan = {
  name: 'lm-fair', d: 128, vocabSize: 2048, steps: 300, batch: 8, context: 128, depths: [1, 4], lrs: [3e-3, 1e-2, 3e-2], edgeRates: 1, seeds: [1, 2],
  arms: ['transformer', 'mosaic-short'], corpora: ['sotu', 'moby-dick'], otherCorpusDepths: [1, 4], finalEvalWindows: 128, checkpointEvery: 50,
};

/** The earlier, smaller experiment c (kept to regenerate its report: `--plan d64`): width 64 and a
 *  512-token BPE (5× cheaper per token), 18 runs of 102,400 tokens, sized to a machine shared with
 *  ~6 other jobs. */
export const D64_PLAN: FairPlan = {
  name: 'lm-fair-d64', d: 64, vocabSize: 512, steps: 100, batch: 8, context: 128, depths: [1, 4], lrs: [3e-3, 1e-2], edgeRates: 0, seeds: [1, 2],
  arms: ['transformer', 'mosaic-short', 'mosaic-library'], corpora: ['sotu', 'moby-dick'], otherCorpusDepths: [1], finalEvalWindows: 128, checkpointEvery: 0,
};

export const QUICK_PLAN: FairPlan = {
  name: 'lm-fair', d: 16, vocabSize: 300, steps: 3, batch: 2, context: 16, depths: [1, 2], lrs: [3e-3, 1e-2], edgeRates: 1, seeds: [1, 2],
  arms: ['transformer', 'mosaic-short', 'mosaic-library'], corpora: ['sotu', 'moby-dick'], otherCorpusDepths: [1], finalEvalWindows: 4, checkpointEvery: 0,
};

/** The next rate of the half-decade grid (…, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, …) above (+1) or below (−1) lr. */
export function nextRate(lr: number, dir: 1 | -1): number {
  const e = Math.floor(Math.log10(lr) + 1e-9), threes = lr / 10 ** e > 2;
  const up = threes ? 10 ** (e + 1) : 3 * 10 ** e, down = threes ? 10 ** e : 3 * 10 ** (e - 1);
  return Number((dir > 0 ? up : down).toPrecision(1));
}

/** The run with the lowest held-out loss (the first of equals). */
export function lowestLoss<T>(runs: readonly T[], loss: (r: T) => number): T {
  return runs.reduce((a, b) => (loss(b) < loss(a) ? b : a));
}

/** The shipped pick from a finished comparison (docs/results/<plan>.json rows): among one arm's runs at
 *  one depth on one corpus, the best seed at the rate the seed-`sweepSeed` sweep chose. */
export function bestFairRun<T extends { arm: Arm; corpus: string; depth: number; lr: number; seed: number; final: { loss: number } }>(
  rows: readonly T[], arm: Arm, depth: number, corpus: string, sweepSeed = 1): T | undefined {
  const sel = rows.filter((r) => r.arm === arm && r.depth === depth && r.corpus === corpus);
  const swept = sel.filter((r) => r.seed === sweepSeed);
  if (swept.length === 0) return undefined;
  const lr = lowestLoss(swept, (r) => r.final.loss).lr;
  return lowestLoss(sel.filter((r) => r.lr === lr), (r) => r.final.loss);
}

export interface FairRun { arm: Arm; corpus: CorpusName; depth: number; lr: number; seed: number; name: string; config: TrainConfig; result: RunResult }

/** The config of one run, from the experiment-b config of that family and depth. */
export function fairConfig(arm: Arm, corpus: CorpusName, depth: number, lr: number, seed: number, plan: FairPlan, runsDir: string): TrainConfig {
  const family = arm === 'transformer' ? 'llama' : 'mosaic';
  const file = `configs/sotu-${family}-d128-l${depth === 1 ? 1 : 4}.json`;
  const raw = JSON.parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as Record<string, unknown>;
  const model = { ...(raw.model as Record<string, unknown>), layers: depth } as Record<string, unknown>;
  if (arm !== 'transformer') model.init = arm === 'mosaic-short' ? 'short-budget' : 'library';
  model.d = plan.d;
  const name = `${corpus}-${arm}-d${plan.d}-l${depth}-lr${lr}-s${seed}`;
  return parseTrainConfig({
    ...raw, comment: undefined, model, data: { corpus, vocabSize: plan.vocabSize },
    steps: plan.steps, batch: plan.batch, context: plan.context, lr, minLr: lr / 10, warmup: Math.max(1, Math.round(plan.steps / 10)),
    seed, evalEvery: Math.max(1, Math.round(plan.steps / 6)), evalBatches: 2, checkpointEvery: plan.checkpointEvery, out: join(runsDir, name),
  }, `${file} (${name})`);
}

/** A run as the kept report (docs/results/<plan>.json) holds it: its config and result, the history thinned. */
export type KeptRun = { name: string; config: TrainConfig } & RunResult;

/** The kept report's runs, or none when the file is absent. */
export function readKeptRuns(file: string): KeptRun[] {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as KeptRun[] : [];
}

/** Finished means all of its steps: a run stopped early (stopAt) also writes a result.json. */
const finished = (saved: { config: TrainConfig } & RunResult, cfg: TrainConfig) =>
  sameConfig(saved.config, cfg) && saved.steps === cfg.steps && saved.final.windows > 0;

/** Trains one run, or reads it back when its folder, or failing that the kept report, already holds
 *  the finished result of the same config. */
async function trainOrReuse(cfg: TrainConfig, plan: FairPlan, fresh: boolean, log: (s: string) => void, reportOnly: boolean,
                            kept: readonly KeptRun[]): Promise<RunResult | null> {
  const resultPath = join(cfg.out, 'result.json');
  if (!fresh && existsSync(resultPath) && existsSync(join(cfg.out, 'loss.json'))) {
    const saved = JSON.parse(readFileSync(resultPath, 'utf8')) as { config: TrainConfig } & RunResult;
    if (finished(saved, cfg)) {
      log(`== ${cfg.out}: reusing its result.json`);
      return { ...saved, history: JSON.parse(readFileSync(join(cfg.out, 'loss.json'), 'utf8')) };
    }
  }
  const name = cfg.out.split('/').pop();
  const row = fresh ? undefined : kept.find((r) => r.name === name && finished(r, cfg));
  if (row) {
    log(`== ${cfg.out}: reusing its row of the kept report`);
    const { family, parameters, steps, tokens, tokensPerSec, seconds, final, history, modelDir, vocabSize } = row;
    return { family, parameters, steps, tokens, tokensPerSec, seconds, final, history, modelDir, vocabSize };
  }
  if (reportOnly) return null;
  // A run stopped part-way continues from its last checkpoint when its config is the same.
  const savedCfg = join(cfg.out, 'train-config.json');
  const resume = !fresh && existsSync(join(cfg.out, 'checkpoint')) && existsSync(savedCfg)
    && sameConfig(JSON.parse(readFileSync(savedCfg, 'utf8')) as TrainConfig, cfg);
  log(`== ${cfg.out}${resume ? ' (resuming its checkpoint)' : ''}`);
  const t0 = performance.now();
  try {
    return await runTraining(cfg, { progress: false, log, resume, overwrite: !resume, finalEvalWindows: plan.finalEvalWindows });
  } catch (e) {
    // A rate too high for a family diverges: that is a sweep result (loss ∞), not a failed experiment.
    if (!/training diverged|not finite/.test((e as Error).message)) throw e;
    log(`   diverged: ${(e as Error).message}`);
    return {
      family: cfg.family, parameters: NaN, steps: 0, tokens: 0, tokensPerSec: 0, seconds: (performance.now() - t0) / 1000,
      final: { loss: Infinity, perPosition: [], accuracy: NaN, count: 0, perplexity: Infinity, windows: 0 }, history: [], modelDir: '', vocabSize: 0,
    };
  }
}

export interface FairOutcome { runs: FairRun[]; /** Planned runs without a result (--report-only). */ missing: string[] }

/** Runs the plan in order of importance (each phase needs the one before): 1. the learning-rate sweeps
 *  of the transformer and the short-budget mosaic, depth by depth; 2. the further seeds at each one's
 *  best rate and the other corpora at those rates (order below); 3. the Library-init mosaic (first
 *  depth, one seed).
 *  reportOnly: train nothing, use the finished runs and list the others as missing. */
export async function runFairComparison(plan: FairPlan, runsDir: string, fresh: boolean,
                                        log: (s: string) => void = (s) => process.stderr.write(s + '\n'), reportOnly = false,
                                        kept: readonly KeptRun[] = []): Promise<FairOutcome> {
  const runs: FairRun[] = [], missing: string[] = [];
  const run = async (arm: Arm, corpus: CorpusName, depth: number, lr: number, seed: number): Promise<FairRun | null> => {
    const config = fairConfig(arm, corpus, depth, lr, seed, plan, runsDir);
    const name = config.out.split('/').pop()!;
    const result = await trainOrReuse(config, plan, fresh, log, reportOnly, kept);
    if (!result) { missing.push(name); return null; }
    const r: FairRun = { arm, corpus, depth, lr, seed, name, config, result };
    runs.push(r);
    return r;
  };
  const sweepCorpus = plan.corpora[0];
  const main = plan.arms.filter((a) => a !== 'mosaic-library');
  const best = new Map<string, number>();                     // `${arm} ${depth}` → best lr on the sweep corpus
  const sweep = async (arm: Arm, depth: number) => {
    const swept: FairRun[] = [];
    for (const lr of plan.lrs) { const r = await run(arm, sweepCorpus, depth, lr, plan.seeds[0]); if (r) swept.push(r); }
    const bestOf = () => lowestLoss(swept, (r) => r.result.final.loss);
    // Bracket the optimum: while the best rate is the lowest or highest tried, try one step beyond it.
    for (let extra = 0; extra < plan.edgeRates && swept.length > 1; extra++) {
      const lrs = swept.map((r) => r.lr), b = bestOf().lr;
      const dir = b === Math.max(...lrs) ? 1 : b === Math.min(...lrs) ? -1 : 0;
      if (dir === 0) break;
      const r = await run(arm, sweepCorpus, depth, nextRate(b, dir), plan.seeds[0]);
      if (!r) break;
      swept.push(r);
    }
    if (swept.length > 0) best.set(`${arm} ${depth}`, bestOf().lr);
  };
  for (const depth of plan.depths) for (const arm of main) await sweep(arm, depth);
  // Then, so that a stop part-way loses the least: depth by depth, the further seeds on the sweep
  // corpus and, at that depth, the first seed on the other corpora; their further seeds last.
  const atBestRate = async (corpus: CorpusName, depth: number, seeds: number[]) => {
    for (const arm of main) {
      const lr = best.get(`${arm} ${depth}`);
      if (lr !== undefined) for (const seed of seeds) await run(arm, corpus, depth, lr, seed);
    }
  };
  for (const depth of plan.depths) {
    await atBestRate(sweepCorpus, depth, plan.seeds.slice(1));
    if (plan.otherCorpusDepths.includes(depth)) for (const corpus of plan.corpora.slice(1)) await atBestRate(corpus, depth, plan.seeds.slice(0, 1));
  }
  for (const corpus of plan.corpora.slice(1)) for (const depth of plan.otherCorpusDepths) await atBestRate(corpus, depth, plan.seeds.slice(1));
  if (plan.arms.includes('mosaic-library')) await sweep('mosaic-library', plan.depths[0]);
  return { runs, missing };
}

const ARM_LABEL: Record<Arm, string> = { transformer: 'transformer', 'mosaic-short': 'mosaic (short-budget init)', 'mosaic-library': 'mosaic (Library init)' };

/** Runs at each arm/depth/corpus's best rate (every seed). */
function atBest(runs: FairRun[], plan: FairPlan): Map<string, FairRun[]> {
  const out = new Map<string, FairRun[]>();
  const sweepCorpus = plan.corpora[0];
  for (const r of runs) {
    const key = `${r.corpus} ${r.arm} ${r.depth}`;
    if (r.corpus === sweepCorpus) {
      const swept = runs.filter((x) => x.corpus === r.corpus && x.arm === r.arm && x.depth === r.depth && x.seed === plan.seeds[0]);
      const bestLr = lowestLoss(swept, (r) => r.result.final.loss).lr;
      if (r.lr !== bestLr) continue;
    }
    out.set(key, [...(out.get(key) ?? []), r]);
  }
  return out;
}

export function writeFairReport(runs: FairRun[], plan: FairPlan, docsDir: string, missing: string[] = []): { files: string[]; md: string } {
  const sweep = runs.filter((r) => r.corpus === plan.corpora[0] && r.seed === plan.seeds[0]);
  // Every rate some sweep tried: the plan's, and those added beyond an edge.
  const sweptLrs = [...new Set([...plan.lrs, ...sweep.map((r) => r.lr)])].sort((a, b) => a - b);
  const sweepRows: (string | number)[][] = [];
  for (const depth of plan.depths) {
    for (const arm of plan.arms) {
      const sel = sweep.filter((r) => r.arm === arm && r.depth === depth);
      if (sel.length === 0) continue;
      const byLr = new Map(sel.map((r) => [r.lr, r.result.final.loss]));
      const bestLoss = Math.min(...byLr.values());
      sweepRows.push([ARM_LABEL[arm], depth, ...sweptLrs.map((lr) => {
        const l = byLr.get(lr);
        return l === undefined ? '–' : !Number.isFinite(l) ? 'diverged' : l === bestLoss ? `**${fmt(l)}**` : fmt(l);
      })]);
    }
  }
  const sweepTable = markdownTable(['model', 'layers', ...sweptLrs.map((lr) => `lr ${lr}`)], sweepRows);

  const groups = atBest(runs, plan);
  const mainRows: (string | number)[][] = [];
  const perPos: Record<string, { name: string; points: [number, number][]; dashed: boolean }[]> = {};
  const T = plan.context;
  const q = (pos: number[], lo: number, hi: number) => { const s = pos.slice(lo, hi).filter((x) => !Number.isNaN(x)); return s.reduce((a, b) => a + b, 0) / s.length; };
  const posRows: (string | number)[][] = [];
  for (const corpus of plan.corpora) {
    for (const depth of plan.depths) {
      for (const arm of plan.arms) {
        const sel = groups.get(`${corpus} ${arm} ${depth}`);
        if (!sel) continue;
        const loss = meanSpread(sel.map((r) => r.result.final.loss));
        const r0 = sel[0].result;
        mainRows.push([corpus, ARM_LABEL[arm], depth, r0.parameters.toLocaleString('en-US'), sel[0].lr, sel.map((r) => r.seed).join(', '),
          r0.tokens.toLocaleString('en-US'), sel.length > 1 ? `${fmt(loss.mean)} ± ${fmt(loss.spread)}` : `${fmt(loss.mean)} (one seed)`, fmt(Math.exp(loss.mean), 1),
          `${(100 * meanSpread(sel.map((r) => r.result.final.accuracy)).mean).toFixed(1)}%`]);
        const n = sel[0].result.final.perPosition.length;
        const mean = Array.from({ length: n }, (_, t) => sel.reduce((s, r) => s + r.result.final.perPosition[t], 0) / sel.length);
        (perPos[corpus] ??= []).push({ name: `${ARM_LABEL[arm]} L${depth}`, points: bucketed(mean, 32), dashed: arm === 'transformer' });
        posRows.push([corpus, ARM_LABEL[arm], depth, fmt(q(mean, 0, 8)), fmt(q(mean, 8, 32)), fmt(q(mean, 32, 64)), fmt(q(mean, 64, 96)), fmt(q(mean, Math.max(0, T - 32), T))]);
      }
    }
  }
  const mainTable = markdownTable(['corpus', 'model', 'layers', 'parameters', 'peak lr', 'seeds', 'tokens seen', 'val loss (mean ± half-range)', 'val ppl', 'next-token accuracy'], mainRows);
  const posTable = markdownTable(['corpus', 'model', 'layers', 'pos 0–7', '8–31', '32–63', '64–95', `${Math.max(0, T - 32)}–${T - 1}`], posRows);
  const wall = runs.reduce((s, r) => s + r.result.seconds, 0);
  const runRows = runs.map((r) => [r.name, r.result.tokens.toLocaleString('en-US'), fmt(r.result.final.loss), Math.round(r.result.tokensPerSec).toLocaleString('en-US'),
    `${(r.result.seconds / 60).toFixed(1)} min`]);
  const runTable = markdownTable(['run', 'tokens seen', 'val loss', 'train tokens/s (1 thread)', 'training time'], runRows);
  const plots: Record<string, string> = {};
  for (const [corpus, series] of Object.entries(perPos)) {
    plots[`results/${plan.name}-per-position-${corpus}.svg`] = linePlotSvg({
      title: `${corpus}: held-out loss by position (mean over seeds, each model at its best lr)`, xLabel: 'position in the window', yLabel: 'loss (nats)', series,
    });
  }
  const curves = runs.filter((r) => r.corpus === plan.corpora[0] && r.seed === plan.seeds[0] && groups.get(`${r.corpus} ${r.arm} ${r.depth}`)?.includes(r));
  plots[`results/${plan.name}-eval-loss.svg`] = linePlotSvg({
    title: `${plan.corpora[0]}: held-out loss during training (best lr, seed ${plan.seeds[0]})`, xLabel: 'training tokens', yLabel: 'held-out loss (nats)',
    series: curves.map((r) => ({ name: `${ARM_LABEL[r.arm]} L${r.depth}`, dashed: r.arm === 'transformer',
      points: r.result.history.filter((h) => h.evalLoss !== undefined).map((h) => [h.tokens, h.evalLoss!] as [number, number]) })),
  });
  const md = `# Experiment c: language modelling, each family at its own best learning rate

Budget per run: ${plan.steps} steps × ${plan.batch} × ${plan.context} = ${(plan.steps * plan.batch * plan.context).toLocaleString('en-US')} training tokens; ${runs.length} runs, ${(wall / 60).toFixed(0)} min of training in all (the periodic held-out evaluations included, the final one not).
Validation loss: ${plan.finalEvalWindows} windows × ${plan.context} tokens of the validation split.

## Learning-rate sweep (${plan.corpora[0]}, seed ${plan.seeds[0]}; bold = best)

${sweepTable}
## At the best learning rate (${plan.corpora.slice(1).join(', ') || 'no other corpus'}: the rate chosen on ${plan.corpora[0]})

${mainTable}
## Held-out loss by position (mean over seeds)

${posTable}
## Every run (in the order run; a run resumed from its checkpoint counts only its last invocation's tokens/s and time)

${runTable}${missing.length > 0 ? `\n## Planned but not run (out of time)\n\n${missing.map((m) => `- ${m}`).join('\n')}\n` : ''}`;
  // Run folders are kept relative to the checkout (docsDir's parent), so the report reads the same
  // from any clone.
  const root = dirname(docsDir), rel = (p: string) => (isAbsolute(p) ? relative(root, p) : p);
  const json = runs.map((r) => ({ arm: r.arm, corpus: r.corpus, depth: r.depth, lr: r.lr, seed: r.seed, name: r.name,
    config: { ...r.config, out: rel(r.config.out) }, ...r.result, modelDir: rel(r.result.modelDir), history: thinHistory(r.result.history) }));
  const files = writeFiles(docsDir, { [`results/${plan.name}.md`]: md, [`results/${plan.name}.json`]: JSON.stringify(json) + '\n', ...plots });
  return { files, md };
}

const FLAGS: FlagSpecs = {
  plan: { type: 'string', choices: ['d128', 'd64'], placeholder: 'd128|d64', description: 'd128: experiment c (default); d64: the earlier, smaller budget' },
  steps: { type: 'integer', min: 1, placeholder: 'N', description: 'training steps per run (default: the plan\'s)' },
  quick: { type: 'boolean', description: 'a few short runs in a temporary folder (a smoke test of the whole path)' },
  fresh: { type: 'boolean', description: 'retrain every run, ignoring finished ones' },
  'report-only': { type: 'boolean', description: 'train nothing: the tables and plots from the finished runs, the others listed as not run' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Experiment c: transformer vs mosaic language models, each family at its own best learning rate, 2 seeds (finished runs are reused, a stopped one resumes).');
  if (!v) return 0;
  const quick = v.quick === true, planName = (v.plan as string | undefined) ?? 'd128';
  const plan = { ...(quick ? QUICK_PLAN : planName === 'd64' ? D64_PLAN : FULL_PLAN) };
  if (typeof v.steps === 'number') plan.steps = v.steps;
  const root = quick ? join(tmpdir(), 'tessera-lm-fair-quick') : REPO_ROOT;
  const kept = readKeptRuns(join(root, 'docs', 'results', `${plan.name}.json`));
  const { runs, missing } = await runFairComparison(plan, join(root, 'results', 'lm-fair'), v.fresh === true, undefined, v['report-only'] === true, kept);
  const { md } = writeFairReport(runs, plan, join(root, 'docs'), missing);
  process.stdout.write(md);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
