// Opens a checkpoint of either format and presents it uniformly: a Llama config, tensors looked up by
// their Hugging Face name, a tokenizer, and the format's quirks resolved (GGUF's permuted Q/K rows
// → rope_style 'normal'; GGUF's llama3 rope_freqs tensor → frequency divisors).

import { existsSync, statSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from './config.js';
import type { TensorEntry, TensorSource } from '../formats/tensor-source.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { openHfFolder } from '../formats/hf-folder.js';
import { llamaConfigFromHf } from '../formats/hf-config.js';
import { openGguf } from '../formats/gguf.js';
import { openRegularFile } from '../formats/regular-file.js';
import { llamaConfigFromGguf, ggufRopeFreqFactors, hfTensorName } from '../formats/gguf-llama.js';
import { loadHfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { tokenizerFromGgufMetadata } from '../tokenizer/gguf-tokenizer.js';
import { FormatError } from '../formats/errors.js';

export interface Checkpoint {
  path: string;
  format: 'safetensors' | 'gguf';
  config: LlamaConfig;
  source: TensorSource;
  /** Tensor by Hugging Face name. */
  tensor(name: string): TensorEntry | undefined;
  /** Per-pair RoPE frequency divisors stored in the file (GGUF llama3 scaling), else null. */
  ropeFreqDivisors: Float32Array | null;
  generationConfig?: Record<string, unknown>;
  /** Builds the tokenizer (deferred: `tessera info` does not need it). */
  tokenizer(): Tokenizer;
}

const HINT = 'expected a Hugging Face model folder (config.json + *.safetensors) or a .gguf file';

function isGgufFile(path: string): boolean {
  const fd = openRegularFile(path, 'model file');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === 'GGUF';
  } finally { closeSync(fd); }
}

/** Refuses a layer count that disagrees with the layers whose tensors the file holds: loading would
 *  otherwise run a smaller (or a broken) model without a word. `names` are Hugging Face names. */
function checkLayerCount(source: string, config: LlamaConfig, names: Iterable<string>, field: string): void {
  let layers = 0;
  for (const name of names) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  if (layers !== config.num_hidden_layers) {
    throw new FormatError(source, `${field} = ${config.num_hidden_layers}, but the file holds tensors for ${layers} layers; `
      + 'the metadata and the weights disagree (a damaged or mis-converted checkpoint)');
  }
}

export function openCheckpoint(path: string): Checkpoint {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder; ${HINT}`);
  const st = statSync(path);
  if (st.isDirectory()) {
    if (!existsSync(join(path, 'config.json'))) {
      throw new Error(`${path}: no config.json in this folder; ${HINT}`);
    }
    const hf = openHfFolder(path);
    let config: LlamaConfig;
    try {
      config = llamaConfigFromHf(hf.config, join(path, 'config.json'));
      config.rope_style = 'neox';
      checkLayerCount(path, config, hf.source.tensors.keys(), 'config.json num_hidden_layers');
    } catch (e) {
      hf.source.close();
      throw e;
    }
    return {
      path, format: 'safetensors', config, source: hf.source,
      tensor: (name) => hf.source.tensors.get(name),
      ropeFreqDivisors: null,
      generationConfig: hf.generationConfig as Record<string, unknown> | undefined,
      tokenizer: () => {
        if (!hf.tokenizerJsonPath) throw new Error(`${path}: no tokenizer.json in the model folder; Tessera needs it to encode text`);
        return loadHfTokenizer({
          tokenizerJson: hf.tokenizerJsonPath,
          tokenizerConfig: hf.tokenizerConfig as object | undefined,
          generationConfig: hf.generationConfig as object | undefined,
        });
      },
    };
  }
  if (!isGgufFile(path)) throw new Error(`${path}: not a GGUF file (no GGUF magic) and not a folder; ${HINT}`);
  const file = openGguf(path);
  try {
    const config = llamaConfigFromGguf(file);
    const byHf = new Map<string, TensorEntry>();
    for (const [name, entry] of file.tensors) {
      if (name === 'rope_freqs.weight') continue;
      byHf.set(hfTensorName(name, path), entry);
    }
    checkLayerCount(path, config, byHf.keys(), `${config.model_type}.block_count`);
    return {
      path, format: 'gguf', config, source: file,
      tensor: (name) => byHf.get(name),
      ropeFreqDivisors: ggufRopeFreqFactors(file),
      tokenizer: () => tokenizerFromGgufMetadata(file.metadata as Map<string, unknown>, path),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}
