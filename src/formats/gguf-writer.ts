// GGUF v3 writer (little-endian), the layout of gguf.ts. Metadata values carry explicit types because
// llama.cpp checks them (llama.context_length must be u32, tokenizer.ggml.scores f32[], token_type
// i32[], …). Tensor data is spooled to a side file as it arrives (so a converter can stream a model
// larger than RAM), then header + data are written to a temp file that is fsynced and renamed over
// the destination: a reader never sees a half-written GGUF.

import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ALIGNMENT, GGUF_MAX_DIMS, GGUF_MAX_KEY_BYTES,
  GGUF_MAX_TENSOR_NAME_BYTES, GGUF_VALUE_TYPES, type GgufScalar, type GgufScalarType, type GgufType, type GgufValue,
} from './gguf.js';

/** The tensor types Tessera writes. */
export type GgufWriteType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface GgufTensorToWrite {
  name: string;
  ggmlType: GgufWriteType;
  /** Outermost first (PyTorch order); written to the file reversed, as ggml's ne[]. */
  shape: readonly number[];
  data: Uint8Array;
}

/** [key, value, type]. The type may be left out only for strings, bools and their arrays. */
export type GgufMetadataEntry = readonly [key: string, value: GgufValue, type?: GgufType];
export type GgufMetadataInput = Iterable<GgufMetadataEntry> | ReadonlyMap<string, { type: GgufType; value: GgufValue }>;

export interface GgufWriteOptions {
  /** Power of two (default 32); anything else is recorded as general.alignment. */
  alignment?: number;
}

const FILE_CHUNK = 8 << 20;

/** A growable little-endian byte buffer for the header section. */
class Bytes {
  private buf = new Uint8Array(4096);
  private dv = new DataView(this.buf.buffer);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.length + n) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.dv = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // room() may replace this.dv, so it must run before this.dv is read
  u8(v: number): void { const o = this.room(1); this.dv.setUint8(o, v); }
  i8(v: number): void { const o = this.room(1); this.dv.setInt8(o, v); }
  u16(v: number): void { const o = this.room(2); this.dv.setUint16(o, v, true); }
  i16(v: number): void { const o = this.room(2); this.dv.setInt16(o, v, true); }
  u32(v: number): void { const o = this.room(4); this.dv.setUint32(o, v, true); }
  i32(v: number): void { const o = this.room(4); this.dv.setInt32(o, v, true); }
  f32(v: number): void { const o = this.room(4); this.dv.setFloat32(o, v, true); }
  f64(v: number): void { const o = this.room(8); this.dv.setFloat64(o, v, true); }
  u64(v: bigint): void { const o = this.room(8); this.dv.setBigUint64(o, v, true); }
  i64(v: bigint): void { const o = this.room(8); this.dv.setBigInt64(o, v, true); }
  bytes(b: Uint8Array): void { const o = this.room(b.byteLength); this.buf.set(b, o); }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.byteLength));
    this.bytes(b);
  }
  zeros(n: number): void { this.room(n); this.buf.fill(0, this.length - n, this.length); }
  view(): Uint8Array { return this.buf.subarray(0, this.length); }
}

const INT_RANGE: Partial<Record<GgufScalarType, [bigint, bigint]>> = {
  u8: [0n, 255n], i8: [-128n, 127n], u16: [0n, 65535n], i16: [-32768n, 32767n],
  u32: [0n, 0xffffffffn], i32: [-(2n ** 31n), 2n ** 31n - 1n], u64: [0n, 2n ** 64n - 1n], i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

function fail(key: string, msg: string): never {
  throw new Error(`writeGguf: metadata "${key}": ${msg}`);
}

function writeScalar(out: Bytes, key: string, t: GgufScalarType, v: GgufScalar): void {
  const range = INT_RANGE[t];
  if (range !== undefined) {
    if (!(typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v)))) fail(key, `${String(v)} is not an integer for type ${t}`);
    const b = BigInt(v);
    if (b < range[0] || b > range[1]) fail(key, `${b} is out of range for type ${t}`);
    switch (t) {
      case 'u8': return out.u8(Number(b));
      case 'i8': return out.i8(Number(b));
      case 'u16': return out.u16(Number(b));
      case 'i16': return out.i16(Number(b));
      case 'u32': return out.u32(Number(b));
      case 'i32': return out.i32(Number(b));
      case 'u64': return out.u64(b);
      case 'i64': return out.i64(b);
    }
  }
  switch (t) {
    case 'f32': case 'f64':
      if (typeof v !== 'number') fail(key, `${String(v)} is not a number for type ${t}`);
      return t === 'f32' ? out.f32(v) : out.f64(v);
    case 'bool':
      if (typeof v !== 'boolean') fail(key, `${String(v)} is not a boolean`);
      return out.u8(v ? 1 : 0);
    case 'string':
      if (typeof v !== 'string') fail(key, `${String(v)} is not a string`);
      return out.string(v);
  }
  throw new Error(`writeGguf: unhandled type ${t}`);
}

function inferType(key: string, v: GgufValue): GgufType {
  const one = (x: unknown): GgufScalarType | undefined => (typeof x === 'string' ? 'string' : typeof x === 'boolean' ? 'bool' : undefined);
  if (Array.isArray(v)) {
    const t = v.length > 0 ? one(v[0]) : undefined;
    if (t !== undefined) return `${t}[]`;
  } else {
    const t = one(v);
    if (t !== undefined) return t;
  }
  return fail(key, 'numeric values (and empty arrays) need an explicit type, e.g. ["llama.context_length", 4096, "u32"]');
}

function scalarId(t: GgufScalarType | 'array'): number {
  return GGUF_VALUE_TYPES.indexOf(t);
}

function writeValue(out: Bytes, key: string, type: GgufType, value: GgufValue): void {
  if (type.endsWith('[]')) {
    const et = type.slice(0, -2) as GgufScalarType;
    if (!(GGUF_VALUE_TYPES as readonly string[]).includes(et) || (et as string) === 'array') fail(key, `unknown type ${type}`);
    if (!Array.isArray(value)) fail(key, `type ${type} needs an array value`);
    out.u32(scalarId('array'));
    out.u32(scalarId(et));
    out.u64(BigInt(value.length));
    for (const v of value) writeScalar(out, key, et, v);
    return;
  }
  const t = type as GgufScalarType;
  if (!(GGUF_VALUE_TYPES as readonly string[]).includes(t) || (t as string) === 'array') fail(key, `unknown type ${type}`);
  if (Array.isArray(value)) fail(key, `type ${type} needs a scalar value, got an array`);
  out.u32(scalarId(t));
  writeScalar(out, key, t, value);
}

function metadataEntries(m: GgufMetadataInput): [string, GgufValue, GgufType][] {
  const out: [string, GgufValue, GgufType][] = [];
  if (m instanceof Map) {
    for (const [k, { type, value }] of m as ReadonlyMap<string, { type: GgufType; value: GgufValue }>) out.push([k, value, type]);
  } else {
    for (const [k, v, t] of m as Iterable<GgufMetadataEntry>) out.push([k, v, t ?? inferType(k, v)]);
  }
  return out;
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, Math.min(FILE_CHUNK, data.byteLength - done));
}

function tempName(path: string, tag: string): string {
  return `${path}.${tag}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** Writes a GGUF v3 file atomically. Throws (leaving no file behind) on any invalid input. */
export function writeGguf(path: string, metadata: GgufMetadataInput, tensors: Iterable<GgufTensorToWrite>, opts: GgufWriteOptions = {}): void {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment < 1 || (alignment & (alignment - 1)) !== 0 || alignment > GGUF_MAX_ALIGNMENT) {
    throw new Error(`writeGguf: alignment ${alignment} must be a power of two between 1 and ${GGUF_MAX_ALIGNMENT}`);
  }
  const entries = metadataEntries(metadata);
  const keys = new Set<string>();
  for (const [k, v, t] of entries) {
    const kb = Buffer.byteLength(k, 'utf8');
    if (kb === 0 || kb > GGUF_MAX_KEY_BYTES) fail(k, `key length ${kb} must be 1..${GGUF_MAX_KEY_BYTES} bytes`);
    if (keys.has(k)) fail(k, 'duplicate key');
    keys.add(k);
    if (k === 'general.alignment' && (t !== 'u32' || v !== alignment)) fail(k, `must be u32 ${alignment} (pass the alignment through opts.alignment)`);
  }
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !keys.has('general.alignment')) entries.push(['general.alignment', alignment, 'u32']);

  const spoolPath = tempName(path, 'data');
  const outPath = tempName(path, 'tmp');
  const infos: { name: string; ne: number[]; typeId: number; rel: number }[] = [];
  try {
    // 1. tensor data → spool file, each tensor padded to the alignment
    const spool = openSync(spoolPath, 'w');
    let rel = 0;
    try {
      const names = new Set<string>();
      for (const t of tensors) {
        const info = GGML_TYPES[t.ggmlType];
        const nb = Buffer.byteLength(t.name, 'utf8');
        if (info === undefined || !['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'].includes(t.ggmlType)) throw new Error(`writeGguf: tensor "${t.name}": unsupported type ${t.ggmlType}`);
        if (nb === 0 || nb > GGUF_MAX_TENSOR_NAME_BYTES) throw new Error(`writeGguf: tensor name "${t.name}" must be 1..${GGUF_MAX_TENSOR_NAME_BYTES} bytes`);
        if (names.has(t.name)) throw new Error(`writeGguf: duplicate tensor name "${t.name}"`);
        names.add(t.name);
        if (t.shape.length < 1 || t.shape.length > GGUF_MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
          throw new Error(`writeGguf: tensor "${t.name}" has shape [${t.shape.join(', ')}]; need 1..${GGUF_MAX_DIMS} positive integer dims`);
        }
        const ne = [...t.shape].reverse();
        if (ne[0]! % info.blockSize !== 0) throw new Error(`writeGguf: tensor "${t.name}" of type ${t.ggmlType}: innermost dim ${ne[0]} is not a multiple of ${info.blockSize}`);
        const count = ne.reduce((a, b) => a * b, 1);
        const bytes = (count / info.blockSize) * info.typeBytes;
        if (!Number.isSafeInteger(bytes) || t.data.byteLength !== bytes) {
          throw new Error(`writeGguf: tensor "${t.name}" ${t.ggmlType} [${t.shape.join(', ')}] needs ${bytes} bytes, got ${t.data.byteLength}`);
        }
        writeAll(spool, t.data);
        const padded = Math.ceil(bytes / alignment) * alignment;
        if (padded > bytes) writeAll(spool, new Uint8Array(padded - bytes));
        infos.push({ name: t.name, ne, typeId: info.id, rel });
        rel += padded;
      }
    } finally {
      closeSync(spool);
    }

    // 2. header section
    const h = new Bytes();
    h.u32(GGUF_MAGIC);
    h.u32(3);
    h.u64(BigInt(infos.length));
    h.u64(BigInt(entries.length));
    for (const [k, v, t] of entries) {
      h.string(k);
      writeValue(h, k, t, v);
    }
    for (const info of infos) {
      h.string(info.name);
      h.u32(info.ne.length);
      for (const d of info.ne) h.u64(BigInt(d));
      h.u32(info.typeId);
      h.u64(BigInt(info.rel));
    }
    h.zeros(Math.ceil(h.length / alignment) * alignment - h.length);

    // 3. header + spooled data → temp file, fsync, rename
    const fd = openSync(outPath, 'w');
    try {
      writeAll(fd, h.view());
      const sp = openSync(spoolPath, 'r');
      try {
        const chunk = Buffer.allocUnsafe(Math.min(FILE_CHUNK, Math.max(rel, 1)));
        for (let pos = 0; pos < rel;) {
          const n = readSync(sp, chunk, 0, Math.min(chunk.length, rel - pos), pos);
          if (n <= 0) throw new Error(`writeGguf: spool file ${spoolPath} ended early`);
          writeAll(fd, chunk.subarray(0, n));
          pos += n;
        }
      } finally {
        closeSync(sp);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(outPath, path);
    try {
      const dfd = openSync(dirname(path), 'r');
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch { /* directories cannot be fsynced on some platforms */ }
  } finally {
    rmSync(spoolPath, { force: true });
    rmSync(outPath, { force: true });
  }
}
