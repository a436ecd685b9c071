// Safetensors reader. Layout (https://github.com/huggingface/safetensors, "Format"):
//   [0, 8)          N, the header length, little-endian u64
//   [8, 8+N)        UTF-8 JSON object: { "__metadata__"?: {str: str}, name: {dtype, shape, data_offsets} }
//   [8+N, size)     the data section; data_offsets [begin, end) are relative to its start
// The file is hostile input: we read only the header, and before returning a tensor table we enforce
// every rule of the format (docs/RELIABILITY.md): N ≤ cap and 8 + N ≤ size; header begins with '{',
// is valid UTF-8 and strict JSON (no duplicate keys); entries have exactly dtype/shape/data_offsets;
// element counts use checked arithmetic; end − begin == numel × dtype size; sorted by offset the
// tensors tile the data section exactly (no holes, no overlaps) and the last end + 8 + N == size.

import { closeSync, fstatSync, readSync } from 'node:fs';
import { openRegularFile } from './regular-file.js';
import { FormatError, checkedMul, checkedNumber, showValue } from './errors.js';
import { MAX_TENSORS_PER_FILE, type TensorDType, type TensorEntry, type TensorSource } from './tensor-source.js';
import { isJsonObject, parseJsonStrict } from './json-strict.js';

/** The dtype strings of the safetensors format that Tessera reads (byte-sized ones; sub-byte F4/F6 are refused). */
export type SafetensorsDType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8'
  | 'BOOL' | 'F8_E4M3' | 'F8_E5M2' | 'F8_E8M0' | 'C64';

/** Bytes per element and the TensorDType each safetensors dtype maps to. */
export const SAFETENSORS_DTYPES: Readonly<Record<SafetensorsDType, { bytes: number; dtype: TensorDType }>> = {
  F64: { bytes: 8, dtype: 'f64' }, F32: { bytes: 4, dtype: 'f32' }, F16: { bytes: 2, dtype: 'f16' }, BF16: { bytes: 2, dtype: 'bf16' },
  I64: { bytes: 8, dtype: 'i64' }, I32: { bytes: 4, dtype: 'i32' }, I16: { bytes: 2, dtype: 'i16' }, I8: { bytes: 1, dtype: 'i8' },
  U64: { bytes: 8, dtype: 'u64' }, U32: { bytes: 4, dtype: 'u32' }, U16: { bytes: 2, dtype: 'u16' }, U8: { bytes: 1, dtype: 'u8' },
  BOOL: { bytes: 1, dtype: 'bool' },
  F8_E4M3: { bytes: 1, dtype: 'other' }, F8_E5M2: { bytes: 1, dtype: 'other' }, F8_E8M0: { bytes: 1, dtype: 'other' },
  C64: { bytes: 8, dtype: 'other' },
};

export const DEFAULT_MAX_HEADER_BYTES = 100_000_000;
/** Largest single readSync (Node refuses lengths above 2^31 − 1). */
const READ_CHUNK = 1 << 30;

export interface SafetensorsOptions {
  /** Largest accepted header length N in bytes (default 100,000,000, the format's own limit). */
  maxHeaderBytes?: number;
}

export interface SafetensorsHeader {
  /** Tensors in file order (ascending offset); offsets are absolute. */
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** 8 + N: absolute offset of the data section. */
  dataStart: number;
}

export interface SafetensorsFile extends TensorSource {
  readonly metadata: Readonly<Record<string, string>>;
  readonly dataStart: number;
  readonly fileSize: number;
}

const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);

function isSafetensorsDType(s: string): s is SafetensorsDType {
  return Object.hasOwn(SAFETENSORS_DTYPES, s);
}

/** Validates N (the u64 in the first 8 bytes) against the cap and the file size; returns it as a Number. */
export function checkHeaderLength(first8: Uint8Array, fileSize: number, file: string, maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES): number {
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 0) {
    throw new Error(`openSafetensors: maxHeaderBytes must be a non-negative integer, got ${maxHeaderBytes}`);
  }
  if (fileSize < 8) {
    throw new FormatError(file, `file is ${fileSize} bytes, smaller than the 8-byte header length; not a safetensors file`);
  }
  const raw = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (raw > BigInt(maxHeaderBytes)) {
    throw new FormatError(file, `header length ${raw} exceeds the limit of ${maxHeaderBytes} bytes (maxHeaderBytes); not a safetensors file or a hostile one`);
  }
  const n = checkedNumber(file, 'header length', raw);
  if (8 + n > fileSize) {
    throw new FormatError(file, `header length ${n} runs past the end of the file (8 + ${n} > file size ${fileSize}); the file is truncated`);
  }
  return n;
}

/** Validates a header (the N bytes after the length) against every rule of the format and returns the
 *  tensor table with absolute offsets. `fileSize` is the whole file's size in bytes. */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const n = headerBytes.byteLength;
  const dataStart = 8 + n;
  if (n === 0 || headerBytes[0] !== 0x7b) {
    throw new FormatError(file, `header must begin with '{' (found ${n === 0 ? 'an empty header' : `byte 0x${headerBytes[0]!.toString(16).padStart(2, '0')}`}); not a safetensors file`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new FormatError(file, 'header is not valid UTF-8');
  }
  // One entry per tensor plus __metadata__, counted while parsing (a 99 MB header of zero-size
  // tensors would otherwise become millions of objects before any check).
  const json = parseJsonStrict(text, file, { context: 'header', maxDepth: 8, maxEntries: MAX_TENSORS_PER_FILE + 1 });
  if (!isJsonObject(json)) throw new FormatError(file, 'header: must be a JSON object');

  const metadata: Record<string, string> = {};
  const rows: { name: string; begin: number; end: number; entry: TensorEntry }[] = [];
  for (const name of Object.keys(json)) {
    const value = json[name];
    if (name === '__metadata__') {
      if (!isJsonObject(value)) throw new FormatError(file, 'header: __metadata__ must be an object mapping strings to strings');
      for (const k of Object.keys(value)) {
        const v = value[k];
        if (typeof v !== 'string') {
          throw new FormatError(file, `header: __metadata__[${JSON.stringify(k)}] must be a string, found ${typeName(v)}`);
        }
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    rows.push(parseEntry(name, value, file, dataStart));
  }

  // Sorted by (begin, end) the tensors must tile [0, dataEnd) exactly (zero-size tensors may share a begin).
  rows.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prevEnd = 0;
  let prevName: string | null = null;
  for (const r of rows) {
    if (r.begin !== prevEnd) {
      const where = prevName === null ? 'the data section starts at 0' : `the previous tensor ${JSON.stringify(prevName)} ends at ${prevEnd}`;
      const kind = r.begin < prevEnd ? 'overlaps' : 'leaves a hole';
      throw new FormatError(file, `tensor ${JSON.stringify(r.name)}: data_offsets begin ${r.begin} ${kind} (${where}); tensors must be contiguous`);
    }
    prevEnd = r.end;
    prevName = r.name;
  }
  if (dataStart + prevEnd !== fileSize) {
    const why = dataStart + prevEnd > fileSize ? 'the file is truncated' : 'the file has trailing bytes';
    throw new FormatError(file, `file size ${fileSize} != 8 + header ${n} + data ${prevEnd} = ${dataStart + prevEnd}; ${why}`);
  }

  const tensors = new Map<string, TensorEntry>();
  for (const r of rows) tensors.set(r.name, r.entry);
  return { tensors, metadata, dataStart };
}

function parseEntry(name: string, value: unknown, file: string, dataStart: number): { name: string; begin: number; end: number; entry: TensorEntry } {
  const t = `tensor ${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name)}`;
  if (!isJsonObject(value)) throw new FormatError(file, `${t}: entry must be an object with dtype, shape, data_offsets`);
  for (const k of Object.keys(value)) {
    if (!ENTRY_KEYS.has(k)) throw new FormatError(file, `${t}: unknown key ${JSON.stringify(k)} (allowed: dtype, shape, data_offsets)`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw new FormatError(file, `${t}: dtype missing or not a string`);
  if (!isSafetensorsDType(dtype)) {
    throw new FormatError(file, `${t}: unknown or unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(SAFETENSORS_DTYPES).join(', ')})`);
  }
  if (!Array.isArray(shape)) throw new FormatError(file, `${t}: shape missing or not an array`);
  let numel = 1;
  for (let d = 0; d < shape.length; d++) {
    const dim: unknown = shape[d];
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw new FormatError(file, `${t}: shape[${d}] = ${showValue(dim)} is not a non-negative integer`);
    }
    numel = checkedMul(file, `${t}: shape element count`, numel, dim);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) throw new FormatError(file, `${t}: data_offsets must be [begin, end]`);
  const [begin, end] = offsets as unknown[];
  for (const [label, v] of [['begin', begin], ['end', end]] as const) {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new FormatError(file, `${t}: data_offsets ${label} = ${showValue(v)} is not a non-negative integer`);
    }
  }
  const b = begin as number, e = end as number;
  if (e < b) throw new FormatError(file, `${t}: data_offsets end ${e} < begin ${b}`);
  const info = SAFETENSORS_DTYPES[dtype];
  const bytes = checkedMul(file, `${t}: byte size`, numel, info.bytes);
  if (e - b !== bytes) {
    throw new FormatError(file, `${t}: data_offsets span ${e - b} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${bytes}`);
  }
  const entry: TensorEntry = { name, dtype: info.dtype, shape: shape as number[], file, offset: dataStart + b, byteLength: bytes };
  return { name, begin: b, end: e, entry };
}


function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Reads exactly dst.byteLength bytes at `position` (in calls of ≤ chunk bytes, default 1 GiB); a short
 *  read is a FormatError. */
export function readFully(fd: number, dst: Uint8Array, position: number, file: string, chunk = READ_CHUNK): void {
  let done = 0;
  while (done < dst.byteLength) {
    const len = Math.min(chunk, dst.byteLength - done);
    const got = readSync(fd, dst, done, len, position + done);
    if (got === 0) {
      throw new FormatError(file, `unexpected end of file at byte ${position + done} (wanted ${dst.byteLength - done} more bytes); was the file modified while open?`);
    }
    done += got;
  }
}

/** Opens a .safetensors file, reading and validating only its header. The returned source keeps the
 *  file open until close(); read() copies one tensor's bytes. */
export function openSafetensors(path: string, opts: SafetensorsOptions = {}): SafetensorsFile {
  const fd = openRegularFile(path);
  try {
    const fileSize = fstatSync(fd).size;
    const first8 = new Uint8Array(8);
    if (fileSize >= 8) readFully(fd, first8, 0, path);
    const n = checkHeaderLength(first8, fileSize, path, opts.maxHeaderBytes);
    const headerBytes = new Uint8Array(n); // n ≤ cap and ≤ file size: checked above
    readFully(fd, headerBytes, 8, path);
    const { tensors, metadata, dataStart } = parseSafetensorsHeader(headerBytes, fileSize, path);
    let open = true;
    return {
      description: path,
      tensors,
      metadata,
      dataStart,
      fileSize,
      read(entry: TensorEntry, dst: Uint8Array): void {
        if (!open) throw new Error(`${path}: read() after close()`);
        if (entry.file !== path || entry.offset < dataStart || entry.offset + entry.byteLength > fileSize) {
          throw new Error(`${path}: read() of tensor ${JSON.stringify(entry.name)} that does not belong to this file`);
        }
        if (dst.byteLength !== entry.byteLength) {
          throw new Error(`${path}: read() of tensor ${JSON.stringify(entry.name)} needs a ${entry.byteLength}-byte buffer, got ${dst.byteLength}`);
        }
        readFully(fd, dst, entry.offset, path);
      },
      close(): void {
        if (open) { open = false; closeSync(fd); }
      },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** The __metadata__ map of a .safetensors file (validated like openSafetensors). */
export function readSafetensorsMetadata(path: string, opts: SafetensorsOptions = {}): Record<string, string> {
  const f = openSafetensors(path, opts);
  f.close();
  return { ...f.metadata };
}
