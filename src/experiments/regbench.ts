// Experiment d: in-context language learning as the Memory Mosaics paper measures it (RegBench-style,
// PAPERS.md §3): sequences of strings from random small DFAs (src/data/synthetic-dfa.ts); a model
// trained on sequences from N training DFAs is scored on sequences of held-out DFAs (languages that
// differ from every training DFA's): a prediction at a letter position is right when the DFA allows
// the predicted token after the prefix. Mosaic (short-budget init) vs Llama-architecture transformer
// at the paper's small size, d = 128, 2 layers, 4 heads, matched parameter counts, equal tokens,
// against the number of training DFAs.
//
// Run:  node dist/src/experiments/regbench.js [--quick] [--steps N] [--dfas 10,100,1000]
//       node dist/src/experiments/regbench.js --baselines   (only the model-free predictors' accuracy)
//       writes docs/results/regbench.{md,json} and docs/results/regbench-accuracy.svg

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
import { fmt, markdownTable, writeFiles, REPO_ROOT } from './report.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface RegbenchPlan {
  d: number; layers: number; heads: number;
  context: number; batch: number; steps: number; lr: number;
  trainDfas: number[];
  /** Held-out DFAs (one evaluation sequence each). */
  heldOut: number;
  seed: number;
  dfa: DfaOptions;
}

/** Sized to the shared 2-core machine: 6 runs of 102,400 tokens. */
export const REGBENCH_PLAN: RegbenchPlan = {
  d: 128, layers: 2, heads: 4, context: 128, batch: 8, steps: 100, lr: 1e-2,
  trainDfas: [10, 100, 1000], heldOut: 256, seed: 1, dfa: REGBENCH_DFA,
};

export const REGBENCH_QUICK: RegbenchPlan = {
  ...REGBENCH_PLAN, d: 16, context: 32, batch: 4, steps: 3, trainDfas: [4, 8], heldOut: 8,
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
  const rng = new Rng(deriveSeed(plan.seed, 0xe7a1));
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

export interface RegbenchRun { family: Family; arm: string; trainDfas: number; parameters: number; tokens: number; accuracy: number; scored: number; heldOutLoss: number; seconds: number }

/** Trains one model on `pool` and scores it on one sequence per held-out DFA. */
export function regbenchRun(family: Family, pool: readonly Dfa[], heldOut: readonly Dfa[], plan: RegbenchPlan): RegbenchRun {
  const vocab = dfaVocabSize(plan.dfa);
  const spec: ModelSpec = { d: plan.d, layers: plan.layers, heads: plan.heads, ...(family === 'mosaic' ? { init: 'short-budget' as const } : {}) };
  const mem = new TrainMemory({ bytes: 512 << 20, kernels: 'wasm', label: `regbench-${family}` });
  const tape = new Tape(mem);
  const model = buildModel(family, spec, mem, { vocabSize: vocab, context: plan.context, seed: plan.seed });
  const trainer = new Trainer({
    tape, params: model.params, optimizer: new AdamW(model.params, { weightDecay: 0.1 }),
    loss: (t, b, rng) => model.loss(t, b.ids, b.targets, b.B, b.T, rng),
    data: new DfaBatches(pool, plan.batch, plan.context, deriveSeed(plan.seed, pool.length)),
    schedule: { lr: plan.lr, minLr: plan.lr / 10, warmup: Math.max(1, Math.round(plan.steps / 10)), total: plan.steps },
    steps: plan.steps, seed: plan.seed, config: model.configJson, progress: false,
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
    family, arm: family === 'llama' ? 'transformer' : 'mosaic (short-budget init)', trainDfas: pool.length, parameters: model.params.count(),
    tokens: trainer.tokens, accuracy: right / scored, scored, heldOutLoss: lossSum / lossCount, seconds,
  };
}

/** Nested training pools (the first N of one list) and held-out languages outside all of them. */
export function regbenchPools(plan: RegbenchPlan): { trainAll: Dfa[]; heldOut: Dfa[] } {
  const trainAll = dfaPool(deriveSeed(plan.seed, 0xd1a), Math.max(...plan.trainDfas), plan.dfa);
  return { trainAll, heldOut: dfaPool(deriveSeed(plan.seed, 0x401d), plan.heldOut, plan.dfa, trainAll) };
}

export function runRegbench(plan: RegbenchPlan, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): RegbenchRun[] {
  const { trainAll, heldOut } = regbenchPools(plan);
  const runs: RegbenchRun[] = [];
  for (const n of plan.trainDfas) {
    for (const family of ['llama', 'mosaic'] as const) {
      const r = regbenchRun(family, trainAll.slice(0, n), heldOut, plan);
      log(`${r.arm}, ${n} training DFAs: held-out accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.scored} letters), loss ${fmt(r.heldOutLoss)}, ${r.seconds.toFixed(0)} s`);
      runs.push(r);
    }
  }
  return runs;
}

export function writeRegbenchReport(runs: RegbenchRun[], plan: RegbenchPlan, docsDir: string): string {
  const base = regbenchBaselines(regbenchPools(plan).heldOut, plan);
  const table = markdownTable(['training DFAs', 'model', 'parameters', 'tokens seen', 'held-out accuracy', 'letters scored', 'held-out loss (letters)', 'wall'],
    runs.map((r) => [r.trainDfas, r.arm, r.parameters.toLocaleString('en-US'), r.tokens.toLocaleString('en-US'), `${(100 * r.accuracy).toFixed(1)}%`, r.scored, fmt(r.heldOutLoss), `${r.seconds.toFixed(0)} s`]));
  const svg = linePlotSvg({
    title: `RegBench-style: accuracy on ${plan.heldOut} held-out DFAs (d ${plan.d}, ${plan.layers} layers)`, xLabel: 'log2(training DFAs)', yLabel: 'held-out accuracy',
    series: ['transformer', 'mosaic (short-budget init)'].map((arm) => ({ name: arm, dashed: arm === 'transformer',
      points: runs.filter((r) => r.arm === arm).map((r) => [Math.log2(r.trainDfas), r.accuracy] as [number, number]) })),
  });
  const md = `# Experiment d: in-context language learning (RegBench-style)

DFAs: ${plan.dfa.minStates}–${plan.dfa.maxStates} states, ${plan.dfa.minLetters}–${plan.dfa.alphabet} letters of ${plan.dfa.alphabet}; models d ${plan.d}, ${plan.layers} layers, ${plan.heads} heads;
${plan.steps} steps × ${plan.batch} × ${plan.context} tokens, peak lr ${plan.lr} (cosine to lr/10), seed ${plan.seed}; one held-out sequence per held-out DFA.
Model-free predictors on the same held-out letters: a uniformly random letter ${(100 * base.uniform).toFixed(1)}%, the in-context bigram ${(100 * base.bigram).toFixed(1)}%.

${table}`;
  writeFiles(docsDir, { 'results/regbench.md': md, 'results/regbench.json': JSON.stringify({ plan, baselines: base, runs }, null, 1) + '\n', 'results/regbench-accuracy.svg': svg });
  return md;
}

const FLAGS: FlagSpecs = {
  quick: { type: 'boolean', description: 'the small plan, written to a temporary folder' },
  baselines: { type: 'boolean', description: "only the model-free predictors' accuracy" },
  steps: { type: 'integer', min: 1, placeholder: 'N', description: "training steps (default: the plan's)" },
  dfas: { type: 'integer', list: true, min: 1, placeholder: 'LIST', description: "training DFA counts (default: the plan's)" },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Experiment d: in-context language learning (RegBench-style), Memory Mosaic vs transformer, held-out accuracy against the number of training DFAs.');
  if (!v) return 0;
  const quick = v.quick === true;
  const plan = { ...(quick ? REGBENCH_QUICK : REGBENCH_PLAN) };
  if (v.steps !== undefined) plan.steps = v.steps as number;
  if (v.dfas !== undefined) plan.trainDfas = v.dfas as number[];
  if (v.baselines === true) {
    const b = regbenchBaselines(regbenchPools(plan).heldOut, plan);
    process.stdout.write(`held-out letters: uniformly random letter ${(100 * b.uniform).toFixed(1)}%, in-context bigram ${(100 * b.bigram).toFixed(1)}%\n`);
    return 0;
  }
  const runs = runRegbench(plan);
  process.stdout.write(writeRegbenchReport(runs, plan, quick ? join(tmpdir(), 'tessera-regbench-quick', 'docs') : join(REPO_ROOT, 'docs')));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
