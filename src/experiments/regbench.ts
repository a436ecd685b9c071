// Experiment d: in-context language learning as the Memory Mosaics paper measures it (RegBench-style,
// PAPERS.md §3): sequences of strings from random small DFAs (src/data/synthetic-dfa.ts); a model
// trained on sequences from N training DFAs is scored on sequences of held-out DFAs (languages that
// differ from every training DFA's): a prediction at a letter position is right when the DFA allows
// the predicted token after the prefix. Mosaic (short-budget init) vs Llama-architecture transformer
// at the paper's small size, d = 128, 2 layers (4 heads here), matched parameter counts, equal tokens,
// against the number of training DFAs.
//
// Run:  node dist/src/experiments/regbench.js [--quick] [--steps N] [--dfas 10,100,1000] [--seeds 1,2] [--part grid|lr-check|lr-grid]
//       node dist/src/experiments/regbench.js --baselines   (only the model-free predictors' accuracy)
//       each finished run is kept in docs/results/regbench-runs/ and reused; once all runs of the plan are
//       there, writes docs/results/regbench.{md,json} and docs/results/regbench-accuracy.svg

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { TrainMemory } from '../training/memory.js';
import { Tape } from '../training/autograd/tape.js';
import { AdamW } from '../training/optim.js';
import { Trainer } from '../training/trainer.js';
import type { Batch, BatchSource } from '../training/batches.js';
import { buildModel } from '../training/train-model.js';
import type { Family, ModelSpec } from '../training/train-config.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { Rng } from '../data/rng.js';
import { deriveSeed } from '../data/rng.js';
import { DFA_FIRST_LETTER, REGBENCH_DFA, dfaAllows, dfaPool, dfaSequence, dfaVocabSize, type Dfa, type DfaOptions, type DfaSequence } from '../data/synthetic-dfa.js';
import { fmt, markdownTable, meanSpread, writeFiles, REPO_ROOT } from './report.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface RegbenchPlan {
  d: number; layers: number; heads: number;
  context: number; batch: number; steps: number; lr: number;
  trainDfas: number[];
  /** Held-out DFAs (one evaluation sequence each). */
  heldOut: number;
  /** Seeds the DFA pools and the held-out sequences: every run seed sees the same training and held-out languages. */
  dfaSeed: number;
  /** Run seeds: each seeds the model's initialisation, the training sequences drawn (which pool DFA, which
   *  strings; so their order) and the trainer's dropout rng. Run seed 1 with DFA seed 1 is the original single-seed run. */
  seeds: number[];
  /** A learning-rate check next to `lr` (not a sweep): each family at one pool size and one seed at its
   *  `lrs`, then `gridFamily`'s whole grid (every pool size and run seed) again at each of `gridLrs`. */
  lrCheck: { trainDfas: number; seed: number; lrs: Record<Family, number[]>; gridFamily: Family; gridLrs: number[] };
  dfa: DfaOptions;
}

/** Sized to the shared 2-core machine: 12 runs of 102,400 tokens, 7 for the learning-rate check and 5 more for each of the transformer's grids at 3e-3 and 1e-3. */
export const REGBENCH_PLAN: RegbenchPlan = {
  d: 128, layers: 2, heads: 4, context: 128, batch: 8, steps: 100, lr: 1e-2,
  trainDfas: [10, 100, 1000], heldOut: 256, dfaSeed: 1, seeds: [1, 2],
  lrCheck: { trainDfas: 100, seed: 1, lrs: { llama: [3e-4, 1e-3, 3e-3, 3e-2], mosaic: [1e-3, 3e-3, 3e-2] }, gridFamily: 'llama', gridLrs: [3e-3, 1e-3] }, dfa: REGBENCH_DFA,
};

export const REGBENCH_QUICK: RegbenchPlan = {
  ...REGBENCH_PLAN, d: 16, context: 32, batch: 4, steps: 3, trainDfas: [4, 8], heldOut: 8,
  lrCheck: { trainDfas: 8, seed: 1, lrs: { llama: [3e-3], mosaic: [3e-3] }, gridFamily: 'llama', gridLrs: [3e-3] },
};

/** Training sequences: each from a uniformly drawn DFA of the pool; every next token is a target. */
class DfaBatches implements BatchSource {
  private rng: Rng;
  private drawn = 0;
  constructor(private readonly pool: readonly Dfa[], private readonly B: number, private readonly T: number, private readonly seed: number) {
    this.rng = new Rng(seed);
  }
  next(): Batch {
    const ids = new Int32Array(this.B * this.T), targets = new Int32Array(this.B * this.T);
    for (let b = 0; b < this.B; b++) {
      const s = dfaSequence(this.rng.pick(this.pool), this.rng, this.T);
      ids.set(s.tokens.subarray(0, this.T), b * this.T);
      targets.set(s.tokens.subarray(1), b * this.T);
    }
    this.drawn++;
    return { ids, targets, B: this.B, T: this.T };
  }
  getState(): unknown { return { drawn: this.drawn }; }
  setState(state: unknown): void {
    this.rng = new Rng(this.seed);
    const n = (state as { drawn: number }).drawn;
    this.drawn = 0;
    for (let i = 0; i < n; i++) this.next();
  }
}

/** One evaluation sequence per held-out DFA, from a stream training never uses (the same for every model). */
export function heldOutSequences(heldOut: readonly Dfa[], plan: RegbenchPlan): DfaSequence[] {
  const rng = new Rng(deriveSeed(plan.dfaSeed, 0xe7a1));
  return heldOut.map((d) => dfaSequence(d, rng, plan.context));
}

/** Accuracy of two model-free predictors on the held-out sequences, scored like the models:
 *  a uniformly random letter (expected accuracy: allowed letters / alphabet), and the in-context
 *  bigram (the letter that most often followed the current token earlier in the sequence; the most
 *  frequent letter so far when the token is new, the first letter before any is seen). */
export function regbenchBaselines(heldOut: readonly Dfa[], plan: RegbenchPlan): { uniform: number; bigram: number } {
  const A = plan.dfa.alphabet, V = dfaVocabSize(plan.dfa);
  let uniform = 0, bigram = 0, scored = 0;
  heldOutSequences(heldOut, plan).forEach((seq, i) => {
    const dfa = heldOut[i];
    const follow = new Int32Array(V * V), seen = new Int32Array(V);
    for (let t = 0; t < plan.context; t++) {
      const cur = seq.tokens[t], target = seq.tokens[t + 1];
      if (target >= DFA_FIRST_LETTER) {
        let allowed = 0;
        for (let x = 0; x < A; x++) if (dfaAllows(dfa, seq.state[t], DFA_FIRST_LETTER + x)) allowed++;
        uniform += allowed / A;
        let best = -1, n = 0;
        for (let v = DFA_FIRST_LETTER; v < V; v++) if (follow[cur * V + v] > n) { n = follow[cur * V + v]; best = v; }
        if (best < 0) for (let v = DFA_FIRST_LETTER; v < V; v++) if (seen[v] > n) { n = seen[v]; best = v; }
        if (dfaAllows(dfa, seq.state[t], best < 0 ? DFA_FIRST_LETTER : best)) bigram++;
        scored++;
      }
      follow[cur * V + target]++;
      seen[target]++;
    }
  });
  return { uniform: uniform / scored, bigram: bigram / scored };
}

export interface RegbenchRun { family: Family; arm: string; trainDfas: number; seed: number; lr: number; parameters: number; tokens: number; accuracy: number; scored: number; heldOutLoss: number; seconds: number }

/** Trains one model on `pool` (run seed `seed`, peak rate `lr`) and scores it on one sequence per held-out DFA. */
export function regbenchRun(family: Family, pool: readonly Dfa[], heldOut: readonly Dfa[], plan: RegbenchPlan, seed: number, lr: number): RegbenchRun {
  const vocab = dfaVocabSize(plan.dfa);
  const spec: ModelSpec = { d: plan.d, layers: plan.layers, heads: plan.heads, ...(family === 'mosaic' ? { init: 'short-budget' as const } : {}) };
  const mem = new TrainMemory({ bytes: 512 << 20, kernels: 'wasm', label: `regbench-${family}` });
  const tape = new Tape(mem);
  const model = buildModel(family, spec, mem, { vocabSize: vocab, context: plan.context, seed });
  const trainer = new Trainer({
    tape, params: model.params, optimizer: new AdamW(model.params, { weightDecay: 0.1 }),
    loss: (t, b, rng) => model.loss(t, b.ids, b.targets, b.B, b.T, rng),
    data: new DfaBatches(pool, plan.batch, plan.context, deriveSeed(seed, pool.length)),
    schedule: { lr, minLr: lr / 10, warmup: Math.max(1, Math.round(plan.steps / 10)), total: plan.steps },
    steps: plan.steps, seed, config: model.configJson, progress: false,
  });
  const t0 = performance.now();
  trainer.run();
  const seconds = (performance.now() - t0) / 1000;
  let right = 0, scored = 0, lossSum = 0, lossCount = 0;
  const T = plan.context;
  const allSeqs = heldOutSequences(heldOut, plan);
  for (let i = 0; i < heldOut.length; i += plan.batch) {
    const dfas = heldOut.slice(i, i + plan.batch), B = dfas.length;
    const seqs = allSeqs.slice(i, i + plan.batch);
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
    seqs.forEach((s, b) => { ids.set(s.tokens.subarray(0, T), b * T); targets.set(s.tokens.subarray(1), b * T); });
    tape.reset();
    tape.training = false;
    const logits = tape.noGrad(() => model.logits(tape, ids, B, T)).data;     // (B·T, V)
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const target = seqs[b].tokens[t + 1];
        if (target < 2) continue;                                              // score letter positions only
        const row = (b * T + t) * vocab;
        let best = 0, m = -Infinity;
        for (let v = 0; v < vocab; v++) if (logits[row + v] > m) { m = logits[row + v]; best = v; }
        let z = 0;
        for (let v = 0; v < vocab; v++) z += Math.exp(logits[row + v] - m);
        lossSum += Math.log(z) + m - logits[row + target];
        lossCount++;
        scored++;
        if (dfaAllows(dfas[b], seqs[b].state[t], best)) right++;
      }
    }
  }
  tape.reset();
  return {
    family, arm: family === 'llama' ? 'transformer' : 'mosaic (short-budget init)', trainDfas: pool.length, seed, lr, parameters: model.params.count(),
    tokens: trainer.tokens, accuracy: right / scored, scored, heldOutLoss: lossSum / lossCount, seconds,
  };
}

/** The length of the list the nested pools are taken from; the held-out languages differ from all of it, so they depend on it. */
const poolSize = (plan: RegbenchPlan): number => Math.max(...plan.trainDfas, plan.lrCheck.trainDfas);

/** Nested training pools (the first N of one list) and held-out languages outside all of them; from the DFA seed only. */
export function regbenchPools(plan: RegbenchPlan): { trainAll: Dfa[]; heldOut: Dfa[] } {
  const trainAll = dfaPool(deriveSeed(plan.dfaSeed, 0xd1a), poolSize(plan), plan.dfa);
  return { trainAll, heldOut: dfaPool(deriveSeed(plan.dfaSeed, 0x401d), plan.heldOut, plan.dfa, trainAll) };
}

/** One run of the plan: what it trains, and everything its result depends on (a stored run is reused only when this matches). */
export interface RegbenchRunSpec { part: 'grid' | 'lr-check' | 'lr-grid'; family: Family; trainDfas: number; seed: number; lr: number }

/** The settings a stored run is compared on (its file holds them next to the result). */
export function regbenchRunKey(spec: RegbenchRunSpec, plan: RegbenchPlan): Record<string, unknown> {
  const { d, layers, heads, context, batch, steps, heldOut, dfaSeed, dfa } = plan;
  return { family: spec.family, trainDfas: spec.trainDfas, seed: spec.seed, lr: spec.lr, d, layers, heads, context, batch, steps, heldOut, dfaSeed, pool: poolSize(plan), dfa };
}

export const runFileName = (s: RegbenchRunSpec): string => `${s.family}-dfas${s.trainDfas}-lr${s.lr}-seed${s.seed}.json`;

/** The plan's runs: every pool size × run seed × family at the plan's rate, the learning-rate check's
 *  other rates, then the check's family at every pool size and run seed at each of `gridLrs` (each run once). */
export function regbenchRunSpecs(plan: RegbenchPlan): RegbenchRunSpec[] {
  const c = plan.lrCheck;
  const specs: RegbenchRunSpec[] = [
    ...plan.trainDfas.flatMap((n) => plan.seeds.flatMap((seed) => (['llama', 'mosaic'] as const).map((family) => ({ part: 'grid' as const, family, trainDfas: n, seed, lr: plan.lr })))),
    ...(['llama', 'mosaic'] as const).flatMap((family) => c.lrs[family].map((lr) => ({ part: 'lr-check' as const, family, trainDfas: c.trainDfas, seed: c.seed, lr }))),
    ...c.gridLrs.flatMap((lr) => plan.trainDfas.flatMap((n) => plan.seeds.map((seed) => ({ part: 'lr-grid' as const, family: c.gridFamily, trainDfas: n, seed, lr })))),
  ];
  return specs.filter((x, i) => specs.findIndex((y) => runFileName(y) === runFileName(x)) === i);
}

/** A finished run stored in `runsDir` for exactly this spec and plan, or null. */
export function storedRun(spec: RegbenchRunSpec, plan: RegbenchPlan, runsDir: string): RegbenchRun | null {
  const path = join(runsDir, runFileName(spec));
  if (!existsSync(path)) return null;
  const stored = JSON.parse(readFileSync(path, 'utf8')) as { key: unknown; run: RegbenchRun };
  return JSON.stringify(stored.key) === JSON.stringify(regbenchRunKey(spec, plan)) ? stored.run : null;
}

/**
 * Runs the plan's runs of the given parts, each stored in `runsDir` as it finishes (one JSON file per run)
 * and reused from there when already stored for the same settings. Returns every run of the plan that is
 * stored (of any part) and the file names of those still missing.
 */
export function runRegbench(plan: RegbenchPlan, runsDir: string, parts: readonly RegbenchRunSpec['part'][] = ['grid', 'lr-check', 'lr-grid'],
  log: (s: string) => void = (s) => process.stderr.write(s + '\n')): { runs: RegbenchRun[]; missing: string[] } {
  const { trainAll, heldOut } = regbenchPools(plan);
  const runs: RegbenchRun[] = [], missing: string[] = [];
  for (const spec of regbenchRunSpecs(plan)) {
    const label = `${spec.family === 'llama' ? 'transformer' : 'mosaic'}, ${spec.trainDfas} training DFAs, seed ${spec.seed}, lr ${spec.lr}`;
    let r = storedRun(spec, plan, runsDir);
    if (r) log(`${label}: reusing ${runFileName(spec)}`);
    else if (parts.includes(spec.part)) {
      r = regbenchRun(spec.family, trainAll.slice(0, spec.trainDfas), heldOut, plan, spec.seed, spec.lr);
      writeFiles(runsDir, { [runFileName(spec)]: JSON.stringify({ key: regbenchRunKey(spec, plan), run: r }, null, 1) + '\n' });
      log(`${label}: held-out accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.scored} letters), loss ${fmt(r.heldOutLoss)}, ${r.seconds.toFixed(0)} s`);
    }
    if (r) runs.push(r); else missing.push(runFileName(spec));
  }
  return { runs, missing };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const familyName = (f: Family): string => (f === 'llama' ? 'transformer' : 'mosaic (short-budget init)');

/** The report of a complete plan (every run of regbenchRunSpecs present in `runs`). */
export function writeRegbenchReport(runs: RegbenchRun[], plan: RegbenchPlan, docsDir: string): string {
  const base = regbenchBaselines(regbenchPools(plan).heldOut, plan);
  const c = plan.lrCheck;
  const colors = ['#2ca02c', '#ff7f0e', '#9467bd'];
  const arms = [{ family: 'llama' as const, lr: plan.lr, color: '#1f77b4' }, { family: 'mosaic' as const, lr: plan.lr, color: '#d62728' },
    ...c.gridLrs.map((lr, i) => ({ family: c.gridFamily, lr, color: colors[i % colors.length] }))].map((a) => ({ ...a, arm: `${familyName(a.family)}, lr ${a.lr}` }));
  const others = arms.filter((a) => a.family !== 'mosaic');
  const find = (family: Family, n: number, seed: number, lr: number) => runs.find((x) => x.family === family && x.trainDfas === n && x.seed === seed && x.lr === lr);
  const at = (family: Family, n: number, lr: number) => plan.seeds.map((seed) => {
    const r = find(family, n, seed, lr);
    if (!r) throw new Error(`regbench: no ${family} run at ${n} DFAs, seed ${seed}, lr ${lr}`);
    return r;
  });
  const seedCols = plan.seeds.map((s) => `seed ${s}`).join(' / ');
  const table = markdownTable(['training DFAs', 'model', 'parameters', 'tokens seen (per run)', 'held-out accuracy (mean ± half-range)', `accuracy (${seedCols})`, `held-out loss, letters (${seedCols})`, `wall (${seedCols})`],
    plan.trainDfas.flatMap((n) => arms.map(({ family, lr, arm }) => {
      const rs = at(family, n, lr), acc = meanSpread(rs.map((r) => r.accuracy));
      return [n, arm, rs[0].parameters.toLocaleString('en-US'), rs[0].tokens.toLocaleString('en-US'), `${pct(acc.mean)} ± ${(100 * acc.spread).toFixed(1)}`,
        rs.map((r) => pct(r.accuracy)).join(' / '), rs.map((r) => fmt(r.heldOutLoss)).join(' / '), rs.map((r) => `${r.seconds.toFixed(0)} s`).join(' / ')];
    })));
  const gap = markdownTable(['training DFAs', ...others.flatMap((a) => plan.seeds.map((s) => `vs ${a.arm}, seed ${s}`))],
    plan.trainDfas.map((n) => [n, ...others.flatMap((a) => {
      const t = at(a.family, n, a.lr), m = at('mosaic', n, plan.lr);
      return plan.seeds.map((_, i) => `${(100 * (m[i].accuracy - t[i].accuracy)).toFixed(1)} points`);
    })]));
  const checkRates = [...new Set([...c.lrs.llama, ...c.lrs.mosaic, plan.lr])].sort((a, b) => a - b);
  const checkRuns = (['llama', 'mosaic'] as const).flatMap((family) => checkRates.filter((lr) => lr === plan.lr || c.lrs[family].includes(lr)).map((lr) => {
    const r = find(family, c.trainDfas, c.seed, lr);
    if (!r) throw new Error(`regbench: no ${family} learning-rate check run at lr ${lr}`);
    return r;
  }));
  const cell = (family: Family, lr: number, f: (r: RegbenchRun) => string) => { const r = checkRuns.find((x) => x.family === family && x.lr === lr); return r ? f(r) : '—'; };
  const check = markdownTable(['peak lr', ...(['llama', 'mosaic'] as const).flatMap((f) => [`${familyName(f)}: accuracy`, 'loss (letters)'])],
    checkRates.map((lr) => [lr, ...(['llama', 'mosaic'] as const).flatMap((f) => [cell(f, lr, (r) => pct(r.accuracy)), cell(f, lr, (r) => fmt(r.heldOutLoss))])]));
  const svg = linePlotSvg({
    title: `Accuracy on ${plan.heldOut} held-out DFAs; T/M: transformer/mosaic at peak lr; solid: mean of ${plan.seeds.length} seeds`, xLabel: 'log2(training DFAs)', yLabel: 'held-out accuracy',
    // wide, with room right of the last point for the legend (one entry per arm and seed)
    width: 760, height: 520, yRange: [0, 1], xRange: [Math.log2(Math.min(...plan.trainDfas)) - 0.5, Math.log2(Math.max(...plan.trainDfas)) + 4],
    series: arms.flatMap(({ family, lr, color }) => [
      { name: `${family === 'llama' ? 'T' : 'M'} ${lr}, mean`, color, points: plan.trainDfas.map((n) => [Math.log2(n), meanSpread(at(family, n, lr).map((r) => r.accuracy)).mean] as [number, number]) },
      ...plan.seeds.map((seed, i) => ({ name: `${family === 'llama' ? 'T' : 'M'} ${lr}, seed ${seed}`, color, dashed: true,
        points: plan.trainDfas.map((n) => [Math.log2(n), at(family, n, lr)[i].accuracy] as [number, number]) })),
    ]),
  });
  const md = `# Experiment d: in-context language learning (RegBench-style)

DFAs: ${plan.dfa.minStates}–${plan.dfa.maxStates} states, ${plan.dfa.minLetters}–${plan.dfa.alphabet} letters of ${plan.dfa.alphabet}; models d ${plan.d}, ${plan.layers} layers, ${plan.heads} heads;
${plan.steps} steps × ${plan.batch} × ${plan.context} tokens, peak lr ${plan.lr} for both families, and ${c.gridLrs.join(', ')} for the ${familyName(c.gridFamily)} (cosine to lr/10); one held-out sequence per held-out DFA.
Training pools and held-out DFAs and sequences from DFA seed ${plan.dfaSeed}, the same for every run; run seeds ${plan.seeds.join(', ')} (each seeds the
initialisation, the training sequences drawn from the pool and the dropout rng).
Model-free predictors on the same held-out letters: a uniformly random letter ${pct(base.uniform)}, the in-context bigram ${pct(base.bigram)}.

${table}
Per seed, the mosaic's (lr ${plan.lr}) lead in held-out accuracy over each ${familyName(c.gridFamily)} run (same seed, same pool):

${gap}
Learning-rate check (not a sweep): both families at ${c.trainDfas} training DFAs, run seed ${c.seed} (— not run):

${check}`;
  writeFiles(docsDir, {
    'results/regbench.md': md, 'results/regbench-accuracy.svg': svg,
    'results/regbench.json': JSON.stringify({ plan, baselines: base, runs, lrCheck: checkRuns }, null, 1) + '\n',
  });
  return md;
}

const FLAGS: FlagSpecs = {
  quick: { type: 'boolean', description: 'the small plan, written to a temporary folder' },
  baselines: { type: 'boolean', description: "only the model-free predictors' accuracy" },
  steps: { type: 'integer', min: 1, placeholder: 'N', description: "training steps (default: the plan's)" },
  dfas: { type: 'integer', list: true, min: 1, placeholder: 'LIST', description: "training DFA counts (default: the plan's)" },
  seeds: { type: 'integer', list: true, min: 1, placeholder: 'LIST', description: "run seeds (initialisation and training data; default: the plan's 1,2)" },
  'grid-lrs': { type: 'number', list: true, exclusiveMin: true, min: 0, placeholder: 'LIST', description: "the rates at which the transformer runs its whole grid again (default: the plan's 0.003,0.001)" },
  part: { type: 'string', choices: ['grid', 'lr-check', 'lr-grid'], placeholder: 'PART', description: "run only 'grid' (both families, every pool size and seed at the plan's rate), 'lr-check' (each family at one pool size and seed at other rates) or 'lr-grid' (the transformer's grid at its other rates); runs of the other parts that are missing are left out and the report is not written" },
  runs: { type: 'string', placeholder: 'DIR', description: 'where finished runs are stored and reused (default docs/results/regbench-runs, or the temporary folder with --quick)' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Experiment d: in-context language learning (RegBench-style), Memory Mosaic vs transformer, held-out accuracy against the number of training DFAs over run seeds, and a learning-rate check for the transformer.');
  if (!v) return 0;
  const quick = v.quick === true;
  const plan = { ...(quick ? REGBENCH_QUICK : REGBENCH_PLAN) };
  if (v.steps !== undefined) plan.steps = v.steps as number;
  if (v.dfas !== undefined) plan.trainDfas = v.dfas as number[];
  if (v.seeds !== undefined) plan.seeds = v.seeds as number[];
  if (v['grid-lrs'] !== undefined) plan.lrCheck = { ...plan.lrCheck, gridLrs: v['grid-lrs'] as number[] };
  if (v.baselines === true) {
    const b = regbenchBaselines(regbenchPools(plan).heldOut, plan);
    process.stdout.write(`held-out letters: uniformly random letter ${pct(b.uniform)}, in-context bigram ${pct(b.bigram)}\n`);
    return 0;
  }
  const part = v.part as string | undefined;
  const scratch = join(tmpdir(), 'tessera-regbench-quick');
  const runsDir = (v.runs as string | undefined) ?? (quick ? join(scratch, 'runs') : join(REPO_ROOT, 'docs', 'results', 'regbench-runs'));
  const { runs, missing } = runRegbench(plan, runsDir, part === undefined ? ['grid', 'lr-check', 'lr-grid'] : [part as RegbenchRunSpec['part']]);
  if (missing.length > 0) {
    process.stdout.write(`${missing.length} run(s) of the plan not yet in ${runsDir} (${missing.join(', ')}); the report is written once all are there\n`);
    return 0;
  }
  process.stdout.write(writeRegbenchReport(runs, plan, quick ? join(scratch, 'docs') : join(REPO_ROOT, 'docs')));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
