// GGUF reader (ggml docs/gguf.md, versions 2 and 3; v2 and v3 share the layout, v3 added big-endian
// files, which are refused here). Layout, all little-endian:
//   magic "GGUF" · u32 version · u64 n_tensors · u64 n_kv
//   n_kv × { string key · u32 value_type · value }            string = u64 length + UTF-8 bytes
//   n_tensors × { string name · u32 n_dims · u64 ne[n_dims] · u32 ggml_type · u64 offset }
//   padding to `general.alignment` (default 32) · tensor data (offsets relative to this point)
// The file is hostile input (docs/RELIABILITY.md): the header section is read through a bounded
// cursor over file chunks, every count and length is a BigInt checked against the bytes that remain
// before anything is allocated from it, and every tensor's byte range is proven to lie inside the
// file, aligned and disjoint from the others before the table is returned.

import { closeSync, fstatSync, readSync } from 'node:fs';
import { openRegularFile } from './regular-file.js';
import { FormatError, checkedMul, checkedNumber } from './errors.js';
import { MAX_TENSORS_PER_FILE, type TensorDType, type TensorEntry, type TensorSource } from './tensor-source.js';

// ---------------------------------------------------------------------------------------------
// Value types

/** GGUF metadata value types, by their on-disk id (gguf.md "gguf_metadata_value_type"). */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufScalarType = Exclude<(typeof GGUF_VALUE_TYPES)[number], 'array'>;
/** A scalar type, or an array of one (arrays of arrays are legal in the spec but unused; refused). */
export type GgufType = GgufScalarType | `${GgufScalarType}[]`;
export type GgufScalar = number | bigint | boolean | string;
/** Integers are numbers when safe (else bigint), floats numbers, arrays plain JS arrays. */
export type GgufValue = GgufScalar | GgufScalar[];

/** Bytes of a fixed-size scalar (strings: 8, the least a string takes). */
export const GGUF_SCALAR_BYTES: Readonly<Record<GgufScalarType, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, u64: 8, i64: 8, f64: 8,
};

// ---------------------------------------------------------------------------------------------
// ggml tensor types (gguf-py constants.py GGMLQuantizationType / GGML_QUANT_SIZES)

export type GgmlTypeName =
  | 'F32' | 'F16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q8_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K'
  | 'IQ2_XXS' | 'IQ2_XS' | 'IQ3_XXS' | 'IQ1_S' | 'IQ4_NL' | 'IQ3_S' | 'IQ2_S' | 'IQ4_XS'
  | 'I8' | 'I16' | 'I32' | 'I64' | 'F64' | 'IQ1_M' | 'BF16' | 'TQ1_0' | 'TQ2_0' | 'MXFP4' | 'NVFP4' | 'Q1_0';

export interface GgmlTypeInfo {
  id: number;
  name: GgmlTypeName;
  /** Elements per block; ne[0] must be a multiple of it. */
  blockSize: number;
  /** Bytes per block. */
  typeBytes: number;
  /** What the loader sees; 'other' = known layout that Tessera cannot compute with. */
  dtype: TensorDType;
}

const QK_K = 256;
const GGML_TYPE_LIST: readonly GgmlTypeInfo[] = [
  { id: 0, name: 'F32', blockSize: 1, typeBytes: 4, dtype: 'f32' },
  { id: 1, name: 'F16', blockSize: 1, typeBytes: 2, dtype: 'f16' },
  { id: 2, name: 'Q4_0', blockSize: 32, typeBytes: 2 + 16, dtype: 'q4_0' },
  { id: 3, name: 'Q4_1', blockSize: 32, typeBytes: 2 + 2 + 16, dtype: 'other' },
  { id: 6, name: 'Q5_0', blockSize: 32, typeBytes: 2 + 4 + 16, dtype: 'other' },
  { id: 7, name: 'Q5_1', blockSize: 32, typeBytes: 2 + 2 + 4 + 16, dtype: 'other' },
  { id: 8, name: 'Q8_0', blockSize: 32, typeBytes: 2 + 32, dtype: 'q8_0' },
  { id: 9, name: 'Q8_1', blockSize: 32, typeBytes: 4 + 4 + 32, dtype: 'other' },
  { id: 10, name: 'Q2_K', blockSize: QK_K, typeBytes: 2 + 2 + QK_K / 16 + QK_K / 4, dtype: 'other' },
  { id: 11, name: 'Q3_K', blockSize: QK_K, typeBytes: 2 + QK_K / 4 + QK_K / 8 + 12, dtype: 'other' },
  { id: 12, name: 'Q4_K', blockSize: QK_K, typeBytes: 2 + 2 + QK_K / 2 + 12, dtype: 'q4_k' },
  { id: 13, name: 'Q5_K', blockSize: QK_K, typeBytes: 2 + 2 + QK_K / 2 + QK_K / 8 + 12, dtype: 'q5_k' },
  { id: 14, name: 'Q6_K', blockSize: QK_K, typeBytes: 2 + QK_K / 2 + QK_K / 4 + QK_K / 16, dtype: 'q6_k' },
  { id: 15, name: 'Q8_K', blockSize: QK_K, typeBytes: 4 + QK_K + QK_K / 8, dtype: 'other' },
  { id: 16, name: 'IQ2_XXS', blockSize: QK_K, typeBytes: 2 + QK_K / 4, dtype: 'other' },
  { id: 17, name: 'IQ2_XS', blockSize: QK_K, typeBytes: 2 + QK_K / 4 + QK_K / 32, dtype: 'other' },
  { id: 18, name: 'IQ3_XXS', blockSize: QK_K, typeBytes: 2 + QK_K / 4 + QK_K / 8, dtype: 'other' },
  { id: 19, name: 'IQ1_S', blockSize: QK_K, typeBytes: 2 + QK_K / 8 + QK_K / 16, dtype: 'other' },
  { id: 20, name: 'IQ4_NL', blockSize: 32, typeBytes: 2 + 16, dtype: 'other' },
  { id: 21, name: 'IQ3_S', blockSize: QK_K, typeBytes: 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, dtype: 'other' },
  { id: 22, name: 'IQ2_S', blockSize: QK_K, typeBytes: 2 + QK_K / 4 + QK_K / 16, dtype: 'other' },
  { id: 23, name: 'IQ4_XS', blockSize: QK_K, typeBytes: 2 + 2 + QK_K / 2 + QK_K / 64, dtype: 'other' },
  { id: 24, name: 'I8', blockSize: 1, typeBytes: 1, dtype: 'i8' },
  { id: 25, name: 'I16', blockSize: 1, typeBytes: 2, dtype: 'i16' },
  { id: 26, name: 'I32', blockSize: 1, typeBytes: 4, dtype: 'i32' },
  { id: 27, name: 'I64', blockSize: 1, typeBytes: 8, dtype: 'i64' },
  { id: 28, name: 'F64', blockSize: 1, typeBytes: 8, dtype: 'f64' },
  { id: 29, name: 'IQ1_M', blockSize: QK_K, typeBytes: QK_K / 8 + QK_K / 16 + QK_K / 32, dtype: 'other' },
  { id: 30, name: 'BF16', blockSize: 1, typeBytes: 2, dtype: 'bf16' },
  { id: 34, name: 'TQ1_0', blockSize: QK_K, typeBytes: 2 + 4 * 13, dtype: 'other' },
  { id: 35, name: 'TQ2_0', blockSize: QK_K, typeBytes: 2 + 64, dtype: 'other' },
  { id: 39, name: 'MXFP4', blockSize: 32, typeBytes: 1 + 16, dtype: 'other' },
  { id: 40, name: 'NVFP4', blockSize: 64, typeBytes: 4 + 32, dtype: 'other' },
  { id: 41, name: 'Q1_0', blockSize: 128, typeBytes: 2 + 16, dtype: 'other' },
];
export const GGML_TYPES_BY_ID: ReadonlyMap<number, GgmlTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.id, t]));
export const GGML_TYPES: Readonly<Record<GgmlTypeName, GgmlTypeInfo>> =
  Object.fromEntries(GGML_TYPE_LIST.map((t) => [t.name, t])) as Record<GgmlTypeName, GgmlTypeInfo>;

// ---------------------------------------------------------------------------------------------
// Limits

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME is 64 including the NUL, so llama.cpp refuses names of 64 bytes or more. */
export const GGUF_MAX_TENSOR_NAME_BYTES = 63;
/** Keys are at most 2^16 − 1 bytes (gguf.md "Standardized key-value pairs"). */
export const GGUF_MAX_KEY_BYTES = 65535;
/** Largest general.alignment accepted (the spec sets no cap; real files use 32). */
export const GGUF_MAX_ALIGNMENT = 1 << 16;
export const DEFAULT_MAX_METADATA_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_TENSORS = MAX_TENSORS_PER_FILE;
/** Largest metadata array: 4× the largest released vocabulary (2^18 tokens; Llama 3's 280k merges). A JS
 *  array costs ≥ 8 bytes per element (a string ≥ 16), so a u8 array of 2^24 would take 8–16× its bytes. */
export const DEFAULT_MAX_ARRAY_LENGTH = 1 << 20;
/** All metadata arrays together hold at most this many maxArrayLength's worth of elements (a
 *  vocabulary needs four arrays: tokens, scores, token types, merges). */
const MAX_ARRAYS_TOTAL = 4;

export interface GgufOptions {
  /** Cap on the header section (metadata + tensor infos) in bytes; default 64 MiB. */
  maxMetadataBytes?: number;
  /** Cap on n_tensors; default 2^16 (MAX_TENSORS_PER_FILE). */
  maxTensors?: number;
  /** Cap on the element count of one metadata array (and on 4× it for all arrays together); default 2^20. */
  maxArrayLength?: number;
}

// ---------------------------------------------------------------------------------------------
// The file object

export interface GgufTensorEntry extends TensorEntry {
  ggmlType: GgmlTypeName;
  /** ggml's ne[] (innermost first); `shape` is its reverse. */
  ne: number[];
}

export interface GgufFile extends TensorSource {
  readonly version: 2 | 3;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** The on-disk type of each metadata value (needed to tell u32 from i32, f32 from f64, …). */
  readonly metadataTypes: ReadonlyMap<string, GgufType>;
  readonly alignment: number;
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly tensors: ReadonlyMap<string, GgufTensorEntry>;
}

/** Largest single readSync (Node refuses lengths above 2^31 − 1). */
const READ_CHUNK = 1 << 30;
/** Size of the cursor's read-ahead window over the header section. */
const CURSOR_CHUNK = 1 << 20;
// ignoreBOM: a string that starts with U+FEFF keeps it (the default drops it, which turns the real
// Llama 2 / Mistral token spelled U+FEFF into an empty string).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A forward-only reader over [0, limit) of a file, holding at most one chunk (plus one long string). */
class Cursor {
  pos = 0;
  private buf: Buffer = Buffer.alloc(0);
  private bufStart = 0;
  private view: DataView = new DataView(new ArrayBuffer(0));

  constructor(private readonly fd: number, private readonly src: string, readonly fileSize: number, readonly limit: number) {}

  /** Bytes left before the file ends or the header cap is reached. */
  remaining(): number {
    return Math.min(this.fileSize, this.limit) - this.pos;
  }

  /** Makes [pos, pos + n) available, or explains why the file cannot hold it. */
  private need(n: number, what: string): number {
    if (this.pos + n > this.fileSize) {
      throw new FormatError(this.src, `truncated: ${what} needs ${n} bytes at offset ${this.pos}, but the file is ${this.fileSize} bytes long`);
    }
    if (this.pos + n > this.limit) {
      throw new FormatError(this.src, `header section exceeds maxMetadataBytes = ${this.limit} while reading ${what} at offset ${this.pos}; raise the limit if the file is trusted`);
    }
    const at = this.pos - this.bufStart;
    if (at < 0 || at + n > this.buf.length) {
      const len = Math.max(n, Math.min(CURSOR_CHUNK, Math.min(this.fileSize, this.limit) - this.pos));
      this.buf = Buffer.allocUnsafe(len);
      readFully(this.fd, this.src, this.buf, this.pos);
      this.bufStart = this.pos;
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    const off = this.pos - this.bufStart;
    this.pos += n;
    return off;
  }

  // need() may replace this.view, so it must run before this.view is read
  u8(what: string): number { const o = this.need(1, what); return this.view.getUint8(o); }
  i8(what: string): number { const o = this.need(1, what); return this.view.getInt8(o); }
  u16(what: string): number { const o = this.need(2, what); return this.view.getUint16(o, true); }
  i16(what: string): number { const o = this.need(2, what); return this.view.getInt16(o, true); }
  u32(what: string): number { const o = this.need(4, what); return this.view.getUint32(o, true); }
  i32(what: string): number { const o = this.need(4, what); return this.view.getInt32(o, true); }
  f32(what: string): number { const o = this.need(4, what); return this.view.getFloat32(o, true); }
  f64(what: string): number { const o = this.need(8, what); return this.view.getFloat64(o, true); }
  u64(what: string): bigint { const o = this.need(8, what); return this.view.getBigUint64(o, true); }
  i64(what: string): bigint { const o = this.need(8, what); return this.view.getBigInt64(o, true); }

  /** A u64 length or count, refused when `count × minBytes` exceeds the bytes that remain or it passes `cap`. */
  count(what: string, minBytes: number, cap: number): number {
    const at = this.pos;
    const n = this.u64(what);
    if (n > BigInt(cap)) throw new FormatError(this.src, `${what} = ${n} at offset ${at} exceeds the limit of ${cap}`);
    const need = n * BigInt(minBytes);
    if (need > BigInt(this.fileSize - this.pos)) {
      throw new FormatError(this.src, `${what} = ${n} at offset ${at} needs at least ${need} bytes, but only ${this.fileSize - this.pos} remain in the file`);
    }
    if (need > BigInt(this.remaining())) {
      throw new FormatError(this.src, `${what} = ${n} at offset ${at} takes the header section past maxMetadataBytes = ${this.limit}; raise the limit if the file is trusted`);
    }
    return Number(n);
  }

  string(what: string, maxBytes: number = Number.MAX_SAFE_INTEGER): string {
    const len = this.count(`length of ${what}`, 1, maxBytes);
    const at = this.pos;
    const off = this.need(len, what);
    try {
      return utf8.decode(this.buf.subarray(off, off + len));
    } catch {
      throw new FormatError(this.src, `${what} at offset ${at} is not valid UTF-8`);
    }
  }
}

function readFully(fd: number, src: string, dst: Uint8Array, position: number): void {
  let done = 0;
  while (done < dst.byteLength) {
    const n = readSync(fd, dst, done, Math.min(READ_CHUNK, dst.byteLength - done), position + done);
    if (n <= 0) throw new FormatError(src, `unexpected end of file at offset ${position + done} (was the file truncated while open?)`);
    done += n;
  }
}

function scalarAsNumber(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: Cursor, src: string, type: GgufScalarType, what: string): GgufScalar {
  switch (type) {
    case 'u8': return c.u8(what);
    case 'i8': return c.i8(what);
    case 'u16': return c.u16(what);
    case 'i16': return c.i16(what);
    case 'u32': return c.u32(what);
    case 'i32': return c.i32(what);
    case 'f32': return c.f32(what);
    case 'f64': return c.f64(what);
    case 'u64': return scalarAsNumber(c.u64(what));
    case 'i64': return scalarAsNumber(c.i64(what));
    case 'string': return c.string(what);
    case 'bool': {
      const at = c.pos;
      const b = c.u8(what);
      if (b > 1) throw new FormatError(src, `${what} at offset ${at} is a bool with byte value ${b} (must be 0 or 1)`);
      return b === 1;
    }
    default: { const never: never = type; throw new Error(`readScalar: ${String(never)}`); }
  }
}

function valueType(c: Cursor, src: string, what: string): (typeof GGUF_VALUE_TYPES)[number] {
  const at = c.pos;
  const id = c.u32(`value type of ${what}`);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) throw new FormatError(src, `${what} has unknown value type ${id} at offset ${at} (known: 0..12)`);
  return t;
}

function readValue(c: Cursor, src: string, key: string, maxArray: number): { type: GgufType; value: GgufValue } {
  const what = `metadata "${key}"`;
  const t = valueType(c, src, what);
  if (t !== 'array') return { type: t, value: readScalar(c, src, t, what) };
  const et = valueType(c, src, `elements of ${what}`);
  if (et === 'array') throw new FormatError(src, `${what} is an array of arrays, which this reader does not support`);
  const n = c.count(`array length of ${what}`, GGUF_SCALAR_BYTES[et], maxArray);
  const out: GgufScalar[] = [];
  for (let i = 0; i < n; i++) out.push(readScalar(c, src, et, `${what}[${i}]`));
  return { type: `${et}[]`, value: out };
}

/** Smallest encodings: a key-value pair (u64 len + 1 byte key + u32 type + 1 byte value) and a tensor
 *  info (u64 len + 1 byte name + u32 n_dims + one u64 ne + u32 type + u64 offset). */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Opens and validates a GGUF file. The returned object holds the file open until close(). */
export function openGguf(path: string, opts: GgufOptions = {}): GgufFile {
  const src = path;
  const fd = openRegularFile(path);
  try {
    return parse(fd, src, opts);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

function parse(fd: number, src: string, opts: GgufOptions): GgufFile {
  const fileSize = fstatSync(fd).size;
  const cap = (v: number | undefined, d: number): number => Math.max(0, Math.floor(Math.min(v ?? d, Number.MAX_SAFE_INTEGER)));
  const maxHeader = cap(opts.maxMetadataBytes, DEFAULT_MAX_METADATA_BYTES);
  const maxTensors = cap(opts.maxTensors, DEFAULT_MAX_TENSORS);
  const maxArray = cap(opts.maxArrayLength, DEFAULT_MAX_ARRAY_LENGTH);
  const c = new Cursor(fd, src, fileSize, maxHeader);

  // Header
  if (fileSize < 4) throw new FormatError(src, `not a GGUF file: only ${fileSize} bytes long`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    const b = [magic & 0xff, (magic >>> 8) & 0xff, (magic >>> 16) & 0xff, magic >>> 24];
    throw new FormatError(src, `not a GGUF file: magic is ${JSON.stringify(String.fromCharCode(...b))} (bytes ${b.map((x) => x.toString(16).padStart(2, '0')).join(' ')}), expected "GGUF"`);
  }
  const version = c.u32('version');
  if (version === 1) throw new FormatError(src, 'GGUF version 1 is not supported (obsolete since 2023); re-convert the model with a current llama.cpp');
  if ((version & 0xffff) === 0 && version !== 0) {
    const swapped = (((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24)) >>> 0;
    throw new FormatError(src, `big-endian GGUF (version field reads 0x${version.toString(16).padStart(8, '0')}, a byte-swapped ${swapped}) is not supported; convert it with gguf-py's gguf_convert_endian.py`);
  }
  if (version !== 2 && version !== 3) throw new FormatError(src, `unsupported GGUF version ${version} (this reader supports versions 2 and 3)`);
  const nTensorsBig = c.u64('tensor count');
  const nKvBig = c.u64('metadata key-value count');
  if (nTensorsBig > BigInt(maxTensors)) throw new FormatError(src, `tensor count = ${nTensorsBig} exceeds maxTensors = ${maxTensors}`);
  const minBytes = nTensorsBig * BigInt(MIN_TENSOR_INFO_BYTES) + nKvBig * BigInt(MIN_KV_BYTES);
  if (minBytes > BigInt(c.remaining())) {
    throw new FormatError(src, `tensor count = ${nTensorsBig} and metadata count = ${nKvBig} need at least ${minBytes} bytes of header, but only ${c.remaining()} remain`);
  }
  const nTensors = Number(nTensorsBig);
  const nKv = Number(nKvBig);

  // Metadata
  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufType>();
  let arrayElements = 0;
  for (let i = 0; i < nKv; i++) {
    const at = c.pos;
    const key = c.string(`key of metadata entry ${i}`, GGUF_MAX_KEY_BYTES);
    if (key.length === 0) throw new FormatError(src, `metadata entry ${i} at offset ${at} has an empty key`);
    if (metadata.has(key)) throw new FormatError(src, `duplicate metadata key "${key}" at offset ${at}`);
    const { type, value } = readValue(c, src, key, maxArray);
    if (Array.isArray(value)) {
      arrayElements += value.length;
      if (arrayElements > MAX_ARRAYS_TOTAL * maxArray) {
        throw new FormatError(src, `metadata arrays up to "${key}" hold ${arrayElements} elements in all, more than ${MAX_ARRAYS_TOTAL} × maxArrayLength = ${MAX_ARRAYS_TOTAL * maxArray}`);
      }
    }
    metadata.set(key, value);
    metadataTypes.set(key, type);
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (metadataTypes.get('general.alignment') !== 'u32' || typeof a !== 'number' || !isPowerOfTwo(a) || a > GGUF_MAX_ALIGNMENT) {
      throw new FormatError(src, `general.alignment = ${String(a)} (${metadataTypes.get('general.alignment')}) is invalid: it must be a u32 power of two between 1 and ${GGUF_MAX_ALIGNMENT}`);
    }
    alignment = a;
  }

  // Tensor infos
  const infos: { name: string; ne: number[]; type: GgmlTypeInfo; rel: number; bytes: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const at = c.pos;
    const name = c.string(`name of tensor ${i}`, GGUF_MAX_TENSOR_NAME_BYTES);
    const nameBytes = Buffer.byteLength(name, 'utf8');
    if (nameBytes === 0) throw new FormatError(src, `tensor ${i} at offset ${at} has an empty name`);
    if (nameBytes > GGUF_MAX_TENSOR_NAME_BYTES) throw new FormatError(src, `tensor ${i} name is ${nameBytes} bytes long (llama.cpp's limit is ${GGUF_MAX_TENSOR_NAME_BYTES})`);
    if (names.has(name)) throw new FormatError(src, `duplicate tensor name "${name}" at offset ${at}`);
    names.add(name);
    const t = `tensor "${name}"`;
    const nDims = c.u32(`n_dims of ${t}`);
    if (nDims < 1 || nDims > GGUF_MAX_DIMS) throw new FormatError(src, `${t} has n_dims = ${nDims} (must be 1..${GGUF_MAX_DIMS})`);
    const ne: number[] = [];
    let count = 1;
    for (let d = 0; d < nDims; d++) {
      const v = checkedNumber(src, `ne[${d}] of ${t}`, c.u64(`ne[${d}] of ${t}`));
      if (v === 0) throw new FormatError(src, `${t} has ne[${d}] = 0 (empty tensors are not allowed)`);
      ne.push(v);
      count = checkedMul(src, `element count of ${t}`, count, v);
    }
    const typeAt = c.pos;
    const typeId = c.u32(`ggml type of ${t}`);
    const type = GGML_TYPES_BY_ID.get(typeId);
    if (type === undefined) throw new FormatError(src, `${t} has unknown ggml type id ${typeId} at offset ${typeAt}`);
    if (ne[0]! % type.blockSize !== 0) {
      throw new FormatError(src, `${t} of type ${type.name} has ne[0] = ${ne[0]}, not a multiple of its block size ${type.blockSize}`);
    }
    const bytes = checkedMul(src, `byte size of ${t}`, count / type.blockSize, type.typeBytes);
    const rel = checkedNumber(src, `data offset of ${t}`, c.u64(`data offset of ${t}`));
    if (rel % alignment !== 0) throw new FormatError(src, `${t} has data offset ${rel}, not a multiple of the alignment ${alignment}`);
    infos.push({ name, ne, type, rel, bytes });
  }

  // Data section: starts at the next multiple of the alignment; every range inside the file, disjoint.
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const info of infos) {
    const end = dataOffset + info.rel + info.bytes;
    if (end > fileSize) {
      throw new FormatError(src, `tensor "${info.name}" data [${dataOffset + info.rel}, ${end}) lies past the end of the file (${fileSize} bytes)`);
    }
  }
  const byOffset = [...infos].sort((a, b) => a.rel - b.rel);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (cur.rel < prev.rel + prev.bytes) {
      throw new FormatError(src, `tensor "${cur.name}" data at relative offset ${cur.rel} overlaps tensor "${prev.name}" [${prev.rel}, ${prev.rel + prev.bytes})`);
    }
  }

  const tensors = new Map<string, GgufTensorEntry>();
  for (const info of infos) {
    tensors.set(info.name, {
      name: info.name,
      dtype: info.type.dtype,
      shape: [...info.ne].reverse(), // outermost first
      file: src,
      offset: dataOffset + info.rel,
      byteLength: info.bytes,
      ggmlType: info.type.name,
      ne: info.ne,
    });
  }

  let open = true;
  return {
    description: `GGUF ${src}`,
    version: version as 2 | 3,
    metadata,
    metadataTypes,
    alignment,
    dataOffset,
    fileSize,
    tensors,
    read(entry: TensorEntry, dst: Uint8Array): void {
      if (!open) throw new FormatError(src, 'read after close()');
      const own = tensors.get(entry.name);
      if (own === undefined || own.offset !== entry.offset || own.byteLength !== entry.byteLength) {
        throw new FormatError(src, `tensor "${entry.name}" is not an entry of this file`);
      }
      if (own.dtype === 'other') {
        throw new FormatError(src, `unsupported tensor type ${own.ggmlType} for tensor ${own.name}; re-quantise to q8_0, q4_0 or a K-quant (e.g. tessera quantize IN.gguf OUT.gguf --type q4_k_m)`);
      }
      if (dst.byteLength !== own.byteLength) {
        throw new FormatError(src, `read of tensor "${own.name}": destination holds ${dst.byteLength} bytes, the tensor ${own.byteLength}`);
      }
      readFully(fd, src, dst, own.offset);
    },
    close(): void {
      if (open) { open = false; closeSync(fd); }
    },
  };
}
