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

export interface LoadMosaicOptions extends MosaicInferenceOptions {
  /** Build the tokenizer from tokenizer.json (default true; an error if the folder has none). */
  tokenizer?: boolean;
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
  const model = new MosaicInference(ck.config, ck.params, opts);
  return { model, config: ck.config, tokenizer, generationConfig: ck.generationConfig as Record<string, unknown> | undefined };
}
