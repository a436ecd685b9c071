// A Tokenizer from the vocabulary embedded in a GGUF file's metadata (tokenizer.ggml.*).
//
// The vocabulary is converted to the tokenizer.json that Hugging Face would ship for the same model
// and run through the same code as a tokenizer.json (json-tokenizer.ts):
//   'gpt2'  byte-level BPE (Llama 3, Qwen2, SmolLM2): vocab + merges; the pre-tokenizer regexes are
//           llama.cpp's for tokenizer.ggml.pre (src/llama-vocab.cpp, `llm_tokenizer_bpe`), applied in
//           sequence as Split(Isolated) steps, then the ByteLevel byte→char map.
//   'llama' SentencePiece BPE (Llama 2, Mistral): as transformers' LlamaTokenizerFast (legacy):
//           normalizer Prepend('▁') + Replace(' ', '▁'), BPE with byte_fallback, decoder
//           Replace('▁', ' ') · ByteFallback · Fuse · Strip(1 leading space). Merges are derived
//           from the scores when the file has none, as transformers' SentencePieceExtractor does.
// Control (3), unknown (2) and user-defined (4) tokens become added_tokens, matched whole in text.
//
// Metadata arrives as a Map from the GGUF reader: strings, numbers, plain arrays.

import { FormatError } from '../formats/errors.js';
import type { Tokenizer } from './types.js';
import {
  buildHfTokenizer, checkTokenLength, DEFAULT_MAX_MERGES, DEFAULT_MAX_VOCAB, END_OF_TURN_TOKENS, wrapHfTokenizer,
  type TokenizerLimits,
} from './json-tokenizer.js';

/** GGUF token types (llama.cpp `llama_token_type`). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** llama.cpp's regex sequence per tokenizer.ggml.pre, and whether it sets ignore_merges / add_bos. */
const PRE_TOKENIZERS: Record<string, { regexes: string[]; ignoreMerges: boolean; addBos: boolean }> = {
  default: { regexes: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_REGEX, '\\p{N}+', '[0-9][0-9][0-9]'], ignoreMerges: false, addBos: false },
  'llama-bpe': { regexes: [LLAMA3_REGEX], ignoreMerges: true, addBos: true },
  qwen2: { regexes: [QWEN2_REGEX], ignoreMerges: false, addBos: false },
  smollm: { regexes: ['\\p{N}', GPT2_REGEX], ignoreMerges: false, addBos: false },
  'gpt-2': { regexes: [GPT2_REGEX], ignoreMerges: false, addBos: false },
};
const PRE_ALIASES: Record<string, string> = {
  llama3: 'llama-bpe', 'llama-v3': 'llama-bpe', 'deepseek-r1-qwen': 'qwen2', starcoder: 'smollm', refact: 'smollm',
  'phi-2': 'gpt-2', mpt: 'gpt-2', olmo: 'gpt-2',
};

type Meta = Map<string, unknown>;

function arrayOf(meta: Meta, key: string, source: string, elem: 'string' | 'number', required: boolean): unknown[] | null {
  const v = meta.get(key);
  if (v === undefined) {
    if (required) throw new FormatError(source, `${key} is missing`);
    return null;
  }
  const arr = Array.isArray(v) ? v : ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : null;
  if (arr === null) throw new FormatError(source, `${key} must be an array of ${elem}s`);
  for (let i = 0; i < arr.length; i++) {
    if (typeof arr[i] !== elem) throw new FormatError(source, `${key}[${i}] must be a ${elem}, got ${typeof arr[i]}`);
  }
  return arr;
}

function optionalId(meta: Meta, key: string, source: string, nTokens: number): number | null {
  let v = meta.get(key);
  if (v === undefined) return null;
  if (typeof v === 'bigint') v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new FormatError(source, `${key} must be an integer`);
  if (v === -1 || v === 0xffffffff) return null; // LLAMA_TOKEN_NULL as stored by some converters
  if (v < 0 || v >= nTokens) throw new FormatError(source, `${key} = ${v} is outside the vocabulary of ${nTokens} tokens`);
  return v;
}

function optionalBool(meta: Meta, key: string, source: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new FormatError(source, `${key} must be a boolean`);
  return v;
}

/** Merges for a SentencePiece vocabulary: every split of a normal piece into two normal pieces,
 *  ordered by the merged piece's score (highest first), ties by the ids of the two halves. */
export function mergesFromScores(tokens: readonly string[], types: readonly number[], scores: readonly number[]): string[] {
  const idOf = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === TokenType.NORMAL && !idOf.has(t)) idOf.set(t, i);
  });
  const merges: { left: string; right: string; score: number; l: number; r: number }[] = [];
  for (const [piece, id] of idOf) {
    const chars = Array.from(piece);
    const local: typeof merges = [];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const l = idOf.get(left);
      const r = idOf.get(right);
      if (l !== undefined && r !== undefined) local.push({ left, right, score: scores[id], l, r });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score); // stable: ties keep vocabulary order
  return merges.map((m) => `${m.left} ${m.right}`);
}

/** The tokenizer.json equivalent of a GGUF vocabulary (exported for tests and tools). */
export function ggufVocabToTokenizerJson(meta: Meta, source: string, limits: TokenizerLimits = {}): Record<string, unknown> {
  const maxVocab = limits.maxVocab ?? DEFAULT_MAX_VOCAB;
  const maxMerges = limits.maxMerges ?? DEFAULT_MAX_MERGES;
  const model = meta.get('tokenizer.ggml.model');
  if (typeof model !== 'string') throw new FormatError(source, 'tokenizer.ggml.model is missing or not a string');
  if (model !== 'gpt2' && model !== 'llama') {
    throw new FormatError(source, `tokenizer.ggml.model '${model}' is not supported (gpt2 or llama)`);
  }
  const rawTokens = meta.get('tokenizer.ggml.tokens');
  if (Array.isArray(rawTokens) && rawTokens.length > maxVocab) {
    throw new FormatError(source, `tokenizer.ggml.tokens has ${rawTokens.length} entries, more than the limit of ${maxVocab} (raise maxVocab if this is intended)`);
  }
  const tokens = arrayOf(meta, 'tokenizer.ggml.tokens', source, 'string', true) as string[];
  const n = tokens.length;
  if (n === 0) throw new FormatError(source, 'tokenizer.ggml.tokens is empty');
  const types = (arrayOf(meta, 'tokenizer.ggml.token_type', source, 'number', false) as number[] | null) ?? new Array<number>(n).fill(TokenType.NORMAL);
  if (types.length !== n) throw new FormatError(source, `tokenizer.ggml.token_type has ${types.length} entries but tokenizer.ggml.tokens has ${n}`);
  types.forEach((t, i) => {
    if (!Number.isInteger(t) || t < 1 || t > 6) throw new FormatError(source, `tokenizer.ggml.token_type[${i}] = ${t} is not a token type (1..6)`);
  });
  const scores = arrayOf(meta, 'tokenizer.ggml.scores', source, 'number', false) as number[] | null;
  if (scores !== null && scores.length !== n) {
    throw new FormatError(source, `tokenizer.ggml.scores has ${scores.length} entries but tokenizer.ggml.tokens has ${n}`);
  }
  tokens.forEach((t, i) => {
    if (t.length === 0) throw new FormatError(source, `tokenizer.ggml.tokens[${i}] is empty`);
    checkTokenLength(source, `tokenizer.ggml.tokens[${i}]`, t);
  });

  // Null prototype: tokens such as "__proto__" or "constructor" are plain keys.
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, i) => { vocab[t] = i; }); // duplicates: the last id wins, as in llama.cpp's token_to_id

  let merges = arrayOf(meta, 'tokenizer.ggml.merges', source, 'string', model === 'gpt2') as string[] | null;
  if (merges !== null) {
    if (merges.length > maxMerges) throw new FormatError(source, `tokenizer.ggml.merges has ${merges.length} entries, more than the limit of ${maxMerges}`);
    merges.forEach((m, i) => {
      const sp = m.indexOf(' ', 1); // llama.cpp splits at the first space after position 0
      const left = m.slice(0, sp);
      const right = m.slice(sp + 1);
      if (sp < 0 || !(left in vocab) || !(right in vocab) || !(left + right in vocab)) {
        throw new FormatError(source, `tokenizer.ggml.merges[${i}] = ${JSON.stringify(m.slice(0, 60))} is not "left right" over tokens of the vocabulary`);
      }
    });
  }

  const added = [];
  for (let i = 0; i < n; i++) {
    const t = types[i];
    if (t === TokenType.CONTROL || t === TokenType.UNKNOWN || t === TokenType.USER_DEFINED) {
      added.push({ id: i, content: tokens[i], single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== TokenType.USER_DEFINED });
    }
  }

  if (model === 'gpt2') {
    const preName = meta.get('tokenizer.ggml.pre') ?? 'default';
    if (typeof preName !== 'string') throw new FormatError(source, 'tokenizer.ggml.pre must be a string');
    const pre = PRE_TOKENIZERS[PRE_ALIASES[preName] ?? preName];
    if (pre === undefined) {
      throw new FormatError(source, `tokenizer.ggml.pre '${preName}' is not supported (supported: ${[...Object.keys(PRE_TOKENIZERS), ...Object.keys(PRE_ALIASES)].join(', ')})`);
    }
    return {
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          ...pre.regexes.map((r) => ({ type: 'Split', pattern: { Regex: r }, behavior: 'Isolated', invert: false })),
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', vocab, merges: merges as string[], ignore_merges: pre.ignoreMerges, byte_fallback: false, unk_token: null, fuse_unk: false },
    };
  }

  // 'llama' (SentencePiece)
  if (merges === null) {
    if (scores === null) throw new FormatError(source, "tokenizer.ggml.scores is required for a 'llama' vocabulary without tokenizer.ggml.merges");
    merges = mergesFromScores(tokens, types, scores);
    if (merges.length > maxMerges) throw new FormatError(source, `the vocabulary implies ${merges.length} merges, more than the limit of ${maxMerges}`);
  }
  const unkId = optionalId(meta, 'tokenizer.ggml.unknown_token_id', source, n) ?? types.indexOf(TokenType.UNKNOWN);
  const addSpacePrefix = optionalBool(meta, 'tokenizer.ggml.add_space_prefix', source) ?? true;
  const replaceSpace = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  return {
    added_tokens: added,
    normalizer: addSpacePrefix ? { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, replaceSpace] } : replaceSpace,
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: { type: 'BPE', vocab, merges, ignore_merges: false, byte_fallback: true, fuse_unk: true, unk_token: unkId >= 0 ? tokens[unkId] : null },
  };
}

/**
 * Builds a Tokenizer from GGUF metadata. Malformed metadata (wrong types, length mismatches, ids out
 * of range, merges over unknown tokens) throws a FormatError naming `source` and the key.
 */
export function tokenizerFromGgufMetadata(meta: Map<string, unknown>, source: string, limits: TokenizerLimits = {}): Tokenizer {
  const json = ggufVocabToTokenizerJson(meta, source, limits);
  const model = meta.get('tokenizer.ggml.model') as string;
  const tokens = meta.get('tokenizer.ggml.tokens') as string[];
  const types = (arrayOf(meta, 'tokenizer.ggml.token_type', source, 'number', false) as number[] | null) ?? [];
  const n = tokens.length;
  const lib = buildHfTokenizer(json, { additional_special_tokens: [] }, source);
  // Duplicate token strings: the vocabulary map keeps the last id; give the earlier ids back their
  // text so they still decode (the library's id → token table is built from that map).
  const idToToken = lib.model.vocab;
  for (let i = 0; i < n; i++) if (idToToken[i] === undefined) idToToken[i] = tokens[i];

  const spm = model === 'llama';
  const bos = optionalId(meta, 'tokenizer.ggml.bos_token_id', source, n) ?? (spm && n > 1 ? 1 : null);
  const eos = optionalId(meta, 'tokenizer.ggml.eos_token_id', source, n) ?? (spm && n > 2 ? 2 : null);
  const eosIds: number[] = eos === null ? [] : [eos];
  for (const key of ['tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id']) {
    const id = optionalId(meta, key, source, n);
    if (id !== null) eosIds.push(id);
  }
  // As llama.cpp: control tokens with a known end-of-turn text also end generation.
  tokens.forEach((t, i) => {
    if (types[i] === TokenType.CONTROL && END_OF_TURN_TOKENS.includes(t)) eosIds.push(i);
  });
  optionalId(meta, 'tokenizer.ggml.padding_token_id', source, n); // validated, unused
  const preName = meta.get('tokenizer.ggml.pre');
  const defaultAddBos = spm || PRE_TOKENIZERS[PRE_ALIASES[String(preName)] ?? String(preName)]?.addBos === true;
  const chatTemplate = meta.get('tokenizer.chat_template');
  if (chatTemplate !== undefined && typeof chatTemplate !== 'string') throw new FormatError(source, 'tokenizer.chat_template must be a string');
  return wrapHfTokenizer(lib, {
    bosTokenId: bos,
    eosTokenId: eos,
    eosTokenIds: eosIds,
    addBosToken: optionalBool(meta, 'tokenizer.ggml.add_bos_token', source) ?? defaultAddBos,
    addEosToken: optionalBool(meta, 'tokenizer.ggml.add_eos_token', source) ?? false,
    chatTemplate: chatTemplate ?? null,
  }, source);
}
