// A Tokenizer (src/tokenizer/types.ts) over a tokenizer.json object, run by @huggingface/tokenizers.
// Both front ends build one: hf-tokenizer.ts from a Hugging Face folder, gguf-tokenizer.ts from a
// GGUF vocabulary converted to tokenizer.json form. tokenizer.json is hostile input: its shape and
// sizes are checked here before the library builds anything (the library trusts its input, e.g.
// it allocates `vocab[id]` for whatever id a file names).
//
// BOS/EOS are added by this wrapper, not by the file's post-processor, so that a GGUF vocabulary
// and a tokenizer.json behave the same and `addBosToken` is the one switch that decides.

import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { FormatError, showMessage, showValue } from '../formats/errors.js';
import type { Tokenizer } from './types.js';
import { exponentialBacktrackingReason } from './regex-safety.js';
import { installLongWordBpe, type BpeModelInternals } from './long-word-bpe.js';

/** The part of @huggingface/tokenizers' Tokenizer we use. Its .d.ts files use extensionless
 *  relative imports, which NodeNext resolution cannot follow, so the types are restated here. */
export interface HfTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  get_added_tokens_decoder(): Map<number, { content: string; special: boolean }>;
  /** The BPE/WordPiece/Unigram model; `vocab` is its id → token table. */
  model: { vocab: (string | undefined)[] };
}
const HfTokenizerCtor = HfTokenizerClass as unknown as new (json: object, config: object) => HfTokenizer;

export interface TokenizerLimits {
  /** Largest accepted vocabulary (model vocab + added tokens, and any id + 1). Default 1,048,576. */
  maxVocab?: number;
  /** Largest accepted number of BPE merges. Default 4,194,304. */
  maxMerges?: number;
}

export const DEFAULT_MAX_VOCAB = 1 << 20;
/** Longest token text accepted (vocabulary entries and added tokens). Released vocabularies' longest
 *  tokens are a few hundred characters (runs of spaces or dashes); a 10M-character added token would
 *  cost 17–190× its size in the library's tables. */
export const MAX_TOKEN_CHARS = 4096;
export const DEFAULT_MAX_MERGES = 1 << 22;

/** What a front end decided about special tokens and the chat template. */
export interface TokenizerMeta {
  bosTokenId: number | null;
  /** The eos appended when addEosToken is set. */
  eosTokenId: number | null;
  /** Every id that ends generation (eos first). */
  eosTokenIds: readonly number[];
  addBosToken: boolean;
  addEosToken: boolean;
  chatTemplate: string | null;
}

/** End-of-turn markers that end generation when a vocabulary has them as special tokens, as
 *  llama.cpp's `special_eog_ids` does for checkpoints whose config names only the base eos. */
export const END_OF_TURN_TOKENS: readonly string[] = [
  '<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>',
];

type Json = Record<string, unknown>;

function isObject(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function checkId(source: string, what: string, id: unknown, maxVocab: number): number {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= maxVocab) {
    throw new FormatError(source, `${what} = ${showValue(id)} is not a token id (an integer in [0, ${maxVocab}))`);
  }
  return id;
}

export function checkTokenLength(source: string, what: string, token: string): void {
  if (token.length > MAX_TOKEN_CHARS) {
    throw new FormatError(source, `${what} is ${token.length} characters long, more than the ${MAX_TOKEN_CHARS} a token may have`);
  }
}

/**
 * Checks the parts of tokenizer.json the library relies on and returns a copy the library accepts
 * (absent optional sections become null). Refuses absurd sizes before anything is built.
 */
export function validateTokenizerJson(json: unknown, source: string, limits: TokenizerLimits = {}): Json {
  const maxVocab = limits.maxVocab ?? DEFAULT_MAX_VOCAB;
  const maxMerges = limits.maxMerges ?? DEFAULT_MAX_MERGES;
  if (!isObject(json)) throw new FormatError(source, 'tokenizer.json must be a JSON object');
  const model = json.model;
  if (!isObject(model)) throw new FormatError(source, 'tokenizer.json has no "model" object');
  const vocab = model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], …]
    if (vocab.length > maxVocab) {
      throw new FormatError(source, `model.vocab has ${vocab.length} entries, more than the limit of ${maxVocab} (raise maxVocab if this is intended)`);
    }
    vocab.forEach((e, i) => {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || typeof e[1] !== 'number') {
        throw new FormatError(source, `model.vocab[${i}] must be a [piece, score] pair`);
      }
      checkTokenLength(source, `model.vocab[${i}][0]`, e[0]);
    });
    // The library emits unk_id as it is for unknown pieces, so a bad one becomes a bad token id.
    if (model.unk_id !== undefined && model.unk_id !== null) checkId(source, 'model.unk_id', model.unk_id, vocab.length);
  } else if (isObject(vocab)) {
    let n = 0;
    // Counting first (for…in, no array of keys) so a 10M-entry vocab is refused cheaply.
    for (const k in vocab) {
      if (++n > maxVocab) {
        throw new FormatError(source, `model.vocab has more than ${maxVocab} entries (raise maxVocab if this is intended)`);
      }
      checkId(source, `model.vocab[${JSON.stringify(k.slice(0, 40))}]`, vocab[k], maxVocab);
      checkTokenLength(source, `model.vocab key ${JSON.stringify(k.slice(0, 40))}`, k);
    }
  } else {
    throw new FormatError(source, 'model.vocab is missing or is neither an object nor an array');
  }
  // An empty vocabulary encodes every prompt as nothing (BOS alone) and decodes every id as ''.
  if (Array.isArray(vocab) ? vocab.length === 0 : Object.keys(vocab).length === 0) {
    throw new FormatError(source, 'model.vocab is empty: a tokenizer without tokens turns every text into nothing (a damaged or truncated tokenizer.json)');
  }
  const type = model.type ?? (Array.isArray(vocab) ? 'Unigram' : 'merges' in model ? 'BPE' : undefined);
  if (type !== 'BPE' && type !== 'WordPiece' && type !== 'Unigram') {
    throw new FormatError(source, `model.type ${showValue(model.type)} is not supported (BPE, WordPiece or Unigram)`);
  }
  if (type === 'BPE') {
    const merges = model.merges;
    if (!Array.isArray(merges)) throw new FormatError(source, 'model.merges must be an array for a BPE model');
    if (merges.length > maxMerges) {
      throw new FormatError(source, `model.merges has ${merges.length} entries, more than the limit of ${maxMerges} (raise maxMerges if this is intended)`);
    }
    merges.forEach((m, i) => {
      const ok = typeof m === 'string'
        ? m.indexOf(' ', 1) > 0
        : Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string';
      if (!ok) throw new FormatError(source, `model.merges[${i}] must be "left right" or ["left", "right"]`);
    });
  }
  const added = json.added_tokens ?? [];
  if (!Array.isArray(added)) throw new FormatError(source, 'added_tokens must be an array');
  if (added.length > maxVocab) {
    throw new FormatError(source, `added_tokens has ${added.length} entries, more than the limit of ${maxVocab}`);
  }
  added.forEach((t, i) => {
    if (!isObject(t) || typeof t.content !== 'string' || t.content.length === 0) {
      throw new FormatError(source, `added_tokens[${i}] must be an object with a non-empty string "content"`);
    }
    checkId(source, `added_tokens[${i}].id`, t.id, maxVocab);
    checkTokenLength(source, `added_tokens[${i}].content`, t.content as string);
  });
  for (const section of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) checkPatterns(json[section], section, source);
  return {
    ...json,
    model: { ...model, type },
    added_tokens: added,
    normalizer: json.normalizer ?? null,
    pre_tokenizer: json.pre_tokenizer ?? null,
    post_processor: json.post_processor ?? null,
    decoder: json.decoder ?? null,
  };
}

/** Refuses every `{"Regex": …}` pattern under `value` that can backtrack exponentially (regex-safety.ts);
 *  the error names the field, e.g. pre_tokenizer.pretokenizers[0].pattern.Regex. */
function checkPatterns(value: unknown, path: string, source: string): void {
  // Iterative: the nesting of a hostile file is not bounded by anything but its size.
  const todo: [unknown, string][] = [[value, path]];
  while (todo.length > 0) {
    const [v, at] = todo.pop()!;
    if (Array.isArray(v)) { v.forEach((x, i) => todo.push([x, `${at}[${i}]`])); continue; }
    if (!isObject(v)) continue;
    for (const [k, x] of Object.entries(v)) {
      if (k === 'Regex' && typeof x === 'string') {
        const why = exponentialBacktrackingReason(x);
        if (why !== null) throw new FormatError(source, `${at}.Regex ${JSON.stringify(x.length > 80 ? `${x.slice(0, 80)}…` : x)} is refused: ${why}; rewrite the pattern without nested repetition`);
      } else {
        todo.push([x, `${at}.${k}`]);
      }
    }
  }
}

/** Builds the library tokenizer from a validated tokenizer.json; library errors name the source. */
export function buildHfTokenizer(json: Json, config: Json, source: string): HfTokenizer {
  let lib: HfTokenizer;
  try {
    lib = new HfTokenizerCtor(json, config);
  } catch (e) {
    throw new FormatError(source, `cannot build the tokenizer: ${showMessage((e as Error).message)}`);
  }
  if ((json.model as Json).type === 'BPE') installLongWordBpe(lib.model as unknown as BpeModelInternals);
  return lib;
}

/** The library reads some sections only when it first uses them: its errors there (TypeErrors on a
 *  malformed post-processor, say) are the file's fault and are reported as such. */
function libraryCall<T>(source: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(source, `the tokenizer fails to ${what} (a malformed section of the file?): ${showMessage((e as Error).message)}`);
  }
}

/** The tokens of `text`'s encoding that the post-processor puts before and after the text. */
export function postProcessorSpecials(lib: HfTokenizer, source: string): { prefix: number[]; suffix: number[] } {
  // Encoding 'a' with and without special tokens; what is added around it is the template's.
  const bare = libraryCall(source, 'encode "a"', () => lib.encode('a', { add_special_tokens: false }).ids);
  const full = libraryCall(source, 'add its special tokens (post_processor)', () => lib.encode('a', { add_special_tokens: true }).ids);
  for (let start = 0; start + bare.length <= full.length; start++) {
    if (bare.every((id, i) => full[start + i] === id)) {
      return { prefix: full.slice(0, start), suffix: full.slice(start + bare.length) };
    }
  }
  return { prefix: [], suffix: [] };
}

/** The vocabulary size: one past the largest id of the model vocabulary and the added tokens. */
function vocabSizeOf(lib: HfTokenizer): number {
  let n = 0;
  for (const id of lib.get_vocab(true).values()) if (id + 1 > n) n = id + 1;
  return n;
}

class JsonTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
  readonly addBosToken: boolean;
  readonly chatTemplate: string | null;
  private readonly appendedEos: number | null;

  constructor(private readonly lib: HfTokenizer, meta: TokenizerMeta, private readonly source: string) {
    this.vocabSize = vocabSizeOf(lib);
    this.bosTokenId = meta.bosTokenId;
    this.eosTokenIds = Object.freeze([...new Set(meta.eosTokenIds)]);
    this.addBosToken = meta.addBosToken && meta.bosTokenId !== null;
    this.appendedEos = meta.addEosToken ? meta.eosTokenId : null;
    this.chatTemplate = meta.chatTemplate;
  }

  /** Special tokens written in `text` (e.g. `<|eot_id|>` from a rendered chat template) are parsed
   *  as those tokens, as Hugging Face does. Characters the vocabulary cannot encode (only possible
   *  without byte fallback and without an unknown token) are dropped. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`${this.source}: encode() expects a string, got ${typeof text}`);
    const ids = text.length === 0 ? [] : libraryCall(this.source, 'encode this text', () => this.lib.encode(text, { add_special_tokens: false }).ids)
      .filter((id) => id !== undefined && id !== null);
    if (opts.addSpecialTokens ?? true) {
      if (this.addBosToken) ids.unshift(this.bosTokenId as number);
      if (this.appendedEos !== null) ids.push(this.appendedEos);
    }
    return ids;
  }

  /** No clean-up of spaces before punctuation (Hugging Face's `clean_up_tokenization_spaces`):
   *  generated text is returned exactly, so decode(encode(s)) === s. */
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const known: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`${this.source}: decode(): token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (this.lib.id_to_token(id) !== undefined) known.push(id); // ids in holes of the vocabulary decode to ''
    }
    if (known.length === 0) return '';
    return libraryCall(this.source, 'decode these ids', () => this.lib.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false }));
  }

  idToToken(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 ? this.lib.id_to_token(id) : undefined;
  }
}

/** Wraps a built library tokenizer in the Tokenizer contract. */
export function wrapHfTokenizer(lib: HfTokenizer, meta: TokenizerMeta, source: string): Tokenizer {
  return new JsonTokenizer(lib, meta, source);
}

/** Ids of END_OF_TURN_TOKENS present in the vocabulary as special (added) tokens. */
export function endOfTurnIds(lib: HfTokenizer): number[] {
  const added = lib.get_added_tokens_decoder();
  const out: number[] = [];
  for (const [id, t] of added) if (t.special && END_OF_TURN_TOKENS.includes(t.content)) out.push(id);
  return out;
}
