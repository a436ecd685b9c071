// Memory Mosaic checkpoint folders: config.json (`"model_type": "memory_mosaic"`) + model.safetensors
// with the parameter names of params.ts, written atomically (temp file, fsync, rename), so a crash
// leaves the old checkpoint or the new one. Reading validates the config and every tensor's shape
// before anything is used; f16/bf16 files are widened to f32.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openHfFolder } from '../formats/hf-folder.js';
import { FormatError } from '../formats/errors.js';
import { writeFileAtomic, writeSafetensors } from '../formats/safetensors-writer.js';
import { readAsF32 } from '../models/tensor-convert.js';
import type { MosaicConfig } from './config.js';
import { mosaicConfigFromJson, mosaicConfigToJson } from './config.js';
import { mosaicParamSpecs, type MosaicParams } from './params.js';

/** Writes `dir`/config.json and `dir`/model.safetensors (f32); creates dir if needed. */
export function saveMosaicCheckpoint(dir: string, config: MosaicConfig, params: ReadonlyMap<string, Float32Array>,
                                     metadata?: Record<string, string>): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const tensors = mosaicParamSpecs(config).map((s) => {
    const t = params.get(s.name);
    if (!t) throw new Error(`saveMosaicCheckpoint: parameter ${s.name} is missing`);
    return { name: s.name, dtype: 'F32' as const, shape: s.shape, data: new Uint8Array(t.buffer, t.byteOffset, t.byteLength) };
  });
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...metadata });
  writeFileAtomic(join(dir, 'config.json'), [new TextEncoder().encode(JSON.stringify(mosaicConfigToJson(config), null, 2) + '\n')]);
}

export interface MosaicCheckpoint {
  config: MosaicConfig;
  params: MosaicParams;
  tokenizerJsonPath?: string;
  tokenizerConfig?: unknown;
  generationConfig?: unknown;
}

/** Reads a checkpoint folder; every parameter must be present with its exact shape. */
export function readMosaicCheckpoint(dir: string): MosaicCheckpoint {
  const hf = openHfFolder(dir);
  try {
    const config = mosaicConfigFromJson(hf.config, join(dir, 'config.json'));
    const params: MosaicParams = new Map();
    const expected = new Set<string>();
    for (const s of mosaicParamSpecs(config)) {
      expected.add(s.name);
      const e = hf.source.tensors.get(s.name);
      if (!e) throw new FormatError(hf.source.description, `tensor ${s.name} [${s.shape.join(', ')}] is missing`);
      if (e.shape.length !== s.shape.length || e.shape.some((x, i) => x !== s.shape[i])) {
        throw new FormatError(hf.source.description, `tensor ${s.name} has shape [${e.shape.join(', ')}], the config needs [${s.shape.join(', ')}]`);
      }
      if (e.dtype !== 'f32' && e.dtype !== 'f16' && e.dtype !== 'bf16') {
        throw new FormatError(hf.source.description, `tensor ${s.name} has dtype ${e.dtype}; memory mosaic checkpoints must be F32, F16 or BF16`);
      }
      params.set(s.name, readAsF32(hf.source, e));
    }
    for (const name of hf.source.tensors.keys()) {
      if (!expected.has(name)) throw new FormatError(hf.source.description, `unexpected tensor ${name} (not part of a memory mosaic with this config)`);
    }
    return { config, params, tokenizerJsonPath: hf.tokenizerJsonPath, tokenizerConfig: hf.tokenizerConfig, generationConfig: hf.generationConfig };
  } finally {
    hf.source.close();
  }
}
