// Loading a checkpoint (Hugging Face folder or GGUF file) into a runnable model + tokenizer.
// (Interface first; implementation lands with src/models/llama.ts.)

import type { LlamaConfig } from './config.js';
import type { LanguageModel } from './types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { CacheDType } from '../kernels/types.js';

export interface LoadProgress {
  stage: 'reading' | 'quantizing' | 'ready';
  loadedBytes: number;
  totalBytes: number;
}

export interface LoadOptions {
  /** Worker threads including the main thread (default: number of cores). */
  threads?: number;
  /** 'wasm' (default) or 'reference' (plain TypeScript kernels, for tests). */
  kernels?: 'wasm' | 'reference';
  /** KV-cache capacity in tokens (default: min(max_position_embeddings, 4096)). */
  contextLength?: number;
  /** Quantise f32/f16/bf16 2-D weights to q8_0 while loading. */
  quantize?: 'q8_0';
  /** KV-cache storage type (default 'f32'). */
  cacheDType?: CacheDType;
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

export interface ModelInfo {
  path: string;
  format: 'safetensors' | 'gguf';
  config: LlamaConfig;
  parameters: number;
  /** Tensor count per stored dtype. */
  dtypes: Record<string, number>;
  /** Bytes of weights as loaded (after optional quantisation). */
  weightBytes: number;
  /** K + V bytes per token over all layers. */
  kvBytesPerToken: number;
  /** Total bytes needed for weights + KV cache of `contextLength` tokens + scratch. */
  memoryNeeded(contextLength: number): number;
}

export interface LoadedModel {
  model: LanguageModel;
  tokenizer: Tokenizer;
  config: LlamaConfig;
  info: ModelInfo;
  /** Raw generation_config.json (HF folders) if present: sampling defaults suggested by the authors. */
  generationConfig?: Record<string, unknown>;
}

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  void path; void opts;
  throw new Error('loadModel: not implemented yet');
}

/** Reads headers only (no weights) and describes a checkpoint: for `tessera info`. */
export function describeModel(path: string, opts: Pick<LoadOptions, 'quantize' | 'cacheDType'> = {}): ModelInfo {
  void path; void opts;
  throw new Error('describeModel: not implemented yet');
}
