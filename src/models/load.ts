// Loading a checkpoint (Hugging Face folder or GGUF file) into a runnable model + tokenizer:
//   1. open the checkpoint (headers only) and validate every tensor's presence, dtype and shape;
//   2. plan the arenas: the head arena (embedding, final norm, output head) and one per layer
//      (weights + KV cache + scratch), each sized exactly before it is created;
//   3. read each tensor straight into its arena, converting or quantising where asked.

import type { LlamaConfig } from './config.js';
import { derive } from './config.js';
import { MAX_DRAFT_ATTENTIONS, type LanguageModel } from './types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { CacheDType, Ptr, WeightDType } from '../kernels/types.js';
import { weightBytes } from '../kernels/types.js';
import { repackForMatmul } from '../kernels/repack.js';
import type { TensorEntry } from '../formats/tensor-source.js';
import { Arena, planArena, MAX_ARENA_BYTES } from '../runtime/arena.js';
import { ThreadPool } from '../runtime/pool.js';
import { attentionBackend, type AttentionBackend } from '../attention/create.js';
import { DENSE, formatAttentionSpec, parseAttentionSpec, type AttentionSpec } from '../attention/spec.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import { layerTensorNames, type LayerWeights, type Mat, type ModelWeights } from './weights.js';
import { LlamaModel, headScratchLayout, layerRuntimeBytes } from './llama.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';
import { layoutBytes } from '../runtime/layout.js';
import { ropeInverseFrequencies } from './rope-frequencies.js';
import { readTensorInto } from './tensor-convert.js';
import { isMosaicFolder, loadMosaic, loadMosaicTokenizer } from '../mosaic/load.js';
import { mosaicParameterCount, mosaicConfigFromJson, type MosaicConfig } from '../mosaic/config.js';
import { readJsonFile } from '../formats/hf-folder.js';
import { existsSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';

/** Every model family Tessera runs, told apart by `model_type`. */
export type ModelConfig = LlamaConfig | MosaicConfig;

/** The KV cache's storage type when a load does not say: f16, as llama.cpp's (half the memory and
 *  the bytes read per key of f32); `cacheDType: 'f32'` keeps f32 rows. */
export const DEFAULT_CACHE_DTYPE: CacheDType = 'f16';

export interface LoadProgress {
  stage: 'reading' | 'quantizing' | 'ready';
  loadedBytes: number;
  totalBytes: number;
}

type DraftAttentionOption = AttentionSpec | string | AttentionBackend;

export interface LoadOptions {
  /** Worker threads including the main thread (default: number of cores; a Memory Mosaic's
   *  attention backend: default 1). */
  threads?: number;
  /** 'wasm' (default) or 'reference' (plain TypeScript kernels, for tests). */
  kernels?: 'wasm' | 'reference';
  /** Most tokens one sequence holds (default: min(max_position_embeddings, 4096)). */
  contextLength?: number;
  /** Most sequences alive at once (caches not yet released; default DEFAULT_PARALLEL, fewer when a
   *  sparse backend's per-sequence state would not fit). */
  parallel?: number;
  /** KV memory shared by all sequences, in tokens (a number) or as a size ("2GiB", "512MiB"):
   *  default DEFAULT_KV_SEQUENCES × contextLength tokens, less where a 4 GiB layer arena or half of
   *  the machine's memory (beside the weights) says so, never less than one context. */
  kvBudget?: number | string;
  /** Quantise f32/f16/bf16 2-D weights to q8_0 while loading. */
  quantize?: 'q8_0';
  /** KV-cache storage type (default DEFAULT_CACHE_DTYPE, f16, as llama.cpp's). */
  cacheDType?: CacheDType;
  /** Tokens per internal prefill chunk (default 64). */
  prefillChunk?: number;
  /** Attention backend for every layer: a spec, its text form ("dense", "magicpig:K=10,L=150"), or
   *  a backend object (e.g. one that records Q/K/V for operator-level evaluation). A Memory Mosaic
   *  reads its contextual memory through it; without it, through its own exact read-out. */
  attention?: AttentionSpec | string | AttentionBackend;
  /** A second attention for every layer, over the same K/V rows, for self-speculative decoding
   *  (`speculate: { draft: 'self' }`): e.g. "streaming:sinks=4,window=256", "snapkv:budget=512",
   *  "magicpig:dense=0". Its per-sequence state is planned into the arenas like the main one's.
   *  A list gives several (draft budgets the cost model chooses among, or draft kinds a benchmark
   *  compares); a batch item picks one by its index (`BatchItem.draft`). */
  draftAttention?: DraftAttentionOption | readonly DraftAttentionOption[];
  /** false: the model alone, for a checkpoint of token ids without a tokenizer.json (a model trained
   *  on a synthetic task); the result's tokenizer then throws when used. Default true. */
  tokenizer?: boolean;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface ModelInfo {
  path: string;
  format: 'safetensors' | 'gguf';
  config: ModelConfig;
  parameters: number;
  /** Tensor count per stored dtype (in the file). */
  dtypes: Record<string, number>;
  /** Bytes of weights as loaded (after optional quantisation). */
  weightBytes: number;
  /** K + V bytes per token over all layers. */
  kvBytesPerToken: number;
  /** Total bytes needed for weights + a KV budget of `kvTokens` tokens (default: `contextLength`)
   *  + the state of `parallel` sequences (default 1) + scratch. */
  memoryNeeded(contextLength: number, kvTokens?: number, parallel?: number): number;
  /** Sequence slots and KV budget a load with these options gets (the defaults fitted to the
   *  4 GiB a layer arena can hold), and the memory planned for them. */
  runtime(contextLength: number, opts?: Pick<LoadOptions, 'parallel' | 'kvBudget'>): { parallel: number; kvBudgetTokens: number; memoryBytes: number };
}

export interface LoadedModel {
  model: LanguageModel;
  tokenizer: Tokenizer;
  config: ModelConfig;
  info: ModelInfo;
  /** Raw generation_config.json (HF folders) if present: sampling defaults suggested by the authors. */
  generationConfig?: Record<string, unknown>;
}

/** Largest KV-cache capacity accepted (2^24 tokens, as config.json's max_position_embeddings): beyond it
 *  the arena sizes stop being exact integers long before any memory could hold them. */
export const MAX_CONTEXT_LENGTH = 1 << 24;

const LOADABLE: ReadonlySet<string> = new Set(['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k']);

interface TensorPlan { name: string; entry: TensorEntry; stored: WeightDType; bytes: number }

/** Every tensor the model needs, checked against the config, with the dtype it will be stored as. */
function planTensors(ck: Checkpoint, quantize: 'q8_0' | undefined) {
  const c = ck.config, d = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const { qDim, kvDim } = derive(c);
  const want = (name: string, shape: number[], optional = false): TensorPlan | null => {
    const entry = ck.tensor(name);
    if (!entry) {
      if (optional) return null;
      throw new Error(`${ck.path}: tensor ${name} is missing (config says ${c.num_hidden_layers} layers, ${c.model_type})`);
    }
    if (entry.shape.length !== shape.length || entry.shape.some((s, i) => s !== shape[i])) {
      throw new Error(`${ck.path}: tensor ${name} has shape [${entry.shape}], expected [${shape}] from the config`);
    }
    if (!LOADABLE.has(entry.dtype)) {
      throw new Error(`${ck.path}: tensor ${name} is stored as ${entry.dtype}; Tessera loads f32, f16, bf16, q8_0, q4_0, q4_K, q5_K and q6_K (re-quantise the file, e.g. with tessera quantize)`);
    }
    const src = entry.dtype as WeightDType;
    let stored: WeightDType;
    if (shape.length === 1) stored = 'f32';                                  // norms and biases: always f32
    else if (quantize === 'q8_0' && (src === 'f32' || src === 'f16' || src === 'bf16') && shape[1] % 32 === 0) stored = 'q8_0';
    else stored = src;
    const count = shape.reduce((a, b) => a * b, 1);
    return { name, entry, stored, bytes: weightBytes(stored, count) };
  };
  const embed = want('model.embed_tokens.weight', [V, d])!;
  const norm = want('model.norm.weight', [d])!;
  const lmHead = c.tie_word_embeddings ? null : want('lm_head.weight', [V, d])!;
  const layers = [] as Record<string, TensorPlan | null>[];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const n = layerTensorNames(i);
    layers.push({
      attnNorm: want(n.attnNorm, [d]), q: want(n.q, [qDim, d]), k: want(n.k, [kvDim, d]), v: want(n.v, [kvDim, d]),
      o: want(n.o, [d, qDim]), qBias: want(n.qBias, [qDim], !c.attention_bias), kBias: want(n.kBias, [kvDim], !c.attention_bias),
      vBias: want(n.vBias, [kvDim], !c.attention_bias), ffnNorm: want(n.ffnNorm, [d]),
      gate: want(n.gate, [F, d]), up: want(n.up, [F, d]), down: want(n.down, [d, F]),
    });
  }
  return { embed, norm, lmHead, layers };
}

type Plan = ReturnType<typeof planTensors>;
const sizesOf = (ts: Record<string, TensorPlan | null>) => Object.values(ts).filter((t): t is TensorPlan => t !== null).map((t) => t.bytes);

interface Runtime { capacity: number; chunk: number; cacheDType: CacheDType; parallel: number; kvPages: number }

function arenaSizes(ck: Checkpoint, plan: Plan, r: Runtime, backend: AttentionBackend, drafts: readonly AttentionBackend[]) {
  const c = ck.config;
  const head = planArena([plan.embed.bytes, plan.norm.bytes, ...(plan.lmHead ? [plan.lmHead.bytes] : [])]) + 64 + layoutBytes(headScratchLayout(c, r.chunk));
  const layers = plan.layers.map((l, layer) => planArena(sizesOf(l)) + 64 + layerRuntimeBytes(c, r, backend, layer, drafts));
  return { head, layers };
}

/** Sequences alive at once by default (each costs only its attention backend's state: nothing for dense). */
export const DEFAULT_PARALLEL = 16;
/** Default KV budget, in contexts' worth of tokens (pages are committed only once written). */
export const DEFAULT_KV_SEQUENCES = 4;

/** Tokens of a kvBudget option: a token count, or a size with a unit (B, KiB, MiB, GiB). */
export function kvBudgetTokens(budget: number | string, kvBytesPerToken: number): number {
  if (typeof budget === 'number') {
    if (!Number.isInteger(budget) || budget < 1) throw new RangeError(`kvBudget must be a positive integer number of tokens, got ${budget}`);
    return budget;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB|tokens?)?\s*$/i.exec(budget);
  if (!m) throw new RangeError(`kvBudget must be a number of tokens (e.g. 32768) or a size (e.g. 2GiB, 512MiB), got "${budget}"`);
  const x = Number(m[1]), unit = (m[2] ?? 'tokens').toLowerCase();
  if (unit.startsWith('token')) return kvBudgetTokens(x, kvBytesPerToken);
  const scale: Record<string, number> = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, kb: 1e3, mb: 1e6, gb: 1e9 };
  const tokens = Math.floor((x * scale[unit]!) / kvBytesPerToken);
  if (tokens < 1) throw new RangeError(`kvBudget ${budget} holds no token (${kvBytesPerToken} bytes of K/V per token)`);
  return tokens;
}

function describe(ck: Checkpoint, plan: Plan, chunk: number, cacheDType: CacheDType, backend: AttentionBackend, drafts: readonly AttentionBackend[]): ModelInfo {
  const all = [plan.embed, plan.norm, plan.lmHead, ...plan.layers.flatMap((l) => Object.values(l))].filter((t): t is TensorPlan => t !== null);
  const dtypes: Record<string, number> = {};
  let parameters = 0, wBytes = 0;
  for (const t of all) {
    dtypes[t.entry.dtype] = (dtypes[t.entry.dtype] ?? 0) + 1;
    parameters += t.entry.shape.reduce((a, b) => a * b, 1);
    wBytes += t.bytes;
  }
  const c = ck.config, { kvDim } = derive(c);
  const es = cacheDType === 'f16' ? 2 : 4;
  return {
    path: ck.path, format: ck.format, config: c, parameters, dtypes, weightBytes: wBytes,
    kvBytesPerToken: 2 * kvDim * es * c.num_hidden_layers,
    memoryNeeded: (ctx: number, kvTokens = ctx, parallel = 1) => {
      const s = arenaSizes(ck, plan, { capacity: ctx, chunk, cacheDType, parallel, kvPages: Math.ceil(kvTokens / KV_PAGE_TOKENS) }, backend, drafts);
      return s.head + s.layers.reduce((a, b) => a + b, 0);
    },
    runtime: (ctx, opts = {}) => {
      const r = planRuntime(ck, plan, { capacity: ctx, chunk, cacheDType }, backend, 2 * kvDim * es * c.num_hidden_layers, wBytes, opts, drafts);
      const s = arenaSizes(ck, plan, r, backend, drafts);
      return { parallel: r.parallel, kvBudgetTokens: r.kvPages * KV_PAGE_TOKENS, memoryBytes: s.head + s.layers.reduce((a, b) => a + b, 0) };
    },
  };
}

/** Sequence slots and KV pages: as asked, or the defaults cut to what one 4 GiB layer arena holds
 *  and to half of the machine's memory beside the weights (never below one full context). */
function planRuntime(ck: Checkpoint, plan: Plan, base: Omit<Runtime, 'parallel' | 'kvPages'>, backend: AttentionBackend,
                     kvBytesPerToken: number, weightBytes: number, opts: Pick<LoadOptions, 'parallel' | 'kvBudget'>,
                     drafts: readonly AttentionBackend[]): Runtime {
  const fits = (r: Runtime) => arenaSizes(ck, plan, r, backend, drafts).layers.every((b) => b <= MAX_ARENA_BYTES);
  const minPages = Math.ceil(base.capacity / KV_PAGE_TOKENS);
  let parallel = opts.parallel ?? DEFAULT_PARALLEL;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 4096) throw new RangeError(`loadModel: parallel must be an integer in [1, 4096], got ${opts.parallel}`);
  const ramPages = Math.floor((totalmem() / 2 - weightBytes) / (kvBytesPerToken * KV_PAGE_TOKENS));
  let kvPages = opts.kvBudget !== undefined ? Math.ceil(kvBudgetTokens(opts.kvBudget, kvBytesPerToken) / KV_PAGE_TOKENS)
    : Math.max(minPages, Math.min(minPages * DEFAULT_KV_SEQUENCES, ramPages));
  if (opts.kvBudget === undefined) while (kvPages > minPages && !fits({ ...base, parallel: 1, kvPages })) kvPages = Math.max(minPages, kvPages >> 1);
  if (opts.parallel === undefined) while (parallel > 1 && !fits({ ...base, parallel, kvPages })) parallel >>= 1;
  return { ...base, parallel, kvPages };
}

/** The tokenizer of a model loaded with `tokenizer: false`: any use is an error. */
function noTokenizer(path: string): Tokenizer {
  // `then` and symbols read as absent, so awaiting or printing a holder of it does not throw
  return new Proxy({} as Tokenizer, {
    get: (_, key) => {
      if (key === 'then' || typeof key === 'symbol') return undefined;
      throw new Error(`${path} was loaded with tokenizer: false; it has no tokenizer (asked for ${String(key)})`);
    },
  });
}

function defaultContext(c: LlamaConfig): number { return Math.min(c.max_position_embeddings, 4096, c.sliding_window ?? Infinity); }

/** Reads headers only (no weights) and describes a checkpoint: for `tessera info`. */
function backendOf(spec: AttentionSpec | string | AttentionBackend | undefined): AttentionBackend {
  if (spec && typeof spec === 'object' && 'create' in spec) return spec;
  return attentionBackend(typeof spec === 'string' ? parseAttentionSpec(spec) : spec ?? DENSE);
}

function draftOptions(opt: LoadOptions['draftAttention']): readonly DraftAttentionOption[] {
  if (opt === undefined) return [];
  const list = Array.isArray(opt) ? opt as readonly DraftAttentionOption[] : [opt as DraftAttentionOption];
  if (list.length === 0 || list.length > MAX_DRAFT_ATTENTIONS) {
    throw new RangeError(`loadModel: draftAttention lists ${list.length} attentions; give 1 to ${MAX_DRAFT_ATTENTIONS}`);
  }
  return list;
}

const draftBackends = (opt: LoadOptions['draftAttention']): AttentionBackend[] => draftOptions(opt).map(backendOf);

/** A draft attention's name: its spec, or its place in the list for a backend object. */
const draftNames = (opt: LoadOptions['draftAttention']): string[] =>
  draftOptions(opt).map((o, i) => (typeof o === 'string' ? o.trim() : 'create' in o ? `draft attention ${i}` : formatAttentionSpec(o)));

const isMosaic = (path: string) => existsSync(path) && statSync(path).isDirectory() && isMosaicFolder(path);

/** ModelInfo of a Memory Mosaic folder: f32 weights; per position and layer the cache keeps five
 *  d-wide rows (keys, values, and the pending-value inputs; see src/mosaic/inference.ts). */
function describeMosaic(path: string): ModelInfo {
  const config = mosaicConfigFromJson(readJsonFile(join(path, 'config.json')), join(path, 'config.json'));
  const parameters = mosaicParameterCount(config);
  const kvBytesPerToken = 5 * config.n_embd * 4 * config.n_layer;
  return {
    path, format: 'safetensors', config, parameters, dtypes: { f32: 1 }, weightBytes: parameters * 4, kvBytesPerToken,
    memoryNeeded: (ctx) => parameters * 4 + ctx * kvBytesPerToken,
    runtime: (ctx) => ({ parallel: 1, kvBudgetTokens: ctx, memoryBytes: parameters * 4 + ctx * kvBytesPerToken }),
  };
}

export function describeModel(path: string, opts: Pick<LoadOptions, 'quantize' | 'cacheDType' | 'prefillChunk' | 'attention' | 'draftAttention'> = {}): ModelInfo {
  if (isMosaic(path)) return describeMosaic(path);
  const backend = backendOf(opts.attention);
  const ck = openCheckpoint(path);
  try {
    return describe(ck, planTensors(ck, opts.quantize), opts.prefillChunk ?? 64, opts.cacheDType ?? DEFAULT_CACHE_DTYPE, backend,
      draftBackends(opts.draftAttention));
  } finally { ck.source.close(); }
}

/** The checkpoint's tokenizer alone, without reading the weights into memory (tokenize, detokenize). */
export function loadTokenizer(path: string): Tokenizer {
  if (isMosaic(path)) return loadMosaicTokenizer(path);
  const ck = openCheckpoint(path);
  try {
    return ck.tokenizer();
  } finally { ck.source.close(); }
}

function abortError(): Error {
  return Object.assign(new Error('loadModel: aborted'), { name: 'AbortError' });
}

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  if (isMosaic(path)) {
    if (opts.quantize || opts.draftAttention !== undefined) {
      throw new RangeError(`loadModel: ${path} is a Memory Mosaic; quantize and draft attention apply to Llama-family models only`);
    }
    if (opts.signal?.aborted) throw abortError();
    // attention: the contextual memory is read through that backend (src/mosaic/backend-readout.ts),
    // parsed and checked there as for a Llama; without it, the mosaic's own exact read-out
    const m = await loadMosaic(path, { contextLength: opts.contextLength, kernels: opts.kernels, attention: opts.attention, threads: opts.threads });
    const info = describeMosaic(path);
    opts.onProgress?.({ stage: 'ready', loadedBytes: info.weightBytes, totalBytes: info.weightBytes });
    return { model: m.model, tokenizer: m.tokenizer!, config: m.config, info, generationConfig: m.generationConfig };
  }
  const backend = backendOf(opts.attention);
  const drafts = draftBackends(opts.draftAttention);
  const ck = openCheckpoint(path);
  let pool: ThreadPool | null = null;
  try {
    const c = ck.config;
    const chunk = opts.prefillChunk ?? 64;
    const cacheDType = opts.cacheDType ?? DEFAULT_CACHE_DTYPE;
    const capacity = opts.contextLength ?? defaultContext(c);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`loadModel: contextLength must be a positive integer, got ${opts.contextLength ?? `${capacity} (from the checkpoint)`}`);
    if (capacity > MAX_CONTEXT_LENGTH) {
      throw new RangeError(`loadModel: contextLength ${capacity} is more than the ${MAX_CONTEXT_LENGTH} tokens Tessera supports (this model was trained for ${c.max_position_embeddings}); ask for fewer`);
    }
    if (c.sliding_window !== undefined && capacity > c.sliding_window) {
      // full attention over more than the window would silently compute something the model never did
      throw new RangeError(`loadModel: this checkpoint uses sliding-window attention over ${c.sliding_window} tokens, which Tessera does not implement; ` +
        `load it with contextLength ≤ ${c.sliding_window} (exact there), got ${capacity}`);
    }
    if (!Number.isInteger(chunk) || chunk < 1 || chunk > 4096) throw new RangeError(`loadModel: prefillChunk must be an integer in [1, 4096], got ${chunk}`);
    const plan = planTensors(ck, opts.quantize);
    const info = describe(ck, plan, chunk, cacheDType, backend, drafts);
    const tokenizer = opts.tokenizer === false ? noTokenizer(path) : ck.tokenizer();
    const runtime = planRuntime(ck, plan, { capacity, chunk, cacheDType }, backend, info.kvBytesPerToken, info.weightBytes, opts, drafts);
    const sizes = arenaSizes(ck, plan, runtime, backend, drafts);
    sizes.layers.forEach((bytes, i) => {
      if (bytes > MAX_ARENA_BYTES) {
        throw new RangeError(`loadModel: layer ${i} needs ${(bytes / 2 ** 30).toFixed(2)} GiB (weights + a KV budget of ${runtime.kvPages * KV_PAGE_TOKENS} tokens + ` +
          `${runtime.parallel} sequences' attention state), more than one 4 GiB WebAssembly memory; use a smaller kvBudget, parallel or contextLength, or cacheDType 'f16'`);
      }
    });
    if (sizes.head > MAX_ARENA_BYTES) throw new RangeError(`loadModel: the embedding/output arena needs ${(sizes.head / 2 ** 30).toFixed(2)} GiB, over the 4 GiB limit of one WebAssembly memory; load with quantize: 'q8_0'`);

    const kernels = opts.kernels ?? 'wasm';
    pool = await ThreadPool.create({ threads: opts.threads, kernels });
    const total = info.weightBytes;
    let loaded = 0;
    /** Reads tensors back to back into one new region of `arena` (so stacked matrices are contiguous),
     *  reporting progress and honouring the abort signal between tensors; returns where each lies and
     *  the dtype it runs as: matrices are readied for the matmul kernels (src/kernels/repack.ts; the
     *  embedding too — the output head may be it, and rowToF32 looks its rows up in any layout). */
    const readInto = async (ts: TensorPlan[], arena: Arena): Promise<{ ptr: Ptr; dtype: WeightDType }[]> => {
      let at = arena.alloc(ts.reduce((a, t) => a + t.bytes, 0));
      const out: { ptr: Ptr; dtype: WeightDType }[] = [];
      for (const t of ts) {
        if (opts.signal?.aborted) throw abortError();
        const bytes = arena.u8(at, t.bytes);
        readTensorInto(ck.source, t.entry, t.stored, bytes);
        const [rows, cols] = t.entry.shape;
        out.push({ ptr: at, dtype: t.entry.shape.length === 2 ? repackForMatmul(t.stored, bytes, rows, cols) : t.stored });
        at += t.bytes;
        loaded += t.bytes;
        opts.onProgress?.({ stage: t.stored !== t.entry.dtype ? 'quantizing' : 'reading', loadedBytes: loaded, totalBytes: total });
        await new Promise((r) => setImmediate(r));                             // let progress render and aborts arrive
      }
      return out;
    };
    const step = async (t: TensorPlan, arena: Arena): Promise<Ptr> => (await readInto([t], arena))[0].ptr;
    const matAt = (t: TensorPlan, at: { ptr: Ptr; dtype: WeightDType }): Mat => ({ ...at, rows: t.entry.shape[0], cols: t.entry.shape[1] });
    const mat = async (t: TensorPlan, arena: Arena): Promise<Mat> => matAt(t, (await readInto([t], arena))[0]);
    /** Matrices with one dtype stored back to back, so one matmul covers them all. */
    const stacked = async (ts: TensorPlan[], arena: Arena): Promise<{ parts: Mat[]; all: Mat | null }> => {
      if (ts.some((t) => t.stored !== ts[0].stored)) {
        const parts: Mat[] = [];
        for (const t of ts) parts.push(await mat(t, arena));
        return { parts, all: null };
      }
      const parts = (await readInto(ts, arena)).map((at, i) => matAt(ts[i], at));
      // one of them may have stayed in GGUF's layout (repackForMatmul): then they run one by one
      if (parts.some((m) => m.dtype !== parts[0].dtype)) return { parts, all: null };
      return { parts, all: { ptr: parts[0].ptr, dtype: parts[0].dtype, rows: parts.reduce((a, m) => a + m.rows, 0), cols: parts[0].cols } };
    };

    const head = Arena.create(sizes.head, { kernels, label: 'embeddings/output' });
    pool.register(head);
    const embed = await mat(plan.embed, head);
    const norm = await step(plan.norm, head);
    const lmHead = plan.lmHead ? await mat(plan.lmHead, head) : embed;
    const layers: LayerWeights[] = [];
    for (let i = 0; i < plan.layers.length; i++) {
      const p = plan.layers[i];
      const arena = Arena.create(sizes.layers[i], { kernels, label: `layer ${i}` });
      pool.register(arena);
      const attnNorm = await step(p.attnNorm!, arena);
      const qkv = await stacked([p.q!, p.k!, p.v!], arena);
      const [qBias, kBias, vBias] = p.qBias ? (await readInto([p.qBias, p.kBias!, p.vBias!], arena)).map((b) => b.ptr) : [0, 0, 0];
      const o = await mat(p.o!, arena);
      const ffnNorm = await step(p.ffnNorm!, arena);
      const gateUp = await stacked([p.gate!, p.up!], arena);
      const down = await mat(p.down!, arena);
      layers.push({
        arena, attnNorm, q: qkv.parts[0], k: qkv.parts[1], v: qkv.parts[2], qkv: qkv.all, qBias, kBias, vBias, o,
        ffnNorm, gate: gateUp.parts[0], up: gateUp.parts[1], gateUp: gateUp.all, down,
      });
    }
    const weights: ModelWeights = { head, embed, norm, lmHead, layers };
    const invFreq = ropeInverseFrequencies(c, derive(c).headDim, ck.ropeFreqDivisors);
    const model = new LlamaModel(c, weights, pool, { ...runtime, invFreq, attention: () => backend,
      draftAttentions: draftNames(opts.draftAttention).map((name, i) => ({ name, backend: () => drafts[i]! })) });
    opts.onProgress?.({ stage: 'ready', loadedBytes: total, totalBytes: total });
    return { model, tokenizer, config: c, info, generationConfig: ck.generationConfig };
  } catch (e) {
    pool?.dispose();
    throw e;
  } finally {
    ck.source.close();
  }
}
