// Loads a Hugging Face tokenizer: tokenizer.json (+ tokenizer_config.json, generation_config.json).
// What each file contributes:
//   tokenizer.json         vocabulary, merges, pre-tokenizer, decoder, added tokens, post-processor
//   tokenizer_config.json  bos_token / eos_token (strings or {content}), add_bos_token, add_eos_token,
//                          chat_template (a string, or a list of {name, template})
//   generation_config.json eos_token_id (a number or a list): every id that ends generation

import { FormatError, showValue } from '../formats/errors.js';
import { readTextFile } from '../formats/regular-file.js';
import { parseJsonStrict } from '../formats/json-strict.js';
import type { Tokenizer } from './types.js';
import {
  buildHfTokenizer, endOfTurnIds, postProcessorSpecials, validateTokenizerJson, wrapHfTokenizer,
  type TokenizerLimits,
} from './json-tokenizer.js';

export interface LoadHfTokenizerOptions extends TokenizerLimits {
  /** A path to tokenizer.json, or its parsed content. */
  tokenizerJson: string | object;
  tokenizerConfig?: object;
  generationConfig?: object;
  /** A chat template that overrides tokenizer_config's (e.g. the content of chat_template.jinja). */
  chatTemplate?: string;
  /** Name used in error messages when tokenizerJson is an object (default 'tokenizer.json'). */
  source?: string;
  /** Largest tokenizer.json file read from disk, in bytes. Default 256 MiB. */
  maxFileBytes?: number;
}

export const DEFAULT_MAX_TOKENIZER_FILE_BYTES = 256 * 1024 * 1024;

type Json = Record<string, unknown>;

function readJsonFile(path: string, maxBytes: number): unknown {
  const text = readTextFile(path, maxBytes, 'tokenizer.json');
  // strictly: with JSON.parse a second "model" key would silently replace the first
  return parseJsonStrict(text, path, { context: 'tokenizer.json is not valid JSON' });
}

/** bos_token / eos_token appear as "<s>", {"content": "<s>", …} or null. */
function tokenContent(value: unknown, source: string, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value) && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  throw new FormatError(source, `${field} must be a string or an object with a string "content"`);
}

function optionalBoolean(config: Json, field: string, source: string): boolean | undefined {
  const v = config[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new FormatError(source, `${field} must be true or false, got ${showValue(v)}`);
  return v;
}

/** tokenizer_config.chat_template: a string, a list of {name, template} or a {name: template} map;
 *  the template named 'default' is the chat template. */
export function chatTemplateFromConfig(value: unknown, source: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const [i, entry] of value.entries()) {
      if (typeof entry !== 'object' || entry === null || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new FormatError(source, `chat_template[${i}] must be {name: string, template: string}`);
      }
    }
    return (value as { name: string; template: string }[]).find((e) => e.name === 'default')?.template ?? null;
  }
  if (typeof value === 'object') {
    const t = (value as Json).default;
    if (t === undefined) return null;
    if (typeof t !== 'string') throw new FormatError(source, 'chat_template.default must be a string');
    return t;
  }
  throw new FormatError(source, 'chat_template must be a string or a list of {name, template}');
}

/** generation_config.eos_token_id: a number or a list of numbers. */
function generationEosIds(gen: Json, vocabSize: number): number[] {
  const v = gen.eos_token_id;
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((id, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new FormatError('generation_config.json', `eos_token_id${Array.isArray(v) ? `[${i}]` : ''} = ${showValue(id)} is not a token id in [0, ${vocabSize})`);
    }
    return id;
  });
}

function asConfig(value: object | undefined, source: string): Json {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FormatError(source, 'must be a JSON object');
  }
  return value as Json;
}

/**
 * Builds a Tokenizer from tokenizer.json and the two optional configs. Malformed files throw a
 * FormatError naming the file and field; vocabularies above `maxVocab` are refused before building.
 */
export function loadHfTokenizer(opts: LoadHfTokenizerOptions): Tokenizer {
  const source = typeof opts.tokenizerJson === 'string' ? opts.tokenizerJson : opts.source ?? 'tokenizer.json';
  const raw = typeof opts.tokenizerJson === 'string'
    ? readJsonFile(opts.tokenizerJson, opts.maxFileBytes ?? DEFAULT_MAX_TOKENIZER_FILE_BYTES)
    : opts.tokenizerJson;
  const json = validateTokenizerJson(raw, source, opts);
  const config = asConfig(opts.tokenizerConfig, 'tokenizer_config.json');
  const gen = asConfig(opts.generationConfig, 'generation_config.json');
  // The library reads only a few config fields; chat_template and token objects are ours to read.
  const lib = buildHfTokenizer(json, { additional_special_tokens: [] }, source);

  const idOf = (field: string): number | null => {
    const content = tokenContent(config[field], 'tokenizer_config.json', field);
    return content === null ? null : lib.token_to_id(content) ?? null;
  };
  const { prefix, suffix } = postProcessorSpecials(lib, source);
  const bos = idOf('bos_token') ?? prefix[0] ?? null;
  const eos = idOf('eos_token');
  let vocabSize = 0;
  for (const id of lib.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  const eosIds = [...(eos === null ? [] : [eos]), ...generationEosIds(gen, vocabSize), ...endOfTurnIds(lib)];
  // An explicit add_bos_token wins (transformers rebuilds the post-processor from it); otherwise
  // BOS is added exactly when tokenizer.json's post-processor adds it.
  const addBos = optionalBoolean(config, 'add_bos_token', 'tokenizer_config.json') ?? (bos !== null && prefix.includes(bos));
  const addEos = optionalBoolean(config, 'add_eos_token', 'tokenizer_config.json') ?? (eos !== null && suffix.includes(eos));
  const chatTemplate = opts.chatTemplate ?? chatTemplateFromConfig(config.chat_template, 'tokenizer_config.json');
  return wrapHfTokenizer(lib, { bosTokenId: bos, eosTokenId: eos, eosTokenIds: eosIds, addBosToken: addBos, addEosToken: addEos, chatTemplate }, source);
}
