// The parsers the fuzzers attack, each with its seeds (small valid inputs), its mutation and the
// contract every mutant must meet: be accepted whole (and then pass the target's consistency checks),
// or be refused with the target's error class and a message that names the input. Anything else
// (another exception type, a broken invariant) is a crash; hangs and memory blow-ups are caught by the
// runner (src/testing/fuzz.ts), not here.
//
//   gguf         a tiny llama GGUF (with vocabulary and chat template) and two odd-typed files, as the
//                loader reads them: header, every tensor, config, RoPE factors, tokenizer, template
//   safetensors  three small files: header, every tensor inside the file and tiling the data section
//   tokenizer    tokenizer.json (BPE, WordPiece, Unigram), loaded from a file, then encode/decode
//   config       config.json of every supported family (llama, mistral, qwen2, memory_mosaic)
//   template     chat templates rendered over a short conversation

import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { FormatError } from '../formats/errors.js';
import { openGguf } from '../formats/gguf.js';
import { writeGguf } from '../formats/gguf-writer.js';
import { llamaConfigFromGguf, ggufRopeFreqFactors, hfTensorName, GGUF_LLAMA_ARCHS } from '../formats/gguf-llama.js';
import { convertHfToGguf } from '../formats/hf-to-gguf.js';
import { SAFETENSORS_DTYPES, openSafetensors } from '../formats/safetensors.js';
import { writeSafetensors } from '../formats/safetensors-writer.js';
import { readJsonFile } from '../formats/hf-folder.js';
import { llamaConfigFromHf } from '../formats/hf-config.js';
import { isJsonObject } from '../formats/json-strict.js';
import { mosaicConfigFromJson, MOSAIC_MODEL_TYPE } from '../mosaic/config.js';
import { derive, type LlamaConfig } from '../models/config.js';
import { loadHfTokenizer } from '../tokenizer/hf-tokenizer.js';
import { tokenizerFromGgufMetadata } from '../tokenizer/gguf-tokenizer.js';
import { DEFAULT_CHATML_TEMPLATE, applyChatTemplate, renderChatTemplate, type ChatMessage } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { buildTinyTokenizerJson, tinyTokenizerGgufVocab, TINY_CHAT_TEMPLATE } from './tiny-tokenizer.js';
import { hfConfigJson, presetConfig, TINY_PRESETS } from './checkpoints.js';
import { randomLlamaTensors } from './random-model.js';
import { uniform01, deriveSeed } from '../data/rng.js';
import { mutateBytes, mutateJsonText, mutateJsonTree, mutateTemplate, refusalRule, type Rand } from './mutate.js';

export const FUZZ_PARSERS = ['gguf', 'safetensors', 'tokenizer', 'config', 'template'] as const;
export type FuzzParser = (typeof FUZZ_PARSERS)[number];

/** One parser under fuzz, prepared in a scratch folder (seed files, case files). */
export interface FuzzTarget {
  /** The error class names a clean refusal may have. */
  readonly refusals: readonly string[];
  /** The mutant of case `rand`'s stream (bytes of a file, or template text). */
  mutant(rand: Rand): Uint8Array | string;
  /**
   * Parses a mutant as Tessera does. Returns what was accepted ('file', 'file+config+tokenizer', …);
   * throws a refusal error for a refused input, anything else is a crash.
   */
  parse(input: Uint8Array | string, caseIndex: number): string;
}

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Texts every accepted tokenizer must encode and decode: plain, special tokens, and 40 'a's then '!'
 *  (exponential for a backtracking pre-tokenizer regex such as (a+)+$). */
const SAMPLE_TEXTS = ['Hello world, 123 times!', '<|begin_of_text|>  ünïcödé\n\ttabs', `${'a'.repeat(40)}!`];

/** A short conversation every accepted template is rendered over. */
const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Count to 3' },
];

/** Writes each case to its own file (rewriting one file in place makes some filesystems flush on
 *  every truncate) and removes it afterwards. */
function withCaseFile<T>(dir: string, name: string, bytes: Uint8Array, fn: (path: string) => T): T {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  try {
    return fn(path);
  } finally {
    unlinkSync(path);
  }
}

/** A refusal must be of an expected class and name the input it refused. */
function checkRefusal(e: unknown, source: string): never {
  if (e instanceof FormatError) assert.ok(e.message.includes(source), `refusal does not name ${source}: ${e.message}`);
  throw e;
}

/** Encodes and decodes the sample texts and the first ids: an accepted tokenizer must never throw. */
function exercise(tok: Tokenizer): void {
  for (const text of SAMPLE_TEXTS) {
    const ids = tok.encode(text);
    for (const id of ids) assert.ok(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `encode gave id ${id} outside [0, ${tok.vocabSize})`);
    assert.equal(typeof tok.decode(ids), 'string');
  }
  const first = Array.from({ length: Math.min(tok.vocabSize, 512) }, (_, i) => i);
  assert.equal(typeof tok.decode(first), 'string');
}

// ---------------------------------------------------------------------------------------------- GGUF

function ggufSeeds(dir: string): Uint8Array[] {
  // A whole tiny llama model: 1 layer, llama3 RoPE scaling (so a rope_freqs tensor), a 270-token vocabulary.
  const tokJson = buildTinyTokenizerJson({ vocabSize: 270 });
  const vocab = tinyTokenizerGgufVocab(tokJson);
  const base = presetConfig('llama3-tiny');
  const config: LlamaConfig = {
    ...base, vocab_size: vocab.tokens.length, hidden_size: 32, intermediate_size: 32, num_hidden_layers: 1,
    num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16,
  };
  const model = join(dir, 'seed-model.gguf');
  convertHfToGguf({
    config, outFile: model, outType: 'q8_0', name: 'fuzz',
    tensors: Array.from(randomLlamaTensors(config, 1), (t) => ({ name: t.name, dtype: 'f32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
    tokenizer: { ...vocab, addBos: true, chatTemplate: TINY_CHAT_TEMPLATE },
  });
  // Two files of odd types and alignment (no model): the tensor reader and the metadata types.
  const a = join(dir, 'seed-a.gguf');
  writeGguf(a, [
    ['general.architecture', 'llama'],
    ['llama.context_length', 128, 'u32'],
    ['tokenizer.ggml.tokens', ['<s>', 'a', 'bc'], 'string[]'],
    ['tokenizer.ggml.scores', [0, -1.5, 2], 'f32[]'],
    ['tokenizer.ggml.token_type', [3, 1, 1], 'i32[]'],
    ['x.u64', 2n ** 40n, 'u64'],
    ['x.bool', true],
  ], [
    { name: 'token_embd.weight', ggmlType: 'Q8_0', shape: [3, 32], data: new Uint8Array(3 * 34).fill(1) },
    { name: 'output_norm.weight', ggmlType: 'F32', shape: [32], data: new Uint8Array(128).fill(2) },
  ]);
  const b = join(dir, 'seed-b.gguf');
  writeGguf(b, [['general.name', 'tiny'], ['a.i8', [-1, 2], 'i8[]']], [
    { name: 'q4', ggmlType: 'Q4_0', shape: [2, 32], data: new Uint8Array(36).fill(0x55) },
    { name: 'h', ggmlType: 'F16', shape: [2, 2, 2], data: new Uint8Array(16).fill(3) },
    { name: 'bf', ggmlType: 'BF16', shape: [3], data: new Uint8Array(6).fill(4) },
  ], { alignment: 16 });
  return [model, a, b].map((p) => new Uint8Array(readFileSync(p)));
}

function ggufTarget(dir: string): FuzzTarget {
  const seeds = ggufSeeds(dir);
  return {
    refusals: ['FormatError', 'ChatTemplateError'],
    mutant: (r) => mutateBytes(pick(r, seeds), r),
    parse: (input, i) => withCaseFile(dir, `case-${i}.gguf`, input as Uint8Array, (path) => {
      const bytes = input as Uint8Array;
      let f;
      try { f = openGguf(path); } catch (e) { return checkRefusal(e, path); }
      try {
        for (const e of f.tensors.values()) {
          assert.ok(e.offset + e.byteLength <= bytes.length, `tensor ${e.name} ends outside the file`);
          if (e.dtype === 'other') continue;
          const dst = new Uint8Array(e.byteLength);
          f.read(e, dst);
          assert.deepEqual(dst, bytes.subarray(e.offset, e.offset + e.byteLength), `tensor ${e.name} read back different bytes`);
        }
        const stages = ['file'];
        // As openCheckpoint: the model config and RoPE factors of a llama/qwen2 file, then its tokenizer.
        if ((GGUF_LLAMA_ARCHS as readonly unknown[]).includes(f.metadata.get('general.architecture'))) {
          llamaConfigFromGguf(f);
          ggufRopeFreqFactors(f);
          for (const name of f.tensors.keys()) if (name !== 'rope_freqs.weight') hfTensorName(name, path);
          stages.push('config');
        }
        if (f.metadata.has('tokenizer.ggml.tokens')) {
          const tok = tokenizerFromGgufMetadata(f.metadata as Map<string, unknown>, path);
          exercise(tok);
          stages.push('tokenizer');
          if (tok.chatTemplate !== null) {
            applyChatTemplate(tok, path, { messages: CONVERSATION, addGenerationPrompt: true });
            stages.push('template');
          }
        }
        return stages.join('+');
      } catch (e) {
        return checkRefusal(e, path);
      } finally {
        f.close();
      }
    }),
  };
}

// ------------------------------------------------------------------------------------ safetensors

function safetensorsSeeds(dir: string): Uint8Array[] {
  const u8 = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
  const specs = [
    { meta: { format: 'pt' }, t: [['w', 'F32', [2, 3]], ['b', 'F16', [3]], ['n', 'BF16', [2, 2]]] },
    { meta: undefined, t: [['x', 'I8', [5]], ['e', 'F32', [0]], ['s', 'F64', []], ['m', 'BOOL', [1, 3]]] },
    { meta: { a: 'b', c: 'ünï' }, t: [['only', 'U16', [4]]] },
  ] as const;
  return specs.map((s, i) => {
    const p = join(dir, `seed${i}.safetensors`);
    writeSafetensors(p, s.t.map(([name, dtype, shape]) => {
      const numel = (shape as readonly number[]).reduce((a, b) => a * b, 1);
      return { name, dtype, shape: [...shape], data: u8(numel * SAFETENSORS_DTYPES[dtype].bytes) };
    }), s.meta);
    return new Uint8Array(readFileSync(p));
  });
}

function headerLength(f: Uint8Array): number {
  return f.byteLength >= 8 ? Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true)) : 0;
}

/** A file from a (possibly edited) header text and a data section. */
function withHeader(text: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

/** One safetensors-specific mutation: the header length, data_offsets, the data section, or a JSON
 *  edit of the header. */
function mutateSafetensors(src: Uint8Array, r: Rand): Uint8Array {
  const at = (n: number): number => Math.floor(r() * n);
  const n = headerLength(src);
  const text = new TextDecoder().decode(src.subarray(8, 8 + n));
  const data = src.subarray(8 + n);
  if (src.byteLength < 8) return mutateBytes(src, r, 8);
  switch (at(6)) {
    case 0: return mutateBytes(src, r, 8 + n);
    case 1: { // the header length: small shifts, zero, a power of two, a random u64
      const f = src.slice();
      const choice = at(4);
      const v = choice === 0 ? BigInt(Math.max(0, n + at(33) - 16)) : choice === 1 ? 0n
        : choice === 2 ? (1n << BigInt(at(64))) : BigInt.asUintN(64, BigInt(at(2 ** 32)) << 32n | BigInt(at(2 ** 32)));
      new DataView(f.buffer).setBigUint64(0, v, true);
      return f;
    }
    case 2: { // shift one tensor's data_offsets, keeping its span (holes, overlaps, reordering)
      const offs = [...text.matchAll(/"data_offsets":\[(\d+),(\d+)\]/g)];
      if (offs.length === 0) return src;
      const m = pick(r, offs), k = at(17) - 8;
      const b = Math.max(0, Number(m[1]) + k), e = b + Number(m[2]) - Number(m[1]);
      return withHeader(text.slice(0, m.index) + `"data_offsets":[${b},${e}]` + text.slice(m.index! + m[0].length), data);
    }
    case 3: { // change the data section's length, keeping the header
      const d = r() < 0.5 ? data.subarray(0, at(data.length + 1)) : Uint8Array.from([...data, ...new Array(1 + at(9)).fill(7)]);
      return withHeader(text, d);
    }
    default: return withHeader(mutateJsonText(text, r), data);
  }
}

function safetensorsTarget(dir: string): FuzzTarget {
  const seeds = safetensorsSeeds(dir);
  return {
    refusals: ['FormatError'],
    mutant: (r) => {
      const f = mutateSafetensors(pick(r, seeds), r);
      return r() < 0.3 ? mutateSafetensors(f, r) : f; // some cases get two mutations
    },
    parse: (input, i) => withCaseFile(dir, `case-${i}.safetensors`, input as Uint8Array, (path) => {
      const f = input as Uint8Array;
      let src;
      try { src = openSafetensors(path); } catch (e) { return checkRefusal(e, path); }
      try {
        // Accepted: every tensor inside the data section, and together they tile it exactly.
        let sum = 0;
        for (const e of src.tensors.values()) {
          assert.ok(e.offset >= src.dataStart && e.offset + e.byteLength <= f.byteLength, `${e.name} lies outside the data section`);
          const numel = e.shape.reduce((a, b) => a * b, 1);
          assert.ok(Number.isSafeInteger(numel) && e.byteLength % Math.max(numel, 1) === 0, `${e.name}: ${e.byteLength} bytes for ${numel} elements`);
          const buf = new Uint8Array(e.byteLength);
          src.read(e, buf);
          assert.deepEqual(buf, f.subarray(e.offset, e.offset + e.byteLength), `${e.name} read back different bytes`);
          sum += e.byteLength;
        }
        assert.equal(src.dataStart + sum, f.byteLength, 'the tensors do not tile the data section');
        return 'file';
      } finally {
        src.close();
      }
    }),
  };
}

// ------------------------------------------------------------------------------------- tokenizer

function tokenizerSeeds(): unknown[] {
  const bpe = buildTinyTokenizerJson({ vocabSize: 270 });
  const wordPiece = {
    version: '1.0', added_tokens: [{ id: 0, content: '[UNK]', special: true }, { id: 1, content: '[CLS]', special: true }],
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' }, post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100,
      vocab: { '[UNK]': 0, '[CLS]': 1, hello: 2, world: 3, '##s': 4, a: 5, '##a': 6, '!': 7, ',': 8, '1': 9, '##2': 10 } },
  };
  const unigram = {
    version: '1.0', added_tokens: [{ id: 0, content: '<unk>', special: true }, { id: 1, content: '<s>', special: true }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: null, decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 0, byte_fallback: false,
      vocab: [['<unk>', 0], ['<s>', 0], ['▁', -2], ['▁hello', -3], ['a', -4], ['▁a', -4.5], ['!', -5], ['o', -6], ['l', -6], ['h', -7], ['e', -7]] },
  };
  return [bpe, wordPiece, unigram];
}

function tokenizerTarget(dir: string): FuzzTarget {
  const seeds = tokenizerSeeds();
  return {
    refusals: ['FormatError'],
    mutant: (r) => new TextEncoder().encode(mutateJsonTree(pick(r, seeds), r)),
    parse: (input, i) => withCaseFile(dir, `case-${i}-tokenizer.json`, input as Uint8Array, (path) => {
      let tok;
      try { tok = loadHfTokenizer({ tokenizerJson: path }); } catch (e) { return checkRefusal(e, path); }
      exercise(tok);
      return 'tokenizer';
    }),
  };
}

// ---------------------------------------------------------------------------------------- config

function configSeeds(): unknown[] {
  const out: unknown[] = TINY_PRESETS.map((p) => hfConfigJson(presetConfig(p)));
  out.push({ ...hfConfigJson({ ...presetConfig('smollm2-tiny'), model_type: 'mistral' }), sliding_window: 256 });
  out.push({
    architectures: ['MemoryMosaicForCausalLM'], model_type: MOSAIC_MODEL_TYPE, vocab_size: 2048, n_embd: 128, n_layer: 4, n_head: 4,
    block_size: 128, dropout: 0, pmem_size: 448, leaky_beta_min: 0.5, leaky_beta_max: 5, key_scale_max: 5, layer_norm_eps: 1e-5,
    bos_token_id: 2047, eos_token_id: 2047, tie_word_embeddings: true,
  });
  return out;
}

function configTarget(dir: string): FuzzTarget {
  const seeds = configSeeds();
  return {
    refusals: ['FormatError'],
    mutant: (r) => new TextEncoder().encode(mutateJsonTree(pick(r, seeds), r)),
    parse: (input, i) => withCaseFile(dir, `case-${i}-config.json`, input as Uint8Array, (path) => {
      try {
        // As the loader: strict JSON from a file, then the family's validation by model_type.
        const raw = readJsonFile(path);
        if (isJsonObject(raw) && raw.model_type === MOSAIC_MODEL_TYPE) {
          mosaicConfigFromJson(raw, path);
          return 'mosaic';
        }
        const c = llamaConfigFromHf(raw, path);
        const { headDim, qDim, kvDim, groupSize } = derive(c);
        for (const [k, v] of Object.entries({ headDim, qDim, kvDim, groupSize })) {
          assert.ok(Number.isSafeInteger(v) && v > 0, `accepted config derives ${k} = ${v}`);
        }
        return 'llama';
      } catch (e) {
        return checkRefusal(e, path);
      }
    }),
  };
}

// -------------------------------------------------------------------------------------- template

/** Templates in the shapes checkpoints ship: Llama 3, ChatML, and a Mistral-style one that raises on
 *  roles out of order and loops with loop.index0. */
const TEMPLATE_SEEDS: readonly string[] = [
  TINY_CHAT_TEMPLATE,
  DEFAULT_CHATML_TEMPLATE,
  "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('roles must alternate') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
  "{%- set ns = namespace(n=0) -%}{%- for m in messages if m.role != 'system' -%}{%- set ns.n = ns.n + 1 -%}" +
  "{{ ns.n }}. {{ m.role|upper }}: {{ m.content|replace('\\n', ' ')|trim }}\n{%- endfor -%}{%- if add_generation_prompt %}{{ '> ' }}{% endif -%}",
];

function templateTarget(): FuzzTarget {
  return {
    refusals: ['ChatTemplateError'],
    mutant: (r) => mutateTemplate(pick(r, TEMPLATE_SEEDS), r),
    parse: (input) => {
      // Without the system message, so the unmutated Mistral-style seed (alternating roles) renders.
      const out = renderChatTemplate(input as string, { messages: CONVERSATION.slice(1), addGenerationPrompt: true, bosToken: '<s>', eosToken: '</s>' });
      assert.equal(typeof out, 'string');
      return 'rendered';
    },
  };
}

/** Prepares `parser`'s target; `scratch` holds its seed and case files. */
export function fuzzTarget(parser: FuzzParser, scratch: string): FuzzTarget {
  mkdirSync(scratch, { recursive: true });
  switch (parser) {
    case 'gguf': return ggufTarget(scratch);
    case 'safetensors': return safetensorsTarget(scratch);
    case 'tokenizer': return tokenizerTarget(scratch);
    case 'config': return configTarget(scratch);
    case 'template': return templateTarget();
    default: {
      const never: never = parser;
      throw new Error(`fuzzTarget: unknown parser ${JSON.stringify(never)} (known: ${FUZZ_PARSERS.join(', ')})`);
    }
  }
}

/** Case `index`'s random stream: a function of (seed, parser, index) alone, so any case reruns alone. */
export function caseRand(parser: FuzzParser, seed: number, index: number): Rand {
  return uniform01(deriveSeed(seed, FUZZ_PARSERS.indexOf(parser), index));
}

export type CaseOutcome =
  | { kind: 'accepted'; label: string }
  | { kind: 'refused'; label: string }
  | { kind: 'crash'; label: string };

/** The case file's path in a message. A match may start only where a non-space run starts, so the
 *  scan is linear: without the lookbehind, a 50 KB message without spaces took seconds (every start
 *  position rescanned the run). */
const CASE_PATH = /(?<!\S)\S*case-\d+[\w.-]*/g;

/** Runs one case: accepted (label: what was accepted), refused (label: the rule, numbers blanked) or
 *  crash (label: the unexpected error). */
export function runCase(target: FuzzTarget, parser: FuzzParser, seed: number, index: number): CaseOutcome {
  const input = target.mutant(caseRand(parser, seed, index));
  try {
    return { kind: 'accepted', label: target.parse(input, index) };
  } catch (e) {
    const name = e instanceof Error ? e.name : typeof e;
    const message = e instanceof Error ? e.message : String(e);
    if (target.refusals.includes(name)) return { kind: 'refused', label: refusalRule(message.replace(CASE_PATH, 'FILE')) };
    return { kind: 'crash', label: `${name}: ${message.slice(0, 500)}` };
  }
}
