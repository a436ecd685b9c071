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
//      tokens repeated once in random filler, read at `recallLengths` by the 1-layer mosaic (trained at
//      context 64; it has no positions) and by a 2-layer transformer trained to read that far
//      (`recallModels`); the prompt ends at the first token of the repeat, the 15 scored tokens are
//      generated one at a time (teacher-forced), scored by argmax and loss.
// Run: node dist/src/experiments/mosaic-sparse.js --help
// Writes DOCS/results/mosaic-sparse.{md,json}, mosaic-sparse-loss-W.svg, mosaic-sparse-recall.svg; a
// recall model is trained into RUNS/<config name> (each of its configs in order) when a recall row is to
// be measured and that folder has no model. Each measured row is kept in RUNS/rows/ and reused, so an
// interrupted run continues, and the two parts can run as two processes (--part) before one plain run
// writes the report; --reuse takes the rows of an earlier report (its JSON) instead of measuring them again.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
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
import { EXPERIMENT_FLAGS, experimentDirs, fmt, markdownTable, writeFiles, REPO_ROOT } from './report.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import type { FlagSpecs } from '../cli/args.js';

export interface SparsePlan {
  /** Backend specs; "dense" first (the reference every row is compared with). */
  specs: string[];
  lmModels: { name: string; path: string }[];
  /** Window and prompt lengths, and how many windows each. */
  lm: { window: number; prompt: number; windows: number }[];
  recallLengths: number[]; recallSequences: number;
  /** The models read on the recall task (all trained on the same task data); steps overridable for --quick. */
  recallModels: RecallModel[]; recallSteps?: number;
}

export interface RecallModel {
  /** The rows' model label. */
  name: string;
  /** Training configs run in order into RUNS/<file name>, each from the previous one's model (its
   *  `init`); the last one's model is read. */
  configs: string[];
}

/** The transformer read on the recall task: experiment a's 2-layer control (its four-stage curriculum),
 *  then trained further at context 256 (it has RoPE positions: trained at 64 only, its dense read fails at
 *  256 and 1,024 tokens, which would say nothing about sparse reads). */
const TRANSFORMER_RECALL_NAME = 'transformer L2 (induction, trained at 64, then 256)';
const TRANSFORMER_RECALL_CONFIGS = [1, 2, 3, 4].map((k) => `configs/induction-curriculum-llama-l2-s${k}.json`).concat('configs/induction-llama-l2-ctx256.json');
const MAGICPIG = (K: number, L: number) => `magicpig:K=${K},L=${L},sinks=4,window=16,dense=none`;

export const FULL_PLAN: SparsePlan = {
  specs: ['dense', 'topk:k=4,sinks=4,window=16,dense=none', 'topk:k=16,sinks=4,window=16,dense=none', 'topk:k=64,sinks=4,window=16,dense=none',
    'streaming:sinks=4,window=16', 'streaming:sinks=4,window=64', 'streaming:sinks=4,window=256',
    MAGICPIG(12, 60), MAGICPIG(10, 150), MAGICPIG(8, 100), MAGICPIG(6, 50), MAGICPIG(4, 30)],
  lmModels: [{ name: 'mosaic L4', path: 'models/sotu-mosaic-d128-l4' }, { name: 'transformer L1', path: 'models/sotu-llama-d128-l1' }],
  lm: [{ window: 128, prompt: 96, windows: 48 }, { window: 512, prompt: 384, windows: 12 }],
  recallLengths: [256, 1024], recallSequences: 40,
  recallModels: [
    { name: 'mosaic L1 (induction, trained at 64)', configs: ['configs/induction-mosaic-l1.json'] },
    { name: TRANSFORMER_RECALL_NAME, configs: TRANSFORMER_RECALL_CONFIGS },
  ],
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
  /** Language modelling: the first 12 hex digits of the SHA-256 of the model's weights file. */
  weights?: string;
}

/** A row measured earlier (RUNS/rows/KEY.json, else `earlier`: the same row of an earlier report),
 *  or measure() now; kept in RUNS/rows/ either way. */
async function kept(runsDir: string | undefined, key: string, measure: () => Promise<SparseRow>, log: (s: string) => void, earlier?: SparseRow): Promise<SparseRow> {
  const path = runsDir === undefined ? undefined : join(runsDir, 'rows', `${key.replace(/[^A-Za-z0-9.=,+-]+/g, '_')}.json`);
  if (path && existsSync(path)) { log(`reusing ${path}`); return JSON.parse(readFileSync(path, 'utf8')) as SparseRow; }
  let row: SparseRow;
  if (earlier) { log(`reusing the earlier report's row ${key}`); row = earlier; } else {
    const start = loadAverage();
    row = { ...await measure(), load: [start, loadAverage()] as [number, number] };
  }
  if (path) { mkdirSync(join(runsDir!, 'rows'), { recursive: true }); writeFileSync(path, JSON.stringify(row) + '\n'); }
  return row;
}

/** The rows of an earlier report (its results JSON) that `plan` would measure the same way: recall
 *  rows read on as many sequences, language-modelling rows on the same windows and prompt, of the same
 *  weights where the row records them (rows of reports before the hash was recorded are taken as they are). */
export function earlierRows(file: string, plan: SparsePlan): SparseRow[] {
  const old = JSON.parse(readFileSync(file, 'utf8')) as { plan: SparsePlan; rows: SparseRow[] };
  return old.rows.filter((r) => r.part === 'recall' ? old.plan.recallSequences === plan.recallSequences
    : old.plan.lm.some((o) => o.window === r.length && plan.lm.some((w) => w.window === o.window && w.prompt === o.prompt && w.windows === o.windows)));
}

async function load(path: string, spec: string, meter: KeysMeter, contextLength: number): Promise<LanguageModel> {
  const backend = meter.wrap(attentionBackend(parseAttentionSpec(spec)));
  if (isMosaicFolder(path)) return (await loadMosaic(path, { tokenizer: false, contextLength, attention: backend })).model;
  // f32 rows, as the mosaic's memory holds them (and as the published table was measured)
  return (await loadModel(path, { contextLength, attention: backend, threads: 1, cacheDType: 'f32', tokenizer: false })).model;
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

export async function lmRows(plan: SparsePlan, root: string, log: (s: string) => void, runsDir?: string, reuse?: SparseRow[]): Promise<SparseRow[]> {
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
      return { part: 'lm', model: m.name, spec, length: W, keysFraction: keysOf(meter), loss: sum / n, tokens: n, seconds: (performance.now() - t0) / 1000, weights } as SparseRow;
    }, log, reuse?.find((r) => r.part === 'lm' && r.model === m.name && r.spec === spec && r.length === W && (r.weights ?? weights) === weights)));
  }
  return rows;
}

const configName = (path: string) => basename(path, '.json');

/** A recall model's folder, trained first (each of its configs in order) when missing. */
async function recallModel(plan: SparsePlan, m: RecallModel, root: string, runsDir: string, log: (s: string) => void): Promise<string> {
  let init: string | undefined;
  for (const path of m.configs) {
    const out = join(runsDir, configName(path)), dir = join(out, 'model');
    if (!existsSync(join(dir, 'config.json'))) {
      const raw = JSON.parse(readFileSync(join(root, path), 'utf8')) as Record<string, unknown>;
      const cfg = parseTrainConfig({ ...raw, out, ...(init ? { init } : {}),
        ...(plan.recallSteps ? { steps: plan.recallSteps, evalEvery: plan.recallSteps, warmup: 1 } : {}) }, path);
      log(`training the recall model ${m.name} (${path}${init ? ` from ${init}` : ''}) into ${out}`);
      await runTraining(cfg, { progress: false, log, overwrite: true });
    }
    init = dir;
  }
  return init!;
}

/** The task data every recall model was trained on (one held-out set is read by all of them). */
function recallData(plan: SparsePlan, root: string): { task: 'induction'; vocabSize: number; segment?: number } {
  const data = plan.recallModels.map((m) => (JSON.parse(readFileSync(join(root, m.configs.at(-1)!), 'utf8')) as { data: { task: 'induction'; vocabSize: number; segment?: number } }).data);
  const same = (x: typeof data[0]) => x.task === data[0].task && x.vocabSize === data[0].vocabSize && x.segment === data[0].segment;
  for (const d of data) if (!same(d)) throw new Error(`mosaic-sparse: the recall models were trained on different tasks: ${JSON.stringify(d)} and ${JSON.stringify(data[0])}`);
  return data[0];
}

export async function recallRows(plan: SparsePlan, root: string, runsDir: string, log: (s: string) => void, reuse?: SparseRow[]): Promise<SparseRow[]> {
  const data = recallData(plan, root);
  const rows: SparseRow[] = [];
  for (const m of plan.recallModels) {
    // Trained (or found) only when a row has to be measured: a folder of kept rows needs no model.
    let dir: string | undefined;
    for (const L of plan.recallLengths) {
      // sequences no training batch drew: a seed stream of their own, the same for every model
      const tasks = Array.from({ length: plan.recallSequences }, (_, i) => taskExample(data, L, deriveSeed(7, 0x5ca1e, L, i)));
      for (const spec of plan.specs) rows.push(await kept(runsDir, `recall-${configName(m.configs.at(-1)!)}-${L}-${plan.recallSequences}-${spec}`, async () => {
        const t0 = performance.now(), meter = new KeysMeter(parseAttentionSpec(spec));
        dir ??= await recallModel(plan, m, root, runsDir, log);
        const model = await load(dir, spec, meter, L);
        let loss = 0, right = 0, n = 0;
        for (const task of tasks) {
          const first = task.answerPositions[0];
          teacherForced(model, task.tokens.subarray(0, first), task.target, (logits, i) => {
            loss += nll(logits, task.target[i]); if (argmax(logits) === task.target[i]) right++; n++;
          });
        }
        model.dispose();
        log(`recall ${m.name} ${L} ${spec}: accuracy ${fmt(100 * right / n, 1)}% keys ${fmt(100 * keysOf(meter), 2)}%`);
        return { part: 'recall', model: m.name, spec, length: L, keysFraction: keysOf(meter), loss: loss / n, accuracy: right / n, tokens: n, seconds: (performance.now() - t0) / 1000 } as SparseRow;
      }, log, reuse?.find((r) => r.part === 'recall' && r.model === m.name && r.spec === spec && r.length === L)));
    }
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
  const lengths = [...new Set(rc.map((r) => r.length))], rcModels = [...new Set(rc.map((r) => r.model))];
  const rcTable = (m: string) => markdownTable(['backend', ...lengths.flatMap((L) => [`${L}: keys read`, `${L}: accuracy`, `${L}: answer loss`])],
    plan.specs.map((spec) => [spec, ...lengths.flatMap((L) => {
      const r = rc.find((x) => x.model === m && x.length === L && x.spec === spec);
      return r ? [`${fmt(100 * r.keysFraction, 1)}%`, `${fmt(100 * r.accuracy!, 1)}%`, fmt(r.loss)] : ['–', '–', '–'];
    })]));
  const rcSections = rcModels.map((m) => `## Recall, ${m} (induction copy, ${plan.recallSequences} held-out sequences per length, ${rc.find((r) => r.model === m)?.tokens ?? 0} scored tokens)

${rcTable(m)}`).join('\n');
  const md = `# Experiment e: the contextual memory read by the attention backends

Command: \`${command}\` (trained weights, 1 thread; load average ${loadRange} at the starts and ends of the rows).
Keys read: per generated token, keys the backend read / keys in its context, averaged over generated
tokens and sparse layers (prompt tokens are read exactly by every backend and not counted).

${lmSections}
${rcSections}`;
  const files = {
    'results/mosaic-sparse.md': md,
    'results/mosaic-sparse.json': JSON.stringify({ plan, rows, command }, null, 1) + '\n',
    ...Object.fromEntries(plan.lm.map(({ window: W }) => [`results/mosaic-sparse-loss-${W}.svg`,
      plot(lm.filter((r) => r.length === W), (r) => r.loss, `Loss vs keys read, SOTU validation, ${W}-token windows (dashed: transformer)`, 'next-token loss (nats)', (r) => r.model)])),
    'results/mosaic-sparse-recall.svg': plot(rc, (r) => 100 * r.accuracy!, 'Induction-copy accuracy vs keys read (dashed: transformer)', 'accuracy (%)',
      (r) => `${r.model.split(' (')[0]}, length ${r.length}`),
  };
  return { md, files };
}

function loadAverage(): number {
  try { return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]); } catch { return NaN; }
}

const FLAGS: FlagSpecs = {
  ...EXPERIMENT_FLAGS,
  part: { type: 'string', choices: ['lm', 'recall'], placeholder: 'lm|recall', description: 'measure (and keep) only this part\'s rows; a plain run then writes the report' },
  reuse: { type: 'string', placeholder: 'FILE', description: 'take the rows an earlier report (its results JSON, e.g. docs/results/mosaic-sparse.json) measured the same way instead of measuring them again' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Experiment e: the mosaic\'s contextual memory (and a transformer\'s attention) read by the attention backends: keys read vs loss and recall accuracy (results/mosaic-sparse.* under --docs).');
  if (!v) return 0;
  const args = experimentDirs(v, 'mosaic-sparse', REPO_ROOT), part = v.part as 'lm' | 'recall' | undefined;
  const plan = args.quick ? QUICK_PLAN : FULL_PLAN;
  const reuse = v.reuse !== undefined ? earlierRows(v.reuse as string, plan) : undefined;
  const log = (s: string) => console.log(s);
  const rows = [...part !== 'lm' ? await recallRows(plan, REPO_ROOT, args.runsDir, log, reuse) : [],
    ...part !== 'recall' ? await lmRows(plan, REPO_ROOT, log, args.runsDir, reuse) : []];
  if (part !== undefined) return 0;                                    // rows kept; a plain run writes the report
  const { md, files } = report(plan, rows, `node dist/src/experiments/mosaic-sparse.js${args.quick ? ' --quick' : ''}${v.reuse !== undefined ? ` --reuse ${v.reuse as string}` : ''}`);
  for (const p of writeFiles(args.docsDir, files)) console.log(`wrote ${p}`);
  process.stdout.write(md);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
