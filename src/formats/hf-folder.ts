// A Hugging Face model folder: config.json + model.safetensors (or shards listed by
// model.safetensors.index.json) + optional generation_config.json, tokenizer.json, tokenizer_config.json.
// Every JSON file is parsed strictly (duplicate keys rejected). The shard index is hostile input too:
// its file names must stay inside the folder (no "../", no absolute paths), every mapped tensor must be
// in its shard, and no tensor may live in two shards, so the table handed to the loader is unambiguous.
// Symlinks are followed (the Hugging Face cache links snapshot files to ../../blobs), but names are
// checked lexically.

import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { FormatError } from './errors.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';
import { readTextFile } from './regular-file.js';
import { openSafetensors, type SafetensorsFile, type SafetensorsOptions } from './safetensors.js';
import type { TensorEntry, TensorSource } from './tensor-source.js';

export { llamaConfigFromHf } from './hf-config.js';

export interface HfFolder {
  dir: string;
  /** config.json as parsed (validate with llamaConfigFromHf). */
  config: unknown;
  source: TensorSource;
  generationConfig?: unknown;
  tokenizerJsonPath?: string;
  tokenizerConfig?: unknown;
}

/** Largest JSON side file we read whole (config, index, tokenizer_config). */
const MAX_JSON_BYTES = 64 << 20;

/** Reads and strictly parses a JSON file of at most maxBytes bytes (a regular file: see regular-file.ts). */
export function readJsonFile(path: string, maxBytes = MAX_JSON_BYTES): unknown {
  return parseJsonStrict(readTextFile(path, maxBytes, 'JSON file'), path);
}

/** Opens a Hugging Face model folder; the caller must close() the returned source. */
export function openHfFolder(dir: string, opts: SafetensorsOptions = {}): HfFolder {
  let isDir = false;
  try { isDir = statSync(dir).isDirectory(); } catch { /* reported below */ }
  if (!isDir) throw new FormatError(dir, 'not a directory; expected a Hugging Face model folder');
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new FormatError(dir, `no config.json in ${dir}; expected a Hugging Face model folder`);
  const config = readJsonFile(configPath);

  let source: TensorSource;
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(single)) source = openSafetensors(single, opts);
  else if (existsSync(index)) source = openShardedSafetensors(index, opts);
  else throw new FormatError(dir, `no model.safetensors or model.safetensors.index.json in ${dir}; expected a Hugging Face model folder`);

  try {
    const folder: HfFolder = { dir, config, source };
    const gen = join(dir, 'generation_config.json');
    if (existsSync(gen)) folder.generationConfig = readJsonFile(gen);
    const tok = join(dir, 'tokenizer.json');
    if (existsSync(tok)) folder.tokenizerJsonPath = tok;
    const tokCfg = join(dir, 'tokenizer_config.json');
    if (existsSync(tokCfg)) folder.tokenizerConfig = readJsonFile(tokCfg);
    return folder;
  } catch (e) {
    source.close();
    throw e;
  }
}

/** Resolves a shard name from the index, refusing anything that could leave the folder. */
function shardPath(dir: string, name: string, index: string): string {
  const bad = (why: string): never => {
    throw new FormatError(index, `weight_map: shard file ${JSON.stringify(name)} ${why}`);
  };
  if (name === '' || name.includes('\0')) bad('is not a valid file name');
  if (isAbsolute(name) || name.includes('\\') || /^[A-Za-z]:/.test(name)) bad('is an absolute or non-portable path; shard names must be relative to the folder');
  if (name.split('/').includes('..')) bad("contains '..'; shard files must stay inside the model folder");
  const root = resolve(dir);
  const full = resolve(root, name);
  if (!full.startsWith(root + sep)) bad('resolves outside the model folder');
  if (!existsSync(full)) bad(`does not exist in ${dir}`);
  return full;
}

/** Opens the shards named by a model.safetensors.index.json as one TensorSource. */
export function openShardedSafetensors(indexPath: string, opts: SafetensorsOptions = {}): TensorSource {
  const dir = resolve(indexPath, '..');
  const idx = readJsonFile(indexPath);
  if (!isJsonObject(idx)) throw new FormatError(indexPath, 'must be a JSON object with a weight_map');
  const wm = idx.weight_map;
  if (!isJsonObject(wm)) throw new FormatError(indexPath, 'weight_map is missing or not an object of tensor name → shard file');
  const names = Object.keys(wm);
  if (names.length === 0) throw new FormatError(indexPath, 'weight_map is empty');
  const fileOf = new Map<string, string>(); // tensor name → resolved shard path
  const shardNames = new Map<string, string>(); // resolved path → name as written
  const resolved = new Map<string, string>(); // name as written → resolved path
  for (const name of names) {
    const f = wm[name];
    if (typeof f !== 'string') throw new FormatError(indexPath, `weight_map[${JSON.stringify(name)}] must be a file name string`);
    let full = resolved.get(f);
    if (full === undefined) {
      full = shardPath(dir, f, indexPath);
      resolved.set(f, full);
      shardNames.set(full, f);
    }
    fileOf.set(name, full);
  }

  const shards = new Map<string, SafetensorsFile>();
  const closeAll = (): void => { for (const s of shards.values()) s.close(); };
  try {
    for (const full of [...shardNames.keys()].sort()) shards.set(full, openSafetensors(full, opts));
    const tensors = new Map<string, TensorEntry>();
    for (const [full, shard] of shards) {
      for (const [name, entry] of shard.tensors) {
        const prev = tensors.get(name);
        if (prev) throw new FormatError(indexPath, `tensor ${JSON.stringify(name)} is in two shards: ${shardNames.get(prev.file)} and ${shardNames.get(full)}`);
        if (fileOf.get(name) !== full) {
          throw new FormatError(indexPath, `tensor ${JSON.stringify(name)} in shard ${shardNames.get(full)} is not mapped to that shard by weight_map`);
        }
        tensors.set(name, entry);
      }
    }
    for (const [name, full] of fileOf) {
      if (!tensors.has(name)) throw new FormatError(indexPath, `weight_map maps tensor ${JSON.stringify(name)} to ${shardNames.get(full)}, which does not contain it`);
    }
    return {
      description: indexPath,
      tensors,
      read(entry: TensorEntry, dst: Uint8Array): void {
        const shard = shards.get(entry.file);
        if (!shard) throw new Error(`${indexPath}: read() of tensor ${JSON.stringify(entry.name)} from a file that is not one of its shards`);
        shard.read(entry, dst);
      },
      close: closeAll,
    };
  } catch (e) {
    closeAll();
    throw e;
  }
}
