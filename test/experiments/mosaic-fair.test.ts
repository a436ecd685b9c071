// The fair LM comparison (lm-fair) and the RegBench-style experiment at toy sizes: the sweep picks
// each arm's best rate from its own runs, the extra seeds run at that rate, finished runs are reused,
// the reports are written; RegBench runs both families on nested pools and scores held-out DFAs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUICK_PLAN, fairConfig, nextRate, readKeptRuns, runFairComparison, writeFairReport, type FairPlan } from '../../src/experiments/lm-fair.js';
import { runTraining } from '../../src/training/train-run.js';
import { REGBENCH_QUICK, regbenchBaselines, regbenchPools, regbenchRun, runFileName, runRegbench, writeRegbenchReport } from '../../src/experiments/regbench.js';
import type { Dfa } from '../../src/data/synthetic-dfa.js';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-fair-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('lm-fair --quick: per-arm sweep, seeds at the best rate, reuse of finished runs, report files', async () => {
  const runsDir = join(tmp, 'runs'), lines: string[] = [];
  const { runs, missing } = await runFairComparison(QUICK_PLAN, runsDir, false, (s) => lines.push(s));
  // sotu: 2 arms × 2 depths × (2 rates + 1 rate beyond the edge + 1 extra seed); moby-dick depth 1:
  // 2 arms × 2 seeds at the rates chosen on sotu; the Library-init mosaic: 3 rates at depth 1, one seed.
  assert.equal(runs.length, 23);
  assert.deepEqual(missing, []);
  // A two-rate sweep's best is always at an edge, so each sweep tried the next rate beyond it.
  for (const arm of ['transformer', 'mosaic-short', 'mosaic-library'] as const) {
    for (const depth of arm === 'mosaic-library' ? [1] : [1, 2]) {
      const swept = runs.filter((r) => r.corpus === 'sotu' && r.arm === arm && r.depth === depth && r.seed === 1);
      assert.deepEqual(swept.slice(0, 2).map((r) => r.lr), QUICK_PLAN.lrs);
      const first = swept.slice(0, 2).reduce((a, b) => (b.result.final.loss < a.result.final.loss ? b : a));
      assert.deepEqual(swept.map((r) => r.lr).slice(2), [nextRate(first.lr, first.lr === QUICK_PLAN.lrs[1] ? 1 : -1)], `${arm} L${depth}`);
    }
  }
  for (const r of runs.filter((x) => x.corpus === 'moby-dick')) {
    assert.equal(r.lr, runs.find((x) => x.corpus === 'sotu' && x.arm === r.arm && x.depth === r.depth && x.seed === 2)!.lr);
  }
  for (const arm of ['transformer', 'mosaic-short'] as const) {
    const swept = runs.filter((r) => r.corpus === 'sotu' && r.arm === arm && r.depth === 1 && r.seed === 1);
    const best = swept.reduce((a, b) => (b.result.final.loss < a.result.final.loss ? b : a));
    const seed2 = runs.filter((r) => r.corpus === 'sotu' && r.arm === arm && r.depth === 1 && r.seed === 2);
    assert.deepEqual(seed2.map((r) => r.lr), [best.lr], `${arm}: the second seed runs at the arm's own best rate`);
  }
  const short = runs.find((r) => r.arm === 'mosaic-short')!;
  assert.equal(short.config.model.init, 'short-budget');
  const modelCfg = JSON.parse(readFileSync(join(short.config.out, 'model', 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(modelCfg.embedding_std, 0.02);
  assert.equal(modelCfg.logits_inv_sqrt_d, false);
  assert.deepEqual(runs.filter((r) => r.arm === 'mosaic-library').map((r) => `${r.depth} ${r.seed}`), ['1 1', '1 1', '1 1']);
  const again = await runFairComparison(QUICK_PLAN, runsDir, false, (s) => lines.push(s));
  assert.equal(lines.filter((l) => l.includes('reusing')).length, 23);
  assert.deepEqual(again.runs.map((r) => r.result.final.loss), runs.map((r) => r.result.final.loss));
  // The run folders copied to another checkout (their configs name the old out folder) are still reused.
  const copied = join(tmp, 'elsewhere', 'runs');
  cpSync(runsDir, copied, { recursive: true });
  const moved: string[] = [];
  const fromCopy = await runFairComparison(QUICK_PLAN, copied, false, (s) => moved.push(s), true);
  assert.deepEqual(fromCopy.missing, []);
  assert.equal(moved.filter((l) => l.includes('reusing')).length, 23);
  // Without run folders, the kept report's rows of the same config are reused (results/ is not in
  // git); a row whose config differs is not.
  writeFairReport(runs, QUICK_PLAN, join(tmp, 'kept-docs'));
  const kept = readKeptRuns(join(tmp, 'kept-docs', 'results', 'lm-fair.json'));
  assert.equal(kept.length, 23);
  const fromKept = await runFairComparison(QUICK_PLAN, join(tmp, 'no-runs'), false, () => {}, true, kept);
  assert.deepEqual(fromKept.missing, []);
  assert.deepEqual(fromKept.runs.map((r) => r.result.final.loss), runs.map((r) => r.result.final.loss));
  assert.deepEqual(fromKept.runs.map((r) => r.result.final.perPosition), runs.map((r) => r.result.final.perPosition));
  const last = kept[kept.length - 1];
  last.config = { ...last.config, steps: last.config.steps + 1 };
  const oneChanged = await runFairComparison(QUICK_PLAN, join(tmp, 'no-runs'), false, () => {}, true, kept);
  assert.deepEqual(oneChanged.missing, [runs[runs.length - 1].name]);
  assert.equal(existsSync(join(tmp, 'no-runs')), false, 'report-only trains nothing');
  // --report-only on a folder missing one run: nothing is trained, the run is listed as missing.
  rmSync(join(runsDir, runs[runs.length - 1].name, 'result.json'));
  const partial = await runFairComparison(QUICK_PLAN, runsDir, false, (s) => lines.push(s), true);
  assert.deepEqual(partial.missing, [runs[runs.length - 1].name]);
  assert.equal(partial.runs.length, 22);
  const docs = join(tmp, 'docs');
  const { md } = writeFairReport(partial.runs, QUICK_PLAN, docs, partial.missing);
  assert.match(md, /Planned but not run/);
  for (const f of ['results/lm-fair.md', 'results/lm-fair.json', 'results/lm-fair-per-position-sotu.svg', 'results/lm-fair-per-position-moby-dick.svg', 'results/lm-fair-eval-loss.svg']) assert.ok(existsSync(join(docs, f)), f);
  assert.match(md, /± /);
});

test('lm-fair: a run stopped part-way resumes from its checkpoint and ends as an uninterrupted one', async () => {
  const plan: FairPlan = { ...QUICK_PLAN, arms: ['transformer'], depths: [1], lrs: [1e-2], edgeRates: 0, seeds: [1], corpora: ['sotu'], checkpointEvery: 1 };
  const whole = await runFairComparison(plan, join(tmp, 'resume-whole'), false, () => {});
  const stoppedDir = join(tmp, 'resume-stopped');
  await runTraining(fairConfig('transformer', 'sotu', 1, 1e-2, 1, plan, stoppedDir), { stopAt: 2, overwrite: true, progress: false, log: () => {} });
  const lines: string[] = [];
  const resumed = await runFairComparison(plan, stoppedDir, false, (s) => lines.push(s));
  assert.ok(lines.some((l) => l.includes('resuming its checkpoint')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('resumed from') && l.includes('at step 2')), lines.join('\n'));
  assert.equal(resumed.runs[0].result.final.loss, whole.runs[0].result.final.loss);
});

test('lm-fair nextRate: the half-decade grid one step up or down', () => {
  assert.deepEqual([3e-3, 1e-2, 3e-2].map((lr) => nextRate(lr, 1)), [1e-2, 3e-2, 1e-1]);
  assert.deepEqual([3e-3, 1e-2, 3e-2].map((lr) => nextRate(lr, -1)), [1e-3, 3e-3, 1e-2]);
});

test('regbench --quick: both families per pool size and run seed, the learning-rate check of both and the transformer at its second rate, runs stored and reused, report files', () => {
  const runsDir = join(tmp, 'regbench-runs'), lines: string[] = [];
  const plan = REGBENCH_QUICK;
  // The grid alone: the learning-rate check's run and the transformer's grid at 3e-3 (its seed-1 run at 8 DFAs is the check's) are missing.
  const first = runRegbench(plan, runsDir, ['grid'], (s) => lines.push(s));
  assert.deepEqual(first.runs.map((r) => `${r.family}-${r.trainDfas}-s${r.seed}`),
    ['llama-4-s1', 'mosaic-4-s1', 'llama-4-s2', 'mosaic-4-s2', 'llama-8-s1', 'mosaic-8-s1', 'llama-8-s2', 'mosaic-8-s2']);
  assert.deepEqual(first.missing, ['llama-dfas8-lr0.003-seed1.json', 'mosaic-dfas8-lr0.003-seed1.json', 'llama-dfas4-lr0.003-seed1.json', 'llama-dfas4-lr0.003-seed2.json', 'llama-dfas8-lr0.003-seed2.json']);
  for (const r of first.runs) {
    assert.ok(r.scored > 0 && r.accuracy >= 0 && r.accuracy <= 1 && Number.isFinite(r.heldOutLoss));
    assert.equal(r.tokens, plan.steps * plan.batch * plan.context);
    assert.equal(r.lr, plan.lr);
  }
  // Run seeds share the pools and the held-out letters (same count scored) but not the initialisation.
  const [s1, s2] = [1, 2].map((seed) => first.runs.find((r) => r.family === 'llama' && r.trainDfas === 8 && r.seed === seed)!);
  assert.equal(s1.scored, s2.scored);
  assert.notEqual(s1.heldOutLoss, s2.heldOutLoss);
  // A run is a function of its settings: retrained, seed 2 gives the same numbers (so reusing a stored run is sound).
  const { trainAll, heldOut } = regbenchPools(plan);
  const again = regbenchRun('llama', trainAll.slice(0, 8), heldOut, plan, 2, plan.lr);
  assert.deepEqual({ ...again, seconds: 0 }, { ...s2, seconds: 0 });

  lines.length = 0;
  const second = runRegbench(plan, runsDir, ['grid', 'lr-check', 'lr-grid'], (s) => lines.push(s));
  assert.deepEqual(second.missing, []);
  assert.equal(lines.filter((l) => l.includes('reusing')).length, 8, lines.join('\n'));
  assert.deepEqual(second.runs.slice(0, 8), first.runs);
  assert.deepEqual(second.runs.slice(8).map((r) => `${r.family}-${r.trainDfas}-s${r.seed}-lr${r.lr}`), ['llama-8-s1-lr0.003', 'mosaic-8-s1-lr0.003', 'llama-4-s1-lr0.003', 'llama-4-s2-lr0.003', 'llama-8-s2-lr0.003']);
  // A stored run is reused only for the same settings: with other steps every run is missing again.
  assert.equal(runRegbench({ ...plan, steps: plan.steps + 1 }, runsDir, [], () => {}).missing.length, 13);
  // Nor with a longer training list (the held-out languages are kept apart from all of it).
  assert.equal(runRegbench({ ...plan, trainDfas: [4, 8, 16] }, runsDir, [], () => {}).runs.length, 0);
  assert.ok(existsSync(join(runsDir, runFileName({ part: 'grid', family: 'mosaic', trainDfas: 4, seed: 2, lr: plan.lr }))));

  const docs = join(tmp, 'regbench-docs');
  const md = writeRegbenchReport(second.runs, plan, docs);
  for (const f of ['results/regbench.md', 'results/regbench.json', 'results/regbench-accuracy.svg']) assert.ok(existsSync(join(docs, f)), f);
  assert.match(md, /± \d/);
  const json = JSON.parse(readFileSync(join(docs, 'results/regbench.json'), 'utf8')) as { runs: unknown[]; lrCheck: { family: string; lr: number }[] };
  assert.equal(json.runs.length, 13);
  assert.deepEqual(json.lrCheck.map((r) => `${r.family} ${r.lr}`), ['llama 0.003', 'llama 0.01', 'mosaic 0.003', 'mosaic 0.01']);
});

test('regbench baselines: every letter allowed → both 100%; one letter per state → random 1/alphabet, bigram learns the cycle', () => {
  const A = 4, plan = { ...REGBENCH_QUICK, context: 64, dfa: { alphabet: A, minStates: 1, maxStates: 3, minLetters: 1 } };
  const all: Dfa = { states: 1, alphabet: A, next: new Int16Array(A).fill(0) };
  assert.deepEqual(regbenchBaselines([all], plan), { uniform: 1, bigram: 1 });
  // 3 states in a cycle, state s allows only letter s: strings are prefixes of 0 1 2 0 1 2 …
  const cycle: Dfa = { states: 3, alphabet: A, next: Int16Array.from({ length: 3 * A }, (_, i) => (i % A === Math.floor(i / A) ? (Math.floor(i / A) + 1) % 3 : -1)) };
  const b = regbenchBaselines([cycle], plan);
  assert.equal(b.uniform, 1 / A);
  assert.ok(b.bigram > 0.8, `the in-context bigram predicts a deterministic cycle once seen (${b.bigram})`);
});
