// Memory Mosaics whose contextual memory is read by LSH sampling (MagicPIG) and by the other attention
// backends, next to a transformer read the same way (docs/EXPERIMENTS.md, experiment e). For every
// backend: the fraction of keys each generated token reads (keys-meter.ts) against
//   1. language-modelling loss: the shipped models/sotu-mosaic-d128-l4 (experiment c) and
//      models/sotu-llama-d128-l1 (experiment b), one tokenizer, trained at context 128, State of the Union validation
//      windows of `window` tokens (128, and 512 where only the mosaic is inside what it was trained
//      for, having no positions): the first `prompt` are the prompt (read exactly, as every backend reads a prompt), the
//      rest are fed one token at a time as generated tokens, and their next-token loss is averaged
//      (mostly prompt: MagicPIG hashes the prompt and keeps generated tokens dense until 256 of them);
//   2. recall: the induction-copy toy (Tessera's own, experiment a): a 16-token segment of distinct
//      tokens repeated once in random filler, the model trained at context 64 and run here at
//      `recallLengths` (a mosaic has no positions); the prompt ends at the first token of the repeat,
//      the 15 scored tokens are generated one at a time (teacher-forced), scored by argmax and loss.
// Run: node dist/src/experiments/mosaic-sparse.js [--quick] [--part lm|recall] [--docs DIR] [--runs DIR]
// Writes DOCS/results/mosaic-sparse.{md,json}, mosaic-sparse-loss-W.svg, mosaic-sparse-recall.svg; the
// recall mosaic is trained into RUNS/induction-mosaic-l1 when a recall row is to be measured and that
// folder has no model. Each measured row is kept in RUNS/rows/ and reused, so an interrupted run
// continues, and the two parts can run as two processes (--part) before one plain run writes the report.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { attentionBackend } from '../attention/create.js';
import { parseAttentionSpec } from '../attention/spec.js';
import { KeysMeter } from '../eval/keys-meter.js';
import { loadModel, loadTokenizer } from '../models/load.js';
import type { LanguageModel } from '../models/types.js';
import { isMosaicFolder, loadMosaic } from '../mosaic/load.js';
import { loadCorpus } from '../data/corpora.js';
import { tokenizeCached } from '../data/batches.js';
import { taskExample } from '../training/train-data.js';
import { parseTrainConfig } from '../training/train-config.js';
import { runTraining } from '../training/train-run.js';
import { deriveSeed } from '../data/rng.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { experimentArgs, fmt, markdownTable, writeFiles, REPO_ROOT } from './report.js';

export interface SparsePlan {
  /** Backend specs; "dense" first (the reference every row is compared with). */
  specs: string[];
  lmModels: { name: string; path: string }[];
  /** Window and prompt lengths, and how many windows each. */
  lm: { window: number; prompt: number; windows: number }[];
  recallLengths: number[]; recallSequences: number;
  /** Training config of the recall mosaic (steps overridable for --quick). */
  recallConfig: string; recallSteps?: number;
}

const MAGICPIG = (K: number, L: number) => `magicpig:K=${K},L=${L},sinks=4,window=16,dense=none`;

export const FULL_PLAN: SparsePlan = {
  specs: ['dense', 'topk:k=4,sinks=4,window=16,dense=none', 'topk:k=16,sinks=4,window=16,dense=none', 'topk:k=64,sinks=4,window=16,dense=none',
    'streaming:sinks=4,window=16', 'streaming:sinks=4,window=64', 'streaming:sinks=4,window=256',
    MAGICPIG(12, 60), MAGICPIG(10, 150), MAGICPIG(8, 100), MAGICPIG(6, 50), MAGICPIG(4, 30)],
  lmModels: [{ name: 'mosaic L4', path: 'models/sotu-mosaic-d128-l4' }, { name: 'transformer L1', path: 'models/sotu-llama-d128-l1' }],
  lm: [{ window: 128, prompt: 96, windows: 48 }, { window: 512, prompt: 384, windows: 12 }],
  recallLengths: [256, 1024], recallSequences: 40,
  recallConfig: 'configs/induction-mosaic-l1.json',
};

export const QUICK_PLAN: SparsePlan = {
  ...FULL_PLAN, specs: ['dense', 'topk:k=4,sinks=1,window=4,dense=none', 'streaming:sinks=1,window=8', 'magicpig:K=6,L=20,sinks=1,window=4,dense=none'],
  lm: [{ window: 96, prompt: 32, windows: 1 }], recallLengths: [96], recallSequences: 2, recallSteps: 2,
};

export interface SparseRow {
  part: 'lm' | 'recall';
  model: string;
  spec: string;
  /** Context length of the measurement (window or sequence length). */
  length: number;
  /** Mean keys read per generated token / keys in its context, over the sparse layers (1 for dense). */
  keysFraction: number;
  loss: number;
  /** Recall only: argmax accuracy on the scored tokens. */
  accuracy?: number;
  /** Generated (scored) tokens. */
  tokens: number;
  seconds: number;
  /** 1-minute load average of the machine when the row started and ended. */
  load: [number, number];
}

/** A row measured earlier (RUNS/rows/KEY.json), or measure() now and keep it. */
async function kept(runsDir: string | undefined, key: string, measure: () => Promise<SparseRow>, log: (s: string) => void): Promise<SparseRow> {
  const path = runsDir === undefined ? undefined : join(runsDir, 'rows', `${key.replace(/[^A-Za-z0-9.=,+-]+/g, '_')}.json`);
  if (path && existsSync(path)) { log(`reusing ${path}`); return JSON.parse(readFileSync(path, 'utf8')) as SparseRow; }
  const start = loadAverage();
  const row = { ...await measure(), load: [start, loadAverage()] as [number, number] };
  if (path) { mkdirSync(join(runsDir!, 'rows'), { recursive: true }); writeFileSync(path, JSON.stringify(row) + '\n'); }
  return row;
}

async function load(path: string, spec: string, meter: KeysMeter, contextLength: number): Promise<LanguageModel> {
  const backend = meter.wrap(attentionBackend(parseAttentionSpec(spec)));
  if (isMosaicFolder(path)) return (await loadMosaic(path, { tokenizer: false, contextLength, attention: backend })).model;
  // f32 rows, as the mosaic's memory holds them (and as the published table was measured)
  return (await loadModel(path, { contextLength, attention: backend, threads: 1, cacheDType: 'f32' })).model;
}

/** −log softmax(logits)[target]. */
function nll(logits: Float32Array, target: number): number {
  let m = -Infinity;
  for (let j = 0; j < logits.length; j++) if (logits[j] > m) m = logits[j];
  let z = 0;
  for (let j = 0; j < logits.length; j++) z += Math.exp(logits[j] - m);
  return Math.log(z) + m - logits[target];
}

function argmax(x: Float32Array): number {
  let b = 0;
  for (let j = 1; j < x.length; j++) if (x[j] > x[b]) b = j;
  return b;
}

/** Feeds `prompt` as a prefill, then each of `gen` as a generated token; calls score(logits before gen[i], i). */
function teacherForced(model: LanguageModel, prompt: ArrayLike<number>, gen: ArrayLike<number>, score: (logits: Float32Array, i: number) => void): void {
  const cache = model.createCache();
  try {
    let logits = model.forward(prompt, cache, { phase: 'prefill' });
    for (let i = 0; i < gen.length; i++) {
      score(logits, i);
      if (i + 1 < gen.length) logits = model.forward([gen[i]], cache, { phase: 'decode' });
    }
  } finally { cache.release(); }
}

function keysOf(meter: KeysMeter): number {
  const f = meter.stats().fraction;
  return Number.isNaN(f) ? 1 : f;                                     // dense: no sparse layer, every key
}

export async function lmRows(plan: SparsePlan, root: string, log: (s: string) => void, runsDir?: string): Promise<SparseRow[]> {
  const first = join(root, plan.lmModels[0].path);
  const tokenizer = loadTokenizer(first);
  const sep = tokenizer.eosTokenIds[0];
  const tokens = tokenizeCached({
    corpusName: 'sotu-validation', tokenizerJson: readFileSync(join(first, 'tokenizer.json'), 'utf8'),
    documents: loadCorpus('sotu').validation, encode: (s) => tokenizer.encode(s, { addSpecialTokens: false }), eotId: sep,
  });
  const rows: SparseRow[] = [];
  for (const { window: W, prompt: P, windows: asked } of plan.lm) for (const m of plan.lmModels) {
    const windows = Math.min(asked, Math.floor((tokens.length - 1) / W));
    // The weights' hash is in the key: a re-shipped model under the same path is measured again.
    const weights = createHash('sha256').update(readFileSync(join(root, m.path, 'model.safetensors'))).digest('hex').slice(0, 12);
    for (const spec of plan.specs) rows.push(await kept(runsDir, `lm-${m.path}-${weights}-${W}-${P}-${windows}-${spec}`, async () => {
      const t0 = performance.now(), meter = new KeysMeter(parseAttentionSpec(spec));
      const model = await load(join(root, m.path), spec, meter, W + 1);
      let sum = 0, n = 0;
      for (let w = 0; w < windows; w++) {
        const s = w * W;
        // targets tokens[s+P .. s+W]: the prompt's last logits predict the first generated token
        teacherForced(model, tokens.subarray(s, s + P), tokens.subarray(s + P, s + W + 1), (logits, i) => { sum += nll(logits, tokens[s + P + i]); n++; });
      }
      model.dispose();
      log(`lm ${m.name} ${spec}: loss ${fmt(sum / n)} keys ${fmt(100 * keysOf(meter), 2)}%`);
      return { part: 'lm', model: m.name, spec, length: W, keysFraction: keysOf(meter), loss: sum / n, tokens: n, seconds: (performance.now() - t0) / 1000 } as SparseRow;
    }, log));
  }
  return rows;
}

/** The recall mosaic's model folder, trained first when missing. */
async function recallModel(plan: SparsePlan, root: string, runsDir: string, log: (s: string) => void): Promise<string> {
  const out = join(runsDir, 'induction-mosaic-l1');
  const dir = join(out, 'model');
  if (existsSync(join(dir, 'config.json'))) return dir;
  const raw = JSON.parse(readFileSync(join(root, plan.recallConfig), 'utf8')) as Record<string, unknown>;
  const cfg = parseTrainConfig({ ...raw, out, ...(plan.recallSteps ? { steps: plan.recallSteps, evalEvery: plan.recallSteps } : {}) }, plan.recallConfig);
  log(`training the recall mosaic (${plan.recallConfig}) into ${out}`);
  await runTraining(cfg, { progress: false, log, overwrite: true });
  return dir;
}

export async function recallRows(plan: SparsePlan, root: string, runsDir: string, log: (s: string) => void): Promise<SparseRow[]> {
  // Trained (or found) only when a row has to be measured: a folder of kept rows needs no model.
  let dir: string | undefined;
  const raw = JSON.parse(readFileSync(join(root, plan.recallConfig), 'utf8')) as { data: { task: 'induction'; vocabSize: number; segment?: number } };
  const rows: SparseRow[] = [];
  for (const L of plan.recallLengths) {
    // sequences no training batch drew: a seed stream of their own
    const tasks = Array.from({ length: plan.recallSequences }, (_, i) => taskExample(raw.data, L, deriveSeed(7, 0x5ca1e, L, i)));
    for (const spec of plan.specs) rows.push(await kept(runsDir, `recall-${L}-${plan.recallSequences}-${spec}`, async () => {
      const t0 = performance.now(), meter = new KeysMeter(parseAttentionSpec(spec));
      dir ??= await recallModel(plan, root, runsDir, log);
      const model = await load(dir, spec, meter, L);
      let loss = 0, right = 0, n = 0;
      for (const task of tasks) {
        const first = task.answerPositions[0];
        teacherForced(model, task.tokens.subarray(0, first), task.target, (logits, i) => {
          loss += nll(logits, task.target[i]); if (argmax(logits) === task.target[i]) right++; n++;
        });
      }
      model.dispose();
      log(`recall ${L} ${spec}: accuracy ${fmt(100 * right / n, 1)}% keys ${fmt(100 * keysOf(meter), 2)}%`);
      return { part: 'recall', model: 'mosaic L1 (induction, trained at 64)', spec, length: L, keysFraction: keysOf(meter), loss: loss / n, accuracy: right / n, tokens: n, seconds: (performance.now() - t0) / 1000 } as SparseRow;
    }, log));
  }
  return rows;
}

const kindOf = (spec: string) => spec.split(':')[0];
const COLORS: Record<string, string> = { dense: '#000000', topk: '#1f77b4', streaming: '#2ca02c', magicpig: '#d62728', quest: '#9467bd', 'oracle-sampling': '#8c564b' };

function plot(rows: SparseRow[], y: (r: SparseRow) => number, title: string, yLabel: string, group: (r: SparseRow) => string): string {
  const groups = new Map<string, SparseRow[]>();
  for (const r of rows) { const g = `${group(r)} · ${kindOf(r.spec)}`; groups.set(g, [...(groups.get(g) ?? []), r]); }
  const names = [...new Set(rows.map(group))];
  const series = [...groups].map(([name, rs]) => ({
    name, color: COLORS[kindOf(rs[0].spec)], dashed: names.indexOf(group(rs[0])) > 0,
    points: rs.map((r) => [100 * r.keysFraction, y(r)] as [number, number]).sort((a, b) => a[0] - b[0]),
  }));
  return linePlotSvg({ title, xLabel: 'keys read per generated token (%)', yLabel, series, width: 760, height: 440 });
}

export function report(plan: SparsePlan, rows: SparseRow[], command: string): { md: string; files: Record<string, string> } {
  const loads = rows.flatMap((r) => r.load ?? []).filter(Number.isFinite);
  const loadRange = loads.length ? `${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)}` : 'not recorded';
  const lm = rows.filter((r) => r.part === 'lm'), rc = rows.filter((r) => r.part === 'recall');
  const lmModels = [...new Set(lm.map((r) => r.model))];
  const lmTable = (W: number) => markdownTable(['backend', ...lmModels.flatMap((m) => [`${m}: keys read`, `${m}: loss`, `${m}: Δ vs dense`])],
    plan.specs.map((spec) => [spec, ...lmModels.flatMap((m) => {
      const r = lm.find((x) => x.length === W && x.model === m && x.spec === spec), d = lm.find((x) => x.length === W && x.model === m && x.spec === 'dense');
      return r && d ? [`${fmt(100 * r.keysFraction, 1)}%`, fmt(r.loss), `${r.loss - d.loss >= 0 ? '+' : ''}${fmt(r.loss - d.loss)}`] : ['–', '–', '–'];
    })]));
  const lmSections = plan.lm.map(({ window: W, prompt: P, windows }) => `## Language modelling, ${W}-token windows (SOTU validation, ${lm.find((r) => r.length === W)?.tokens ?? 0} generated tokens per row: ${windows} windows, prompt ${P})

${lmTable(W)}`).join('\n');
  const lengths = [...new Set(rc.map((r) => r.length))];
  const rcTable = markdownTable(['backend', ...lengths.flatMap((L) => [`${L}: keys read`, `${L}: accuracy`, `${L}: answer loss`])],
    plan.specs.map((spec) => [spec, ...lengths.flatMap((L) => {
      const r = rc.find((x) => x.length === L && x.spec === spec);
      return r ? [`${fmt(100 * r.keysFraction, 1)}%`, `${fmt(100 * r.accuracy!, 1)}%`, fmt(r.loss)] : ['–', '–', '–'];
    })]));
  const md = `# Experiment e: the contextual memory read by the attention backends

Command: \`${command}\` (trained weights, 1 thread; load average ${loadRange} at the starts and ends of the rows).
Keys read: per generated token, keys the backend read / keys in its context, averaged over generated
tokens and sparse layers (prompt tokens are read exactly by every backend and not counted).

${lmSections}
## Recall (induction copy, ${plan.recallSequences} held-out sequences per length, ${rc[0]?.tokens ?? 0} scored tokens)

${rcTable}`;
  const files = {
    'results/mosaic-sparse.md': md,
    'results/mosaic-sparse.json': JSON.stringify({ plan, rows, command }, null, 1) + '\n',
    ...Object.fromEntries(plan.lm.map(({ window: W }) => [`results/mosaic-sparse-loss-${W}.svg`,
      plot(lm.filter((r) => r.length === W), (r) => r.loss, `Loss vs keys read, SOTU validation, ${W}-token windows (dashed: transformer)`, 'next-token loss (nats)', (r) => r.model)])),
    'results/mosaic-sparse-recall.svg': plot(rc, (r) => 100 * r.accuracy!, 'Induction-copy accuracy vs keys read (mosaic L1)', 'accuracy (%)', (r) => `length ${r.length}`),
  };
  return { md, files };
}

function loadAverage(): number {
  try { return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]); } catch { return NaN; }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2), at = argv.indexOf('--part'), part = at >= 0 ? argv[at + 1] : undefined;
  if (at >= 0 && part !== 'lm' && part !== 'recall') throw new Error(`mosaic-sparse: --part takes lm or recall, got ${part}`);
  const args = experimentArgs(at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 2)] : argv, 'mosaic-sparse', REPO_ROOT);
  const plan = args.quick ? QUICK_PLAN : FULL_PLAN;
  const log = (s: string) => console.log(s);
  const rows = [...part !== 'lm' ? await recallRows(plan, REPO_ROOT, args.runsDir, log) : [],
    ...part !== 'recall' ? await lmRows(plan, REPO_ROOT, log, args.runsDir) : []];
  if (part !== undefined) process.exit(0);                             // rows kept; a plain run writes the report
  const { md, files } = report(plan, rows, `node dist/src/experiments/mosaic-sparse.js${args.quick ? ' --quick' : ''}`);
  for (const p of writeFiles(args.docsDir, files)) console.log(`wrote ${p}`);
  process.stdout.write(md);
}
