// Continuing training from an exported long-context model folder (config `initFrom`): its parameters
// only (a fresh optimizer and step counter). The folder must be this config's model: the same
// architecture fields in config.json and the same tokenizer.json; anything else is refused, naming
// the field, rather than starting from weights that mean something else.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../../models/config.js';
import type { Params } from '../../training/params.js';
import { initFromModel } from '../../training/train-init.js';

/** The config.json fields that fix the parameters' meaning (max_position_embeddings may grow). */
const ARCH_FIELDS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'rope_theta', 'tie_word_embeddings'] as const;

/** Throws unless `folder` holds a model of `config`'s architecture with the same tokenizer. */
export function checkInitFolder(folder: string, config: LlamaConfig, tokenizerJson: object): void {
  const cfgPath = join(folder, 'config.json'), tokPath = join(folder, 'tokenizer.json');
  for (const p of [cfgPath, tokPath]) if (!existsSync(p)) throw new Error(`initFrom: ${p} does not exist; initFrom must be a folder exported by long-context/train.js`);
  const theirs = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const ours = config as unknown as Record<string, unknown>;
  for (const f of ARCH_FIELDS) {
    if (theirs[f] !== ours[f]) throw new Error(`initFrom: ${folder} has ${f} = ${JSON.stringify(theirs[f])} but this config's model has ${JSON.stringify(ours[f])}; the architectures must match`);
  }
  if (readFileSync(tokPath, 'utf8') !== JSON.stringify(tokenizerJson)) throw new Error(`initFrom: ${tokPath} differs from the tokenizer this config builds (tokenizer.vocabSize / seed); token ids would not mean the same`);
}

/** Copies the folder's parameters into `params` after checking it is this config's model. */
export function initFromFolder(params: Params, folder: string, config: LlamaConfig, tokenizerJson: object): void {
  checkInitFolder(folder, config, tokenizerJson);
  initFromModel(params, folder);
}
