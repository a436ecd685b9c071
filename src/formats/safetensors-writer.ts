// Safetensors writer (single file and Hugging Face-style shards). Files are written atomically: into a
// temporary file in the same folder, fsync'd, then renamed over the target, so a crash leaves either
// the old file or the new one, never half of one (docs/RELIABILITY.md, "Training must not lose work").
// The header is padded with spaces so the data section starts at a multiple of 8, as the reference
// implementation does; tensors are laid out in the order given.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SAFETENSORS_DTYPES, type SafetensorsDType } from './safetensors.js';

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Raw little-endian bytes; byteLength must equal numel × dtype size. */
  data: Uint8Array;
}

/** Writes `chunks` to `path` atomically (temp file in the same folder, fsync, rename, fsync folder). */
export function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx');
  try {
    for (const c of chunks) {
      let done = 0;
      while (done < c.byteLength) done += writeSync(fd, c, done, Math.min(c.byteLength - done, 1 << 30));
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw e;
  }
  // Make the rename itself durable; some platforms cannot fsync a directory, which is harmless.
  try {
    const dfd = openSync(dirname(path), 'r');
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* best effort */ }
}

function checkTensor(path: string, t: TensorToWrite): number {
  const where = `writeSafetensors(${path}): tensor ${JSON.stringify(t.name)}`;
  if (t.name === '__metadata__') throw new Error(`${where}: the name __metadata__ is reserved`);
  const info = Object.hasOwn(SAFETENSORS_DTYPES, t.dtype) ? SAFETENSORS_DTYPES[t.dtype] : undefined;
  if (!info) throw new Error(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
  let numel = 1;
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: shape [${t.shape.join(', ')}] has a dimension that is not a non-negative integer`);
    numel *= d;
  }
  const bytes = numel * info.bytes;
  if (!Number.isSafeInteger(bytes) || t.data.byteLength !== bytes) {
    throw new Error(`${where}: data is ${t.data.byteLength} bytes but shape [${t.shape.join(', ')}] of ${t.dtype} needs ${bytes}`);
  }
  return bytes;
}

/** The bytes of a complete safetensors file's first part: 8-byte length + padded JSON header. */
export function encodeSafetensorsHeader(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new Error(`writeSafetensors(${path}): metadata[${JSON.stringify(k)}] must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`writeSafetensors(${path}): duplicate tensor name ${JSON.stringify(t.name)}`);
    seen.add(t.name);
    const bytes = checkTensor(path, t);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.byteLength / 8) * 8; // 8 + n is a multiple of 8
  const out = new Uint8Array(8 + n).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

/** Writes one .safetensors file atomically; tensors are stored in the given order. */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  const header = encodeSafetensorsHeader(path, tensors, metadata);
  writeFileAtomic(path, [header, ...tensors.map((t) => t.data)]);
}

export interface ShardedWriteResult {
  /** Shard file names (relative to dir), in order. */
  files: string[];
  /** Sum of all tensors' byte sizes (the index's metadata.total_size). */
  totalSize: number;
}

/** Writes tensors as `model-0000i-of-0000n.safetensors` shards of at most maxShardBytes of tensor data
 *  each (a larger tensor gets a shard of its own) plus `model.safetensors.index.json`, the layout
 *  transformers' save_pretrained produces. The index is written last, so it never names a missing shard. */
export function writeShardedSafetensors(dir: string, tensors: readonly TensorToWrite[], maxShardBytes: number, metadata?: Record<string, string>): ShardedWriteResult {
  if (!(maxShardBytes > 0)) throw new Error(`writeShardedSafetensors(${dir}): maxShardBytes must be positive, got ${maxShardBytes}`);
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  let totalSize = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`writeShardedSafetensors(${dir}): duplicate tensor name ${JSON.stringify(t.name)}`);
    seen.add(t.name);
    const bytes = checkTensor(dir, t);
    if (current.length > 0 && currentBytes + bytes > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += bytes;
    totalSize += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  const count = String(groups.length).padStart(5, '0');
  const files: string[] = [];
  const weightMap: [string, string][] = [];
  groups.forEach((g, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${count}.safetensors`;
    writeSafetensors(join(dir, file), g, metadata);
    files.push(file);
    for (const t of g) weightMap.push([t.name, file]);
  });
  // Built by hand so a tensor named "__proto__" stays a plain key.
  const map = weightMap.map(([k, f]) => `    ${JSON.stringify(k)}: ${JSON.stringify(f)}`).join(',\n');
  const index = `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${map}\n  }\n}\n`;
  writeFileAtomic(join(dir, 'model.safetensors.index.json'), [new TextEncoder().encode(index)]);
  return { files, totalSize };
}
