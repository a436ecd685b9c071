// The training config of `tessera train --config FILE` and of the experiments: one JSON object that
// names the model family and its sizes, the data (a corpus with a tokenizer to train or load, or a
// synthetic task), the optimisation (steps, batch, context, schedule) and where results go. Every
// field is checked here, so a typo fails before any memory is allocated or data is tokenised.
//
// Example (configs/sotu-llama-d128-l1.json):
//   { "family": "llama", "model": { "d": 128, "layers": 1, "heads": 4 },
//     "data": { "corpus": "sotu", "vocabSize": 2048 },
//     "steps": 200, "batch": 16, "context": 128, "lr": 3e-3, "warmup": 20, "seed": 1, "out": "runs/sotu-llama-l1" }

import { totalmem } from 'node:os';
import { CORPUS_NAMES, type CorpusName } from '../data/corpora.js';
import { MAX_TRAIN_MEMORY_BYTES } from '../training/memory.js';
import { MOSAIC_INIT_PRESET_NAMES, type MosaicInitPreset } from '../mosaic/config.js';

export type Family = 'llama' | 'mosaic';
export type TaskName = 'recall' | 'induction';

export interface ModelSpec {
  /** Width d. */
  d: number;
  layers: number;
  heads: number;
  /** Llama: key/value heads (default = heads). */
  kvHeads?: number;
  /** Llama: SwiGLU width (default: round(8d/3) to a multiple of 8, parameter parity with a mosaic block). */
  ffn?: number;
  /** Mosaic: persistent-memory slots per head (default 3.5·d). */
  pmem?: number;
  /** Residual dropout (default 0). */
  dropout?: number;
  /** Mosaic: initialisation and logit-scale preset (default "library", the reference's; see src/mosaic/config.ts). */
  init?: MosaicInitPreset;
  /** Mosaic: dropout on the attention scores of both memories (default 0). */
  attnDropout?: number;
}

export interface CorpusData {
  corpus: CorpusName;
  /** Train a byte-level BPE of this size on the train split (default 2048) … */
  vocabSize?: number;
  /** … or use this tokenizer.json instead. */
  tokenizer?: string;
  /** Also train on chat-shaped text built from the train split (src/data/chat-examples.ts); the chat
   *  special tokens are added to the tokenizer and the exported model gets a chat template. */
  chat?: ChatData;
}

export interface ChatData {
  /** Share of each batch's sequences drawn from the chat text (the rest: the plain corpus). */
  fraction: number;
  /** Longest assistant reply in tokens. */
  maxReplyTokens: number;
}

export interface TaskData {
  task: TaskName;
  /** Token ids used by the task (the model's vocabulary; id 0 is the padding id). */
  vocabSize: number;
  /** Recall: number of queries per sequence (default 8). Induction: repeated segment length (default context/4). */
  queries?: number;
  segment?: number;
}

export type DataSpec = CorpusData | TaskData;

export interface TrainConfig {
  family: Family;
  model: ModelSpec;
  data: DataSpec;
  steps: number;
  batch: number;
  context: number;
  /** Micro-batches per optimizer step (default 1). */
  accumulate: number;
  lr: number;
  /** Cosine floor (default lr / 10). */
  minLr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  seed: number;
  /** Output folder: checkpoint/, model/ (HF-style folder), loss.json/csv/svg, result.json. */
  out: string;
  /** Evaluate on held-out data every N steps (0 = only at the end). */
  evalEvery: number;
  /** Held-out batches per evaluation (each `batch` × `context`). */
  evalBatches: number;
  /** Write a resumable checkpoint every N steps (0 = only at the end). */
  checkpointEvery: number;
  /** Threads for the matmuls (default 1; the pool helps only when cores are free). */
  threads: number;
  /** Start from this model folder's weights (a fine-tune) instead of a random initialisation. The
   *  shapes must match, except that the vocabulary may have grown (new rows keep their initialisation). */
  init?: string;
}

const DEFAULTS = {
  accumulate: 1, warmup: 20, weightDecay: 0.1, clip: 1, seed: 1, evalEvery: 50, evalBatches: 8, checkpointEvery: 100, threads: 1,
} as const;

export class ConfigError extends Error {
  constructor(readonly source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a parsed config object; `source` names it in errors. */
export function parseTrainConfig(raw: unknown, source: string): TrainConfig {
  const fail = (msg: string): never => { throw new ConfigError(source, msg); };
  if (!isObj(raw)) return fail('a training config must be a JSON object');
  const known = (o: Obj, keys: string[], where: string) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`unknown field ${where}${k} (known: ${keys.join(', ')})`);
  };
  const int = (o: Obj, k: string, where: string, dflt?: number, min = 1): number => {
    const v = o[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) return fail(`${where}${k} = ${JSON.stringify(v)} must be an integer ≥ ${min}`);
    return v;
  };
  const num = (o: Obj, k: string, dflt: number | undefined, ok: (x: number) => boolean, what: string): number => {
    const v = o[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) return fail(`${k} = ${JSON.stringify(v)} must be ${what}`);
    return v;
  };

  known(raw, ['family', 'model', 'data', 'steps', 'batch', 'context', 'accumulate', 'lr', 'minLr', 'warmup', 'weightDecay', 'clip',
    'seed', 'out', 'evalEvery', 'evalBatches', 'checkpointEvery', 'threads', 'init', 'comment'], '');
  const family = raw.family;
  if (family !== 'llama' && family !== 'mosaic') fail(`family = ${JSON.stringify(family)} must be "llama" or "mosaic"`);

  const m = raw.model;
  if (!isObj(m)) return fail('model must be an object {d, layers, heads, …}');
  known(m, ['d', 'layers', 'heads', 'kvHeads', 'ffn', 'pmem', 'dropout', 'init', 'attnDropout'], 'model.');
  const model: ModelSpec = { d: int(m, 'd', 'model.'), layers: int(m, 'layers', 'model.'), heads: int(m, 'heads', 'model.') };
  if (model.d % model.heads !== 0) fail(`model.d = ${model.d} is not divisible by model.heads = ${model.heads}`);
  if (m.kvHeads !== undefined) {
    model.kvHeads = int(m, 'kvHeads', 'model.');
    if (model.heads % model.kvHeads !== 0) fail(`model.heads = ${model.heads} is not a multiple of model.kvHeads = ${model.kvHeads}`);
  }
  if (m.ffn !== undefined) model.ffn = int(m, 'ffn', 'model.');
  if (m.pmem !== undefined) model.pmem = int(m, 'pmem', 'model.');
  if (m.dropout !== undefined) model.dropout = num(m, 'dropout', 0, (x) => x >= 0 && x < 1, 'in [0, 1)');
  for (const k of ['init', 'attnDropout', 'pmem'] as const) {
    if (m[k] !== undefined && family !== 'mosaic') fail(`model.${k} is a Memory Mosaic setting; remove it or set family to "mosaic"`);
  }
  if (m.init !== undefined) {
    if (!MOSAIC_INIT_PRESET_NAMES.includes(m.init as MosaicInitPreset)) fail(`model.init = ${JSON.stringify(m.init)} must be one of ${MOSAIC_INIT_PRESET_NAMES.map((n) => `"${n}"`).join(', ')}`);
    model.init = m.init as MosaicInitPreset;
  }
  if (m.attnDropout !== undefined) model.attnDropout = num(m, 'attnDropout', 0, (x) => x >= 0 && x < 1, 'in [0, 1)');

  const d = raw.data;
  if (!isObj(d)) return fail('data must be an object: {corpus, vocabSize | tokenizer} or {task, vocabSize}');
  let data: DataSpec;
  if (d.corpus !== undefined) {
    known(d, ['corpus', 'vocabSize', 'tokenizer', 'chat'], 'data.');
    if (!CORPUS_NAMES.includes(d.corpus as CorpusName)) fail(`data.corpus = ${JSON.stringify(d.corpus)} must be one of ${CORPUS_NAMES.join(', ')}`);
    if (d.tokenizer !== undefined && typeof d.tokenizer !== 'string') fail('data.tokenizer must be a path to a tokenizer.json');
    if (d.tokenizer !== undefined && d.vocabSize !== undefined) fail('give data.vocabSize (train a tokenizer) or data.tokenizer (use one), not both');
    data = { corpus: d.corpus as CorpusName, ...(d.tokenizer !== undefined ? { tokenizer: d.tokenizer as string } : { vocabSize: int(d, 'vocabSize', 'data.', 2048, 258) }) };
    if (d.chat !== undefined) {
      const c = d.chat;
      if (!isObj(c)) return fail('data.chat must be an object {fraction, maxReplyTokens}');
      known(c, ['fraction', 'maxReplyTokens'], 'data.chat.');
      data.chat = {
        fraction: num(c, 'fraction', undefined, (x) => x > 0 && x < 1, 'in (0, 1)'),
        maxReplyTokens: int(c, 'maxReplyTokens', 'data.chat.', undefined, 8),
      };
    }
  } else if (d.task !== undefined) {
    known(d, ['task', 'vocabSize', 'queries', 'segment'], 'data.');
    if (d.task !== 'recall' && d.task !== 'induction') fail(`data.task = ${JSON.stringify(d.task)} must be "recall" or "induction"`);
    data = { task: d.task as TaskName, vocabSize: int(d, 'vocabSize', 'data.', undefined, 8) };
    if (d.queries !== undefined) data.queries = int(d, 'queries', 'data.');
    if (d.segment !== undefined) data.segment = int(d, 'segment', 'data.', undefined, 2);
  } else {
    return fail('data needs "corpus" (sotu | moby-dick) or "task" (recall | induction)');
  }

  const lr = num(raw, 'lr', 3e-3, (x) => x > 0 && x < 1, 'in (0, 1)');
  const steps = int(raw, 'steps', '');
  const cfg: TrainConfig = {
    family: family as Family, model, data, steps,
    batch: int(raw, 'batch', '', 16),
    context: int(raw, 'context', '', 128, 2),
    accumulate: int(raw, 'accumulate', '', DEFAULTS.accumulate),
    lr,
    minLr: num(raw, 'minLr', lr / 10, (x) => x >= 0 && x <= lr, `in [0, lr = ${lr}]`),
    warmup: int(raw, 'warmup', '', Math.min(DEFAULTS.warmup, steps), 0),
    weightDecay: num(raw, 'weightDecay', DEFAULTS.weightDecay, (x) => x >= 0 && x < 1, 'in [0, 1)'),
    clip: num(raw, 'clip', DEFAULTS.clip, (x) => x >= 0, '≥ 0 (0 = off)'),
    seed: int(raw, 'seed', '', DEFAULTS.seed, 0),
    out: typeof raw.out === 'string' && raw.out.length > 0 ? raw.out : fail('out must be a folder path (where the run writes its results)'),
    evalEvery: int(raw, 'evalEvery', '', DEFAULTS.evalEvery, 0),
    evalBatches: int(raw, 'evalBatches', '', DEFAULTS.evalBatches),
    checkpointEvery: int(raw, 'checkpointEvery', '', DEFAULTS.checkpointEvery, 0),
    threads: int(raw, 'threads', '', DEFAULTS.threads),
  };
  if (raw.init !== undefined) {
    if (typeof raw.init !== 'string' || raw.init.length === 0) fail('init must be the path of a model folder to start from');
    cfg.init = raw.init as string;
  }
  if ('task' in cfg.data && cfg.context % 2 !== 0 && cfg.data.task === 'recall') fail(`context = ${cfg.context} must be even for the recall task (key/value pairs)`);
  // A tokenizer file's vocabulary is known once it is read: runTraining plans again with it.
  checkTrainingPlan(cfg, 'vocabSize' in cfg.data ? cfg.data.vocabSize ?? 2048 : 1, source);
  return cfg;
}

const GIB = 2 ** 30;
const gib = (bytes: number): string => `${(bytes / GIB).toFixed(bytes < GIB ? 3 : 1)} GiB`;

/** Memory a run certainly needs (lower bounds; the arena is sized from a larger estimate):
 *  16 bytes per parameter (value, gradient, two AdamW moments) for at least the embedding (vocab × d)
 *  and two d × d matrices per layer, the logits of one micro-batch (batch × context × vocab f32s) in
 *  the training arena, and the token ids and targets of the held-out and training batches outside it. */
export function trainingPlan(cfg: TrainConfig, vocab: number): { paramBytes: number; logitBytes: number; arenaBytes: number; dataBytes: number } {
  const { d, layers } = cfg.model;
  const paramBytes = 16 * (vocab * d + 2 * layers * d * d);
  const logitBytes = 4 * cfg.batch * cfg.context * vocab;
  const dataBytes = 8 * cfg.batch * cfg.context * (cfg.evalBatches + 1);
  return { paramBytes, logitBytes, arenaBytes: paramBytes + logitBytes, dataBytes };
}

/** Refuses, before anything is allocated, a config whose planned memory cannot fit one training arena
 *  or this machine's memory; the error names the fields that set the size and the planned bytes. */
export function checkTrainingPlan(cfg: TrainConfig, vocab: number, source: string, machineBytes = totalmem()): void {
  const p = trainingPlan(cfg, vocab);
  const terms = `parameters and AdamW state ${gib(p.paramBytes)} (16 B × (vocab ${vocab} × model.d ${cfg.model.d} + 2 × model.layers ${cfg.model.layers} × model.d²)), `
    + `logits ${gib(p.logitBytes)} (4 B × batch ${cfg.batch} × context ${cfg.context} × vocab ${vocab})`;
  const limit = Math.min(MAX_TRAIN_MEMORY_BYTES, machineBytes);
  const where = limit === machineBytes ? `this machine's ${gib(machineBytes)} of memory` : `the ${gib(MAX_TRAIN_MEMORY_BYTES)} one training arena (one WebAssembly memory) holds`;
  if (p.arenaBytes > limit) {
    const big = p.paramBytes >= p.logitBytes ? 'model.d or model.layers' : 'batch, context or the vocabulary';
    throw new ConfigError(source, `the planned training memory is at least ${gib(p.arenaBytes)}: ${terms}; more than ${where}. Lower ${big}`);
  }
  if (p.arenaBytes + p.dataBytes > machineBytes) {
    throw new ConfigError(source, `the planned memory is at least ${gib(p.arenaBytes + p.dataBytes)}: ${terms}, and batches ${gib(p.dataBytes)} `
      + `(8 B × batch ${cfg.batch} × context ${cfg.context} × (evalBatches ${cfg.evalBatches} + 1)); more than this machine's ${gib(machineBytes)} of memory. Lower evalBatches, batch or context`);
  }
}

/** Overrides from `--key value` flags (dotted keys reach into model/data: --model.layers 4). */
export function overrideConfig(raw: Obj, overrides: Record<string, string | number>): Obj {
  const out: Obj = structuredClone(raw);
  for (const [key, value] of Object.entries(overrides)) {
    const path = key.split('.');
    let o: Obj = out;
    for (const p of path.slice(0, -1)) {
      if (!isObj(o[p])) o[p] = {};
      o = o[p] as Obj;
    }
    const last = path[path.length - 1];
    const n = typeof value === 'number' ? value : Number(value);
    o[last] = typeof value === 'string' && (value.trim() === '' || !Number.isFinite(n)) ? value : n;
  }
  return out;
}

/** The default SwiGLU width for parameter parity with a mosaic block (3·d·F ≈ 8d², multiple of 8). */
export function parityFfn(d: number): number {
  return Math.max(8, Math.round((8 * d) / 3 / 8) * 8);
}
