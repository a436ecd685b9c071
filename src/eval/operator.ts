// Operator-level measurement (PAPERS.md §1, the paper's synthetic experiment, on real tensors):
// capture post-RoPE Q/K/V of a real forward pass over a task prompt of N tokens, treat the last
// `queries` positions as decode steps (the prompt before them is the dense prefill), and for every
// estimator and budget measure the relative error ‖o_est − o_dense‖/‖o_dense‖ of the attention
// output against the fraction of the context's keys it read, averaged over query heads, decode
// positions and layers.
//   offline  ./estimators.ts in float64 (topk, oracle-sampling, quest, streaming, magicpig)
//   engine   the engine's backends (src/attention) fed the same K/V rows and queries, one decode
//            step at a time; their output is compared with the same float64 dense reference.

import { attentionBackend, type LayerAttentionDims } from '../attention/create.js';
import { singleSequenceKV, singleSequenceKVBytes } from '../attention/kv-store.js';
import { formatAttentionSpec, parseAttentionSpec, type AttentionSpec } from '../attention/spec.js';
import { deriveSeed, Rng } from '../data/rng.js';
import { loadModel } from '../models/load.js';
import { Arena } from '../runtime/arena.js';
import { ThreadPool } from '../runtime/pool.js';
import { QkvRecorder, type CapturedLayer } from './capture.js';
import {
  buildSimHash, denseEstimate, magicpigEstimate, oracleSamplingEstimate, questEstimate, relativeError, scores,
  streamingEstimate, topkEstimate, type Estimate, type HeadView, type SimHashTables,
} from './estimators.js';
import { KeysMeter } from './keys-meter.js';
import { makeTask, parseTaskSpec, withProfile } from './tasks.js';

export interface OperatorEvalOptions {
  model: string;
  /** Prompt length in tokens (input, BOS excluded). */
  length: number;
  /** Task whose prompt is run (default "cwe"). */
  task?: string;
  profile?: string;
  /** Layers to measure (default: all). */
  layers?: number[];
  /** Decode positions evaluated: the last `queries` of the prompt (default 16). */
  queries?: number;
  /** Key fractions for topk, oracle-sampling, quest, streaming. */
  budgets?: number[];
  /** MagicPIG (K, L) pairs for the offline estimator. */
  magicpig?: [number, number][];
  /** Engine backend specs run on the captured tensors (dense layers are switched off with dense=none). */
  engine?: string[];
  sinks?: number;
  window?: number;
  seed?: number;
  threads?: number;
  kernels?: 'wasm' | 'reference';
}

export interface OperatorPoint {
  source: 'offline' | 'engine';
  backend: string;
  /** The setting: budget fraction, "K=10,L=150", or the engine spec. */
  setting: string;
  /** Mean keys read / keys in the context. */
  fraction: number;
  /** Mean relative error of the attention output. */
  error: number;
  /** Per layer: [layer, fraction, error]. */
  perLayer: [number, number, number][];
}

export interface OperatorResults {
  model: string; task: string; length: number; promptTokens: number; queries: number; layers: number[];
  heads: number; kvHeads: number; headDim: number; points: OperatorPoint[]; seconds: number;
}

export const DEFAULT_BUDGETS = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32];
export const DEFAULT_MAGICPIG: [number, number][] = [[8, 75], [10, 50], [10, 150], [10, 300], [11, 300]];

/** Query head h at position p of a captured layer, as the estimators read it. */
export function headView(c: CapturedLayer, h: number, p: number): HeadView {
  const D = c.headDim, kvDim = c.kvHeads * D, g = Math.floor(h / (c.heads / c.kvHeads)), qDim = c.heads * D;
  const qo = (p - c.queryFrom) * qDim + h * D;
  return {
    D, q: Float64Array.from(c.q.subarray(qo, qo + D)),
    key: (i) => c.k.subarray(i * kvDim + g * D, i * kvDim + g * D + D),
    value: (i) => c.v.subarray(i * kvDim + g * D, i * kvDim + g * D + D),
  };
}

/** Records Q/K/V of `model` over prompt `index` of the task (queries of its last `queries`
 *  positions); returns the captured layers, the prompt's ids and size. */
export async function capturePrompt(o: Pick<OperatorEvalOptions, 'model' | 'task' | 'profile' | 'length' | 'seed' | 'layers' | 'threads' | 'kernels'>,
                                    queries: number, index = 0) {
  const taskSpec = withProfile(parseTaskSpec(o.task ?? 'cwe'), o.profile ?? 'ruler');
  const probe = await loadModel(o.model, { contextLength: 16, threads: 1, kernels: o.kernels });
  const count = (s: string) => probe.tokenizer.encode(s, { addSpecialTokens: false }).length;
  const task = makeTask(taskSpec, o.length, count, o.seed ?? 1, index);
  const ids = probe.tokenizer.encode(task.input);
  probe.model.dispose();
  const N = ids.length, from = N - queries;
  if (from < 2) throw new RangeError(`eval --operator: the prompt (${N} tokens) is shorter than the ${queries} decode queries`);
  const rec = new QkvRecorder(o.layers ? new Set(o.layers) : undefined, from);
  // f32 K/V rows: the recorded keys are the model's exact ones (and the published tables were measured so)
  const { model } = await loadModel(o.model, { attention: rec.backend(), contextLength: N, threads: o.threads, kernels: o.kernels, cacheDType: 'f32' });
  try {
    const cache = model.createCache(N);
    for (let i = 0; i < N; i += 256) model.forward(ids.slice(i, Math.min(N, i + 256)), cache);
  } finally { model.dispose(); }
  return { layers: [...rec.layers.values()].sort((a, b) => a.layer - b.layer), ids, N, from, label: taskSpec.label };
}

/** Offline estimators over every (layer, query head, decode position). */
function offline(layers: CapturedLayer[], N: number, from: number, o: OperatorEvalOptions): OperatorPoint[] {
  const budgets = o.budgets ?? DEFAULT_BUDGETS, pigs = o.magicpig ?? DEFAULT_MAGICPIG;
  const sinks = o.sinks ?? 4, window = o.window ?? 64, seed = o.seed ?? 1;
  type Acc = { backend: string; setting: string; per: Map<number, { f: number; e: number; c: number }> };
  const accs = new Map<string, Acc>();
  const add = (backend: string, setting: string, layer: number, est: Estimate, ref: Float64Array, n: number) => {
    const key = `${backend}|${setting}`;
    let a = accs.get(key);
    if (!a) { a = { backend, setting, per: new Map() }; accs.set(key, a); }
    let pl = a.per.get(layer);
    if (!pl) { pl = { f: 0, e: 0, c: 0 }; a.per.set(layer, pl); }
    pl.f += est.keys / n; pl.e += relativeError(est.out, ref); pl.c++;
  };
  for (const c of layers) {
    const G = c.kvHeads, group = c.heads / G;
    // MagicPIG tables over [sinks, from − window), built when decoding starts (as the engine does).
    const tables = new Map<string, SimHashTables>();
    for (const [K, L] of pigs) for (let g = 0; g < G; g++) {
      const D = c.headDim, kvDim = G * D;
      tables.set(`${K},${L},${g}`, buildSimHash((i) => c.k.subarray(i * kvDim + g * D, i * kvDim + g * D + D), D, Math.min(sinks, from), Math.max(Math.min(sinks, from), from - window), K, L, deriveSeed(seed, c.layer, g, K, L)));
    }
    const rng = new Rng(deriveSeed(seed, 77, c.layer));
    // Quest's always-attended tail starts at the page holding the window-th last prompt token (as the engine)
    const questTail = Math.max(0, Math.floor((from - window) / 16) * 16);
    for (let p = from; p < N; p++) {
      const n = p + 1;
      for (let h = 0; h < c.heads; h++) {
        const hv = headView(c, h, p), s = scores(hv, n), ref = denseEstimate(hv, s).out;
        for (const f of budgets) {
          const k = Math.max(1, Math.round(f * n)), set = String(f);
          add('topk', set, c.layer, topkEstimate(hv, s, k), ref, n);
          add('oracle-sampling', set, c.layer, oracleSamplingEstimate(hv, s, k, rng), ref, n);
          add('quest', set, c.layer, questEstimate(hv, s, k, questTail), ref, n);
          add('streaming', set, c.layer, streamingEstimate(hv, s, sinks, Math.max(0, k - sinks)), ref, n);
        }
        for (const [K, L] of pigs) add('magicpig', `K=${K},L=${L}`, c.layer, magicpigEstimate(hv, s, tables.get(`${K},${L},${Math.floor(h / group)}`)!), ref, n);
      }
    }
  }
  return [...accs.values()].map((a) => summarize('offline', a.backend, a.setting, a.per));
}

function summarize(source: 'offline' | 'engine', backend: string, setting: string, per: Map<number, { f: number; e: number; c: number }>): OperatorPoint {
  const perLayer = [...per.entries()].sort((a, b) => a[0] - b[0]).map(([l, x]) => [l, x.f / x.c, x.e / x.c] as [number, number, number]);
  const mean = (j: 1 | 2) => perLayer.reduce((s, r) => s + r[j], 0) / perLayer.length;
  return { source, backend, setting, fraction: mean(1), error: mean(2), perLayer };
}

/** The engine's backend `spec` on the captured tensors: dense prefill rows, then one decode step per query. */
async function engine(layers: CapturedLayer[], N: number, from: number, spec: AttentionSpec, o: OperatorEvalOptions, pool: ThreadPool): Promise<OperatorPoint> {
  const withDense: AttentionSpec = spec.kind === 'dense' || 'dense' in spec.params ? spec : { kind: spec.kind, params: { ...spec.params, dense: 'none' } };
  const per = new Map<number, { f: number; e: number; c: number }>();
  const total = Math.max(...layers.map((l) => l.layer)) + 1;
  for (const c of layers) {
    const meter = new KeysMeter(withDense);
    const backend = meter.wrap(attentionBackend(withDense));
    const D = c.headDim, kvDim = c.kvHeads * D, qDim = c.heads * D, chunk = 64;
    const dims: LayerAttentionDims = { layer: c.layer, layers: total, heads: c.heads, kvHeads: c.kvHeads, headDim: D, capacity: N, dtype: 'f32' };
    const arena = Arena.create(singleSequenceKVBytes(dims) + backend.slotBytes(dims) + 4096 + chunk * kvDim * 8 + qDim * 8 + 1024, { kernels: o.kernels ?? 'wasm', label: `operator layer ${c.layer}` });
    pool.register(arena);
    try {
      const layer = backend.create(arena, pool, dims, singleSequenceKV(arena, dims));
      const kp = arena.alloc(chunk * kvDim * 4), vp = arena.alloc(chunk * kvDim * 4), qp = arena.alloc(qDim * 4), op = arena.alloc(qDim * 4), pp = arena.alloc(4);
      for (let p0 = 0; p0 < from; p0 += chunk) {                       // prefill rows (no queries needed)
        const n = Math.min(chunk, from - p0);
        arena.f32(kp, n * kvDim).set(c.k.subarray(p0 * kvDim, (p0 + n) * kvDim));
        arena.f32(vp, n * kvDim).set(c.v.subarray(p0 * kvDim, (p0 + n) * kvDim));
        layer.store(kp, vp, p0, n);
      }
      const acc = { f: 0, e: 0, c: 0 };
      for (let p = from; p < N; p++) {                                  // decode steps
        arena.f32(kp, kvDim).set(c.k.subarray(p * kvDim, (p + 1) * kvDim));
        arena.f32(vp, kvDim).set(c.v.subarray(p * kvDim, (p + 1) * kvDim));
        layer.store(kp, vp, p, 1);
        arena.f32(qp, qDim).set(c.q.subarray((p - from) * qDim, (p - from + 1) * qDim));
        arena.i32(pp, 1)[0] = p;
        layer.attend(qp, pp, op, 1, p + 1);
        const out = arena.f32(op, qDim);
        for (let h = 0; h < c.heads; h++) {
          const hv = headView(c, h, p), ref = denseEstimate(hv, scores(hv, p + 1)).out;
          acc.e += relativeError(out.subarray(h * D, (h + 1) * D), ref); acc.c++;
        }
      }
      const st = meter.stats();
      acc.f = (Number.isFinite(st.fraction) ? st.fraction : 1) * acc.c;
      per.set(c.layer, acc);
    } finally { pool.unregister(arena); }
  }
  const name = formatAttentionSpec(spec);
  return summarize('engine', spec.kind, name, per);
}

/** Refuses settings that would run and report numbers that mean nothing (a key fraction of −1 or 2). */
function checkOperatorOptions(o: OperatorEvalOptions): void {
  for (const f of o.budgets ?? []) {
    if (!(f > 0 && f <= 1)) throw new RangeError(`eval --operator: budget ${f} is not a fraction of the keys in (0, 1], e.g. 0.02 for 2%`);
  }
  for (const l of o.layers ?? []) {
    if (!Number.isInteger(l) || l < 0) throw new RangeError(`eval --operator: layer ${l} is not a layer index (an integer ≥ 0)`);
  }
  for (const [K, L] of o.magicpig ?? []) {
    if (!(Number.isInteger(K) && K >= 1 && Number.isInteger(L) && L >= 1)) throw new RangeError(`eval --operator: MagicPIG setting ${K}:${L} must be K:L with integers ≥ 1`);
  }
}

export async function runOperatorEval(o: OperatorEvalOptions): Promise<OperatorResults> {
  checkOperatorOptions(o);
  const t0 = performance.now();
  const queries = o.queries ?? 16;
  const { layers, N, from, label } = await capturePrompt(o, queries);
  if (layers.length === 0) throw new RangeError(`eval --operator: no layer recorded (asked for layers ${o.layers?.join(',')})`);
  const points = offline(layers, N, from, o);
  const specs = (o.engine ?? []).map((s) => parseAttentionSpec(s));
  if (specs.length) {
    const pool = await ThreadPool.create({ threads: o.threads ?? 1, kernels: o.kernels ?? 'wasm' });
    try { for (const s of specs) points.push(await engine(layers, N, from, s, o, pool)); } finally { pool.dispose(); }
  }
  const c = layers[0];
  return {
    model: o.model, task: label, length: o.length, promptTokens: N, queries, layers: layers.map((l) => l.layer),
    heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, points, seconds: (performance.now() - t0) / 1000,
  };
}
