// Loading a Memory Mosaic checkpoint folder (config.json with "model_type": "memory_mosaic" +
// model.safetensors [+ tokenizer.json]) into a runnable LanguageModel. src/models/load.ts dispatches
// here when config.json names this model type, so `tessera generate` runs a mosaic like a Llama.

import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Tokenizer } from '../tokenizer/types.js';
import { loadHfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { readJsonFile } from '../formats/hf-folder.js';
import { isJsonObject } from '../formats/json-strict.js';
import type { MosaicConfig } from './config.js';
import { MOSAIC_MODEL_TYPE } from './config.js';
import { readMosaicCheckpoint } from './checkpoint.js';
import { MosaicInference, type MosaicInferenceOptions } from './inference.js';
import { attentionBackend, type AttentionBackend } from '../attention/create.js';
import { parseAttentionSpec, type AttentionSpec } from '../attention/spec.js';
import { ThreadPool } from '../runtime/pool.js';

export interface LoadMosaicOptions extends Omit<MosaicInferenceOptions, 'attention'> {
  /** Build the tokenizer from tokenizer.json (default true; an error if the folder has none). */
  tokenizer?: boolean;
  /** Read the contextual memory through an attention backend ("dense", "magicpig:K=8,L=50",
   *  "topk:k=32", a spec or a backend object); default: the exact built-in read-out. */
  attention?: AttentionSpec | string | AttentionBackend;
  /** Threads of the backend's pool (default 1; used only with `attention`). */
  threads?: number;
}

export interface LoadedMosaic {
  model: MosaicInference;
  config: MosaicConfig;
  /** null when opts.tokenizer is false. */
  tokenizer: Tokenizer | null;
  generationConfig?: Record<string, unknown>;
}

/** Whether `dir` is a folder whose config.json says "model_type": "memory_mosaic". */
export function isMosaicFolder(dir: string): boolean {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return false;
  const raw = readJsonFile(path);
  return isJsonObject(raw) && raw.model_type === MOSAIC_MODEL_TYPE;
}

function tokenizerOf(dir: string, ck: ReturnType<typeof readMosaicCheckpoint>): Tokenizer {
  if (!ck.tokenizerJsonPath) throw new Error(`${dir}: no tokenizer.json in the model folder; Tessera needs it to encode text`);
  return loadHfTokenizer({
    tokenizerJson: ck.tokenizerJsonPath,
    tokenizerConfig: ck.tokenizerConfig as object | undefined,
    generationConfig: ck.generationConfig as object | undefined,
  });
}

/** The folder's tokenizer without building the model. */
export function loadMosaicTokenizer(dir: string): Tokenizer {
  return tokenizerOf(dir, readMosaicCheckpoint(dir));
}

export async function loadMosaic(dir: string, opts: LoadMosaicOptions = {}): Promise<LoadedMosaic> {
  const ck = readMosaicCheckpoint(dir);
  const tokenizer = (opts.tokenizer ?? true) ? tokenizerOf(dir, ck) : null;
  const { attention, threads, ...rest } = opts;
  let model: MosaicInference;
  if (attention === undefined) model = new MosaicInference(ck.config, ck.params, rest);
  else {
    const backend = typeof attention === 'object' && 'create' in attention ? attention
      : attentionBackend(typeof attention === 'string' ? parseAttentionSpec(attention) : attention);
    const pool = await ThreadPool.create({ threads: threads ?? 1, kernels: opts.kernels ?? 'wasm' });
    try {
      model = new MosaicInference(ck.config, ck.params, { ...rest, attention: { backend, pool }, ownPool: true });
    } catch (e) { pool.dispose(); throw e; }
  }
  return { model, config: ck.config, tokenizer, generationConfig: ck.generationConfig as Record<string, unknown> | undefined };
}
