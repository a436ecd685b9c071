// Starting a run from a trained model folder (config `init`): a fine-tune. Every parameter is copied
// from the folder's model.safetensors by name; a parameter whose first dimension grew (the embedding
// after tokens were added to the vocabulary) takes the old rows and keeps its initialisation in the
// new ones. Anything else that differs is an error naming the parameter.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors } from '../formats/safetensors.js';
import { shapeStr } from './autograd/tensor.js';
import type { Params } from './params.js';

export function initFromModel(params: Params, folder: string): void {
  const path = join(folder, 'model.safetensors');
  if (!existsSync(path)) throw new Error(`init: ${path} does not exist; init must be a model folder written by tessera train (run the base training first)`);
  const f = openSafetensors(path);
  try {
    for (const name of f.tensors.keys()) if (!params.has(name)) throw new Error(`init: ${path} holds ${name}, which this model does not have (another architecture?)`);
    for (const p of params.list()) {
      const e = f.tensors.get(p.name);
      if (!e) throw new Error(`init: ${path} has no tensor ${p.name}; the config's model must match the folder's`);
      if (e.dtype !== 'f32') throw new Error(`init: ${path}: ${p.name} is ${e.dtype}, expected f32`);
      const same = e.shape.length === p.shape.length && e.shape.every((n, i) => n === p.shape[i]);
      const grown = !same && e.shape.length === p.shape.length && e.shape[0] < p.shape[0] && e.shape.slice(1).every((n, i) => n === p.shape[i + 1]);
      if (!same && !grown) throw new Error(`init: ${p.name} is ${shapeStr(e.shape)} in ${path} but ${shapeStr(p.shape)} here; the config's model must match the folder's`);
      const dst = p.data.subarray(0, e.byteLength / 4);
      f.read(e, new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength));
    }
  } finally {
    f.close();
  }
}
