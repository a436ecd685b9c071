// One face for the two trainable families: a Llama-architecture transformer (LlamaTrain, Hugging
// Face Llama names) and a Memory Mosaic (MosaicTrainModel). Both give the loss of a batch and the
// logits; both export a Hugging Face-style folder (config.json + model.safetensors [+ tokenizer])
// that Tessera's inference runs: loadModel for Llama, loadMosaic for the mosaic.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tape } from './autograd/tape.js';
import type { Tensor } from './autograd/tensor.js';
import type { TrainMemory } from './memory.js';
import { Params } from './params.js';
import type { Rng } from './rng.js';
import { reshape } from './autograd/ops-basic.js';
import { LlamaTrain, hfConfigJson, llamaTrainConfig } from './models/llama-train.js';
import { writeSafetensors } from '../formats/safetensors-writer.js';
import { MosaicTrainModel } from '../mosaic/model-train.js';
import { MOSAIC_INIT_PRESETS, mosaicConfig, mosaicConfigToJson } from '../mosaic/config.js';
import { saveMosaicCheckpoint } from '../mosaic/checkpoint.js';
import { parityFfn, type Family, type ModelSpec } from './train-config.js';

export interface TrainableModel {
  family: Family;
  params: Params;
  /** config.json of the exported folder. */
  configJson: Record<string, unknown>;
  /** Logits (B·T, V). */
  logits(tape: Tape, ids: ArrayLike<number>, B: number, T: number, rng?: Rng): Tensor;
  /** Mean cross-entropy over targets ≠ −100; perRow receives each row's loss (0 where ignored). */
  loss(tape: Tape, ids: ArrayLike<number>, targets: ArrayLike<number>, B: number, T: number, rng?: Rng, perRow?: Float32Array): Tensor;
  /** Writes config.json + model.safetensors (f32) into dir. */
  exportWeights(dir: string, metadata?: Record<string, string>): void;
}

export interface BuildOptions {
  vocabSize: number;
  /** Training context (Llama: max_position_embeddings ≥ it; mosaic: block_size). */
  context: number;
  seed: number;
  bosTokenId?: number | null;
  eosTokenId?: number | null;
}

/** Builds a freshly initialised model of `family` on `mem`. */
export function buildModel(family: Family, spec: ModelSpec, mem: TrainMemory, o: BuildOptions): TrainableModel {
  if (family === 'llama') {
    const config = llamaTrainConfig({
      vocab_size: o.vocabSize, hidden_size: spec.d, intermediate_size: spec.ffn ?? parityFfn(spec.d), num_hidden_layers: spec.layers,
      num_attention_heads: spec.heads, num_key_value_heads: spec.kvHeads ?? spec.heads,
      max_position_embeddings: Math.max(2048, o.context), bos_token_id: o.bosTokenId ?? null, eos_token_id: o.eosTokenId ?? null,
    });
    const params = new Params(mem, o.seed);
    const model = new LlamaTrain(config, params, { dropout: spec.dropout ?? 0 });
    const configJson = { ...hfConfigJson(config), training_context: o.context };   // read by eval-ppl as its default window
    return {
      family, params, configJson,
      logits: (tape, ids, B, T, rng) => model.forward(tape, ids, B, T, rng),
      loss: (tape, ids, targets, B, T, rng, perRow) => model.loss(tape, ids, targets, B, T, rng, perRow),
      exportWeights(dir, metadata) {
        mkdirSync(dir, { recursive: true });
        writeSafetensors(join(dir, 'model.safetensors'), params.list().map((t) => ({
          name: t.name, dtype: 'F32' as const, shape: [...t.shape], data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice(),
        })), { format: 'pt', ...metadata });
        writeFileSync(join(dir, 'config.json'), JSON.stringify(configJson, null, 2) + '\n');
      },
    };
  }
  const config = mosaicConfig({
    vocab_size: o.vocabSize, n_embd: spec.d, n_layer: spec.layers, n_head: spec.heads, block_size: o.context,
    dropout: spec.dropout ?? 0, ...(spec.pmem !== undefined ? { pmem_size: spec.pmem } : {}),
    ...MOSAIC_INIT_PRESETS[spec.init ?? 'library'], attn_dropout: spec.attnDropout ?? 0,
    bos_token_id: o.bosTokenId ?? null, eos_token_id: o.eosTokenId ?? null,
  });
  const model = new MosaicTrainModel(mem, config, o.seed);
  return {
    family, params: model.params, configJson: mosaicConfigToJson(config),
    logits: (tape, ids, B, T, rng) => reshape(tape, model.forward(tape, ids, B, T, { rng }), [B * T, config.vocab_size]),
    loss: (tape, ids, targets, B, T, rng, perRow) => model.loss(tape, ids, targets, B, T, { rng, perRow }),
    exportWeights: (dir, metadata) => saveMosaicCheckpoint(dir, config, model.snapshot(), metadata),
  };
}
