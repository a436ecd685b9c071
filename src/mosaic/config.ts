// Memory Mosaic configuration (Zhang, Bottou et al., ICLR 2025; PAPERS.md §3) and its
// config.json form. Field names follow the paper's code (nanoMosaics / memory_mosaics Library) with
// `"model_type": "memory_mosaic"`, so a checkpoint folder is config.json + model.safetensors like any
// Hugging Face folder. config.json is hostile input: every size is checked before anything is allocated.
// Derived values (head size, per-head persistent-memory slots) are computed in `mosaicDims` only.

import { FormatError } from '../formats/errors.js';
import { isJsonObject } from '../formats/json-strict.js';

export const MOSAIC_MODEL_TYPE = 'memory_mosaic';
export const MOSAIC_ARCHITECTURE = 'MemoryMosaicForCausalLM';

export interface MosaicConfig {
  model_type: typeof MOSAIC_MODEL_TYPE;
  vocab_size: number;
  /** Model width d. */
  n_embd: number;
  n_layer: number;
  /** Heads H; head size hs = n_embd / n_head. */
  n_head: number;
  /** Training context T (the model itself has no positional embedding and accepts any length). */
  block_size: number;
  /** Residual dropout after each c_proj (paper: 0.05). Inference ignores it. */
  dropout: number;
  /** Persistent-memory slots per head N_p (paper: 3.5·d, parameter parity with a 4× MLP). */
  pmem_size: number;
  /** Leaky-average β init: linspace(leaky_beta_min, leaky_beta_max, H) over heads (paper: 0.5, 5). */
  leaky_beta_min: number;
  leaky_beta_max: number;
  /** Cap on the key-scale exponent b = min(10θ, key_scale_max) (paper: 5, an fp16 guard). */
  key_scale_max: number;
  /** LayerNorm epsilon (LayerNorm has a weight and no bias). */
  layer_norm_eps: number;
  /** Std of the N(0, σ²) embedding initialisation (the reference's `Library`: 1; nanoMosaics: 0.02).
   *  Only training reads it; it is recorded so a checkpoint says how it was started. */
  embedding_std: number;
  /** Logits = LN_f(x)·Embᵀ/√d when true (the reference's `Library`), LN_f(x)·Embᵀ when false
   *  (nanoMosaics). Training, the inference engine and the float64 reference all read it. */
  logits_inv_sqrt_d: boolean;
  /** Dropout on the attention scores (softmax weights) of both memories, training only (paper: 0.05). */
  attn_dropout: number;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
}

/** The two initialisation presets. `library`: the reference's Library code, made for its 80k-step
 *  run (config.json files without the fields mean this). `short-budget`: the reference's nanoMosaics
 *  convention, where a few hundred steps suffice to move the embedding (PAPERS.md §3, "Short budgets"). */
export const MOSAIC_INIT_PRESETS = {
  library: { embedding_std: 1, logits_inv_sqrt_d: true },
  'short-budget': { embedding_std: 0.02, logits_inv_sqrt_d: false },
} as const satisfies Record<string, Pick<MosaicConfig, 'embedding_std' | 'logits_inv_sqrt_d'>>;

export type MosaicInitPreset = keyof typeof MOSAIC_INIT_PRESETS;
export const MOSAIC_INIT_PRESET_NAMES = Object.keys(MOSAIC_INIT_PRESETS) as MosaicInitPreset[];

/** The factor applied to LN_f(x)·Embᵀ. */
export function mosaicLogitScale(c: MosaicConfig): number {
  return c.logits_inv_sqrt_d ? 1 / Math.sqrt(c.n_embd) : 1;
}

export interface MosaicDims {
  d: number;
  H: number;
  /** Head size d / H. */
  hs: number;
  /** Persistent-memory slots per head. */
  Np: number;
}

/** Default N_p = round(3.5·d): P_k, P_v of H × N_p × hs each = 7d² parameters, so a block has
 *  3d² (CM) + 2d² (PM projections) + 7d² = 12d² (+ 2d LayerNorm weights), like a GPT block. */
export function defaultPmemSize(nEmbd: number): number {
  return Math.round(3.5 * nEmbd);
}

/** A validated config from the fields given, paper defaults for the rest. */
export function mosaicConfig(c: Partial<MosaicConfig> & Pick<MosaicConfig, 'vocab_size' | 'n_embd' | 'n_layer' | 'n_head'>): MosaicConfig {
  return mosaicConfigFromJson({ ...c, model_type: MOSAIC_MODEL_TYPE }, 'mosaicConfig');
}

export function mosaicDims(c: MosaicConfig): MosaicDims {
  return { d: c.n_embd, H: c.n_head, hs: c.n_embd / c.n_head, Np: c.pmem_size };
}

/** Parameter count (the embedding is tied to the output head, so it counts once). */
export function mosaicParameterCount(c: MosaicConfig): number {
  const { d, H, hs, Np } = mosaicDims(c);
  const block = 5 * d * d + 2 * H * Np * hs + 2 * d + 7 * H;
  return c.vocab_size * d + c.n_layer * block + d;
}

const LIMITS = {
  vocab_size: 1 << 22,
  n_embd: 1 << 14,
  n_layer: 256,
  n_head: 1024,
  block_size: 1 << 20,
  pmem_size: 1 << 20,
} as const;

/** Validates a parsed config.json (or an options object); `source` names it in errors. */
export function mosaicConfigFromJson(raw: unknown, source: string): MosaicConfig {
  if (!isJsonObject(raw)) throw new FormatError(source, 'a memory mosaic config must be a JSON object');
  const fail = (msg: string): never => { throw new FormatError(source, msg); };
  if (raw.model_type !== MOSAIC_MODEL_TYPE) fail(`model_type ${show(raw.model_type)} is not "${MOSAIC_MODEL_TYPE}"`);

  const int = (field: keyof typeof LIMITS, dflt?: number): number => {
    const v = raw[field] ?? dflt;
    if (v === undefined) return fail(`${field} is missing (a positive integer is required)`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) fail(`${field} = ${show(v)} must be a positive integer`);
    if ((v as number) > LIMITS[field]) fail(`${field} = ${v} is larger than the supported maximum ${LIMITS[field]}`);
    return v as number;
  };
  const num = (field: string, dflt: number, ok: (x: number) => boolean, what: string): number => {
    const v = raw[field] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) fail(`${field} = ${show(v)} must be ${what}`);
    return v as number;
  };

  const nEmbd = int('n_embd');
  const nHead = int('n_head');
  if (nEmbd % nHead !== 0) fail(`n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  const cfg: MosaicConfig = {
    model_type: MOSAIC_MODEL_TYPE,
    vocab_size: int('vocab_size'),
    n_embd: nEmbd,
    n_layer: int('n_layer'),
    n_head: nHead,
    block_size: int('block_size', 512),
    dropout: num('dropout', 0, (x) => x >= 0 && x < 1, 'in [0, 1)'),
    pmem_size: int('pmem_size', defaultPmemSize(nEmbd)),
    leaky_beta_min: num('leaky_beta_min', 0.5, (x) => x >= 0, 'a non-negative number'),
    leaky_beta_max: num('leaky_beta_max', 5, (x) => x >= 0, 'a non-negative number'),
    key_scale_max: num('key_scale_max', 5, (x) => x > 0 && x <= 20, 'in (0, 20]'),
    layer_norm_eps: num('layer_norm_eps', 1e-5, (x) => x > 0 && x < 1, 'in (0, 1)'),
    embedding_std: num('embedding_std', MOSAIC_INIT_PRESETS.library.embedding_std, (x) => x > 0 && x <= 100, 'in (0, 100]'),
    logits_inv_sqrt_d: MOSAIC_INIT_PRESETS.library.logits_inv_sqrt_d,
    attn_dropout: num('attn_dropout', 0, (x) => x >= 0 && x < 1, 'in [0, 1)'),
  };
  const inv = raw.logits_inv_sqrt_d;
  if (inv !== undefined) {
    if (typeof inv !== 'boolean') fail(`logits_inv_sqrt_d = ${show(inv)} must be true (logits / sqrt(n_embd)) or false (no scaling)`);
    cfg.logits_inv_sqrt_d = inv as boolean;
  }
  for (const f of ['bos_token_id', 'eos_token_id'] as const) {
    const v = raw[f];
    if (v === undefined || v === null) continue;
    const ids = Array.isArray(v) ? v : [v];
    if (ids.length > 1024 || !ids.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < cfg.vocab_size)) {
      fail(`${f} = ${show(v)} must be a token id below vocab_size ${cfg.vocab_size} (or a list of them)`);
    }
    if (f === 'bos_token_id') cfg.bos_token_id = v as number;
    else cfg.eos_token_id = Array.isArray(v) ? [...(v as number[])] : (v as number);
  }
  return cfg;
}

/** The config.json object written next to model.safetensors. */
export function mosaicConfigToJson(c: MosaicConfig): Record<string, unknown> {
  return { architectures: [MOSAIC_ARCHITECTURE], ...c, tie_word_embeddings: true };
}

function show(v: unknown): string {
  const s = typeof v === 'number' || v === undefined ? String(v) : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
