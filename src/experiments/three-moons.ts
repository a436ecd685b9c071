// Three moons (PAPERS.md §3, predictive disentanglement): trains the one-layer contextual memory of
// three-moons-model.ts with 1 and with 3 heads on 8 period triples, then measures on the held-out
// triple [1, 2, 3] the error of 25 free-running steps against how many true steps the model saw.
// Expected: 3 heads improve after each moon's period (≈ 44, 89, 133 steps), 1 head only after the
// common period (≈ 267), and each of the 3 heads locks onto one moon.
// Defaults are the reference's run: batch 64, 512 evaluation starts, AdamW without bias correction (MLX).
// Run: node dist/src/experiments/three-moons.js [--quick] [--heads 1,3] [--iters 500] [--batch 64]
//        [--starts 512] [--adam mlx|pytorch] [--seed 100] [--out docs/results/three-moons]
//        or   --merge A.json,B.json [--out DIR]
// Writes OUT/three-moons.json, three-moons-error.svg, three-moons-weights.svg, three-moons-loss.svg.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TrainMemory } from '../training/memory.js';
import { Tape } from '../training/autograd/tape.js';
import { AdamW } from '../training/optim.js';
import { Rng } from '../training/rng.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { DIM, HELD_OUT, moonBatch, periodsInSteps, randomStart, trainTriples, trajectory } from './three-moons-data.js';
import { MoonModel, type MoonWeights } from './three-moons-model.js';
import { blockNorms, freeRunErrors, headSpecialisation, type HeadSpecialisation } from './three-moons-eval.js';
import { CliError, UsageError, type FlagSpecs, type FlagValues } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface ThreeMoonsOptions {
  heads: number[];
  iters: number;
  batch: number;
  /** Training window (800 in the paper). */
  T: number;
  /** Start positions of the held-out triple averaged in the evaluation. */
  starts: number;
  /** Context lengths evaluated. */
  contexts: number[];
  /** Free-running steps per evaluation (25). */
  steps: number;
  lr: number;
  minLr: number;
  /** Adam's 1/(1 − βᵗ) factors: false as in MLX (the reference), true as in PyTorch. */
  biasCorrection: boolean;
  seed: number;
  log?: (line: string) => void;
}

export interface HeadsResult {
  heads: number;
  /** Settings this model was trained with (merged results may mix runs). */
  seed: number; batch: number; iters: number; biasCorrection: boolean;
  losses: number[];
  trainSeconds: number;
  evalSeconds: number;
  /** Mean free-running error per context length (same order as options.contexts). */
  errors: number[];
  weights: { k: number[][]; v: number[][]; o: number[][] };
  specialisation: HeadSpecialisation | null;
}

export interface ThreeMoonsResult {
  options: Omit<ThreeMoonsOptions, 'log'>;
  heldOut: readonly number[];
  periodsSteps: { moons: number[]; common: number };
  runs: HeadsResult[];
}

/** 1 … 400 one by one (every step around the periods matters), then every 5th up to 775. */
export function defaultContexts(max = 775): number[] {
  const out: number[] = [];
  for (let c = 1; c <= Math.min(400, max); c++) out.push(c);
  for (let c = 405; c <= max; c += 5) out.push(c);
  return out;
}

export function fullOptions(): ThreeMoonsOptions {
  return { heads: [1, 3], iters: 500, batch: 64, T: 800, starts: 512, contexts: defaultContexts(), steps: 25, lr: 1e-2, minLr: 5e-6, biasCorrection: false, seed: 100 };
}

/** Smaller run for a quick look: fewer sequences per step and fewer evaluation starts. */
export function quickOptions(): ThreeMoonsOptions {
  const c: number[] = [];
  for (let x = 1; x <= 400; x += 3) c.push(x);
  return { ...fullOptions(), iters: 200, batch: 8, starts: 8, contexts: c };
}

/** Linear schedule from lr to minLr over `iters` steps (the reference's mlx linear_schedule). */
export function linearLr(step: number, o: { lr: number; minLr: number; iters: number }): number {
  return o.lr + (o.minLr - o.lr) * Math.min(step, o.iters) / o.iters;
}

export function trainMoons(heads: number, o: ThreeMoonsOptions): { model: MoonModel; losses: number[]; seconds: number } {
  const mem = new TrainMemory({ bytes: Math.max(64 << 20, o.batch * o.T * DIM * 4 * 24), kernels: 'wasm' });
  const tape = new Tape(mem);
  const model = new MoonModel(mem, heads, o.seed);
  const opt = new AdamW(model.params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, biasCorrection: o.biasCorrection });
  const trajectories = trainTriples().map((p) => trajectory(p));
  const rng = Rng.derive(o.seed, 'three-moons-batches');
  const losses: number[] = [];
  const t0 = performance.now();
  for (let step = 0; step < o.iters; step++) {
    const { x, y } = moonBatch(rng, o.batch, o.T, trajectories);
    tape.reset();
    model.params.zeroGrad();
    const xt = tape.constant([o.batch, o.T, DIM], x), yt = tape.constant([o.batch, o.T, DIM], y);
    const loss = model.loss(tape, xt, yt);
    const l = loss.data[0];
    if (!Number.isFinite(l)) throw new Error(`three moons: loss became ${l} at step ${step} (${heads} heads); lower --lr`);
    losses.push(l);
    tape.backward(loss);
    opt.step(linearLr(step, o));
    if (o.log && ((step + 1) % 25 === 0 || step + 1 === o.iters)) {
      const s = (performance.now() - t0) / 1000;
      o.log(`  ${heads} head${heads > 1 ? 's' : ''} step ${step + 1}/${o.iters} loss ${l.toFixed(5)} ${s.toFixed(0)} s`);
    }
  }
  tape.reset();
  return { model, losses, seconds: (performance.now() - t0) / 1000 };
}

/** Mean free-running error per context length on the held-out triple over `starts` random windows. */
export function evaluateHeldOut(W: MoonWeights, o: ThreeMoonsOptions): number[] {
  const traj = trajectory(HELD_OUT);
  const rng = Rng.derive(o.seed, 'three-moons-eval');
  const L = Math.max(...o.contexts) + o.steps;
  const sum = new Float64Array(o.contexts.length);
  for (let i = 0; i < o.starts; i++) {
    const s = randomStart(rng, o.T);
    const errs = freeRunErrors(W, traj.subarray(s * DIM, (s + L) * DIM), o.contexts, o.steps);
    for (let c = 0; c < errs.length; c++) sum[c] += errs[c] / o.starts;
  }
  return Array.from(sum);
}

export function runThreeMoons(o: ThreeMoonsOptions): ThreeMoonsResult {
  const runs: HeadsResult[] = [];
  for (const heads of o.heads) {
    const { model, losses, seconds } = trainMoons(heads, o);
    const W = model.weights();
    const t0 = performance.now();
    const errors = evaluateHeldOut(W, o);
    const evalSeconds = (performance.now() - t0) / 1000;
    runs.push({
      heads, seed: o.seed, batch: o.batch, iters: o.iters, biasCorrection: o.biasCorrection, losses, trainSeconds: seconds, evalSeconds, errors,
      weights: { k: blockNorms(W.k), v: blockNorms(W.v), o: blockNorms(W.o) },
      specialisation: headSpecialisation(W),
    });
    o.log?.(`  ${heads} head(s): trained in ${seconds.toFixed(0)} s, evaluated in ${evalSeconds.toFixed(0)} s`);
  }
  const { log: _log, ...options } = o;
  return { options, heldOut: HELD_OUT, periodsSteps: periodsInSteps(HELD_OUT), runs };
}

/** Mean error over the context lengths in [lo, hi). */
export function meanErrorIn(r: HeadsResult, contexts: readonly number[], lo: number, hi: number): number {
  let s = 0, n = 0;
  contexts.forEach((c, i) => { if (c >= lo && c < hi) { s += r.errors[i]; n++; } });
  return n ? s / n : NaN;
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];

/** "3 heads", with what tells it apart from the other runs of the same head count: the seed, and the
 *  batch and optimiser when they differ (e.g. "3 heads (seed 1, batch 16, bias-corrected Adam)"). */
export function runLabel(res: ThreeMoonsResult, r: HeadsResult): string {
  const base = `${r.heads} head${r.heads > 1 ? 's' : ''}`;
  const same = res.runs.filter((x) => x.heads === r.heads);
  if (same.length < 2) return base;
  const parts = [`seed ${r.seed}`];
  if (new Set(res.runs.map((x) => x.batch)).size > 1) parts.push(`batch ${r.batch}`);
  if (new Set(res.runs.map((x) => x.biasCorrection)).size > 1) parts.push(r.biasCorrection ? 'bias-corrected Adam' : 'MLX Adam');
  return `${base} (${parts.join(', ')})`;
}

/** Several results (e.g. one process per head count) as one; their evaluations must match. */
export function mergeResults(parts: ThreeMoonsResult[]): ThreeMoonsResult {
  const first = parts[0];
  for (const p of parts) {
    if (p.options.contexts.join() !== first.options.contexts.join() || p.options.steps !== first.options.steps || p.options.starts !== first.options.starts) {
      throw new Error('three-moons --merge: the results were evaluated on different context lengths, steps or starts; rerun them with the same options');
    }
  }
  return { ...first, options: { ...first.options, heads: parts.flatMap((p) => p.options.heads) }, runs: parts.flatMap((p) => p.runs.map((r) => ({ ...r, seed: r.seed ?? p.options.seed, batch: r.batch ?? p.options.batch, iters: r.iters ?? p.options.iters,
    // results written before the option existed were trained with bias correction
    biasCorrection: r.biasCorrection ?? p.options.biasCorrection ?? true }))) };
}

export function errorPlotSvg(res: ThreeMoonsResult): string {
  const ctx = res.options.contexts;
  const top = Math.max(0.05, ...res.runs.flatMap((r) => r.errors)) * 1.05;
  const marks = [...res.periodsSteps.moons, res.periodsSteps.common].map((p, i, all) => ({
    name: i === all.length - 1 ? `common period ${p.toFixed(0)}` : `moon period ${p.toFixed(0)}`,
    points: [[p, 0], [p, top]] as [number, number][], color: i === all.length - 1 ? '#555555' : '#aaaaaa', dashed: true,
  }));
  return linePlotSvg({
    title: `Three moons, held-out [${res.heldOut.join(', ')}]: error of ${res.options.steps} free-running steps`,
    xLabel: 'context length (true steps seen)', yLabel: 'mean |prediction − truth|',
    series: [...res.runs.map((r, i) => ({ name: runLabel(res, r), points: ctx.map((c, j) => [c, r.errors[j]] as [number, number]), color: COLORS[i % COLORS.length] })), ...marks],
    yRange: [0, top], xRange: [0, Math.max(...ctx)], width: 760, height: 440,
  });
}

export function lossPlotSvg(res: ThreeMoonsResult): string {
  return linePlotSvg({
    title: 'Three moons: training loss (clipped MSE)', xLabel: 'iteration', yLabel: 'loss', logY: true,
    series: res.runs.map((r, i) => ({ name: runLabel(res, r), points: r.losses.map((l, s) => [s + 1, l] as [number, number]), color: COLORS[i % COLORS.length] })),
  });
}

/** Heat maps of the 2×2-block norms |z| of W_k, W_v, W_o, one row of panels per trained model. */
export function weightsSvg(res: ThreeMoonsResult): string {
  const cell = 46, gap = 40, left = 120, topPad = 56, rowH = 3 * cell + 64;
  const width = left + 3 * (3 * cell + gap) + 20, height = topPad + res.runs.length * rowH;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">Learned block norms |z| = √(a²+b²) per 2×2 block (rows: output plane / head; columns: input plane / head)</text>`];
  res.runs.forEach((r, ri) => {
    const y0 = topPad + ri * rowH;
    parts.push(`<text x="10" y="${y0 + 1.5 * cell + 16}">${runLabel(res, r)}</text>`);
    (['k', 'v', 'o'] as const).forEach((name, pi) => {
      const m = r.weights[name], max = Math.max(1e-12, ...m.flat());
      const x0 = left + pi * (3 * cell + gap);
      const label = { k: 'W_k (row = head/key plane, col = moon)', v: 'W_v (row = head/value plane, col = moon)', o: 'W_o (row = moon, col = head/plane)' }[name];
      parts.push(`<text x="${x0}" y="${y0 + 10}" font-size="10">${label}</text>`);
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 3; j++) {
          const f = m[i][j] / max, shade = Math.round(255 * (1 - f));
          parts.push(`<rect x="${x0 + j * cell}" y="${y0 + 16 + i * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#888"/>`);
          parts.push(`<text x="${x0 + j * cell + cell / 2}" y="${y0 + 16 + i * cell + cell / 2 + 4}" text-anchor="middle" fill="${f > 0.55 ? 'white' : 'black'}">${m[i][j].toFixed(2)}</text>`);
        }
      }
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Markdown table of the block norms and the head → moon assignment. */
export function weightsMarkdown(res: ThreeMoonsResult): string {
  const lines: string[] = [];
  for (const r of res.runs) {
    lines.push(`${runLabel(res, r)} — block norms |z| (rows 0–2 = output planes, i.e. heads for W_k/W_v when H = 3; columns = moons p = 1, 2, 3 for W_k/W_v):`, '');
    lines.push('| row | W_k | W_v | W_o |', '|---|---|---|---|');
    for (let i = 0; i < 3; i++) {
      const f = (m: number[][]) => m[i].map((x) => x.toFixed(2)).join(' · ');
      lines.push(`| ${i} | ${f(r.weights.k)} | ${f(r.weights.v)} | ${f(r.weights.o)} |`);
    }
    const s = r.specialisation;
    if (s) {
      lines.push('', '| head | key moon (share) | value moon (share) | writes moon (share) |', '|---|---|---|---|');
      for (let h = 0; h < 3; h++) {
        lines.push(`| ${h} | ${s.keyMoon[h]} (${(100 * s.keyShare[h]).toFixed(0)}%) | ${s.valueMoon[h]} (${(100 * s.valueShare[h]).toFixed(0)}%) | ${s.outMoon[h]} (${(100 * s.outShare[h]).toFixed(0)}%) |`);
      }
      lines.push('', `Disentangled (each head's key, value and output on one moon, all moons different): **${s.disentangled ? 'yes' : 'no'}**`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** Markdown summary of the error at a few context ranges. */
export function errorMarkdown(res: ThreeMoonsResult): string {
  const ranges: [number, number][] = [[1, 40], [50, 85], [95, 130], [140, 260], [275, 400], [400, 776]];
  const head = `| model | ${ranges.map(([a, b]) => `ctx ${a}–${b - 1}`).join(' | ')} | final train loss |`;
  const rows = res.runs.map((r) => `| ${runLabel(res, r)} | ${ranges.map(([a, b]) => meanErrorIn(r, res.options.contexts, a, b).toFixed(4)).join(' | ')} | ${r.losses[r.losses.length - 1].toExponential(2)} |`);
  return [head, `|---|${ranges.map(() => '---|').join('')}---|`, ...rows].join('\n');
}

export function writeOutputs(res: ThreeMoonsResult, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['three-moons.json', JSON.stringify(res, null, 1)],
    ['three-moons-error.svg', errorPlotSvg(res)],
    ['three-moons-weights.svg', weightsSvg(res)],
    ['three-moons-loss.svg', lossPlotSvg(res)],
  ];
  return files.map(([name, text]) => { const p = join(dir, name); writeFileSync(p, text); return p; });
}

const FLAGS: FlagSpecs = {
  quick: { type: 'boolean', description: 'a short run (200 iterations, batch 8, 8 starts) to try the pipeline' },
  heads: { type: 'integer', list: true, min: 1, placeholder: 'LIST', description: 'head counts to train, divisors of 6 (default 1,3)' },
  iters: { type: 'integer', min: 1, placeholder: 'N', description: 'training iterations (default 500)' },
  batch: { type: 'integer', min: 1, placeholder: 'N', description: 'sequences per iteration (default 64)' },
  starts: { type: 'integer', min: 1, placeholder: 'N', description: 'held-out start positions averaged (default 512)' },
  adam: { type: 'string', choices: ['mlx', 'pytorch'], placeholder: 'KIND', description: "mlx: no bias correction, the reference's optimiser (default); pytorch: bias-corrected" },
  seed: { type: 'integer', min: 0, placeholder: 'N', description: 'seed (default 100)' },
  out: { type: 'string', default: 'docs/results/three-moons', placeholder: 'DIR', description: 'output folder' },
  merge: { type: 'string', list: true, placeholder: 'FILES', description: 'merge these three-moons.json results into one figure instead of training' },
};

function options(v: FlagValues): ThreeMoonsOptions {
  const o = v.quick ? quickOptions() : fullOptions();
  if (v.heads !== undefined) {
    o.heads = v.heads as number[];
    if (o.heads.some((h) => 6 % h !== 0)) throw new UsageError(`--heads takes divisors of 6 (e.g. 1,3), got ${o.heads.join(',')}`);
  }
  for (const k of ['iters', 'batch', 'starts', 'seed'] as const) if (v[k] !== undefined) o[k] = v[k] as number;
  if (v.adam !== undefined) o.biasCorrection = v.adam === 'pytorch';
  return o;
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Three moons (PAPERS §3): trains 1- and 3-head contextual memories and writes the error, weight and loss\nfigures and three-moons.json to --out (docs/THREE_MOONS.md).');
  if (!v) return 0;
  const o = options(v), out = v.out as string, merge = (v.merge as string[] | undefined) ?? [];
  o.log = (line) => console.log(line);
  let res: ThreeMoonsResult;
  if (merge.length) {
    res = mergeResults(merge.map((f) => {
      try { return JSON.parse(readFileSync(f, 'utf8')) as ThreeMoonsResult; } catch (e) {
        throw new CliError(`cannot read --merge ${f}: ${(e as Error).message}`, 'give three-moons.json files written by earlier runs');
      }
    }));
  } else {
    console.log(`three moons: heads ${o.heads.join(',')}, ${o.iters} iterations, batch ${o.batch}, T ${o.T}, ${o.biasCorrection ? 'bias-corrected' : 'MLX (uncorrected)'} AdamW, ${o.starts} eval starts, ${o.contexts.length} context lengths`);
    res = runThreeMoons(o);
  }
  for (const p of writeOutputs(res, out)) console.log(`wrote ${p}`);
  console.log('\n' + errorMarkdown(res) + '\n\n' + weightsMarkdown(res));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
