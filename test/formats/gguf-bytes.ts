// Builds raw GGUF bytes field by field, independently of src/formats/gguf-writer.ts, so tests can
// write malformed files (wrong counts, bad types, misplaced offsets) that the writer would refuse.

import { closeSync, ftruncateSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class Raw {
  private out: number[] = [];
  get length(): number { return this.out.length; }
  u8(v: number): this { this.out.push(v & 0xff); return this; }
  u32(v: number): this { for (let i = 0; i < 4; i++) this.out.push((v >>> (8 * i)) & 0xff); return this; }
  i32(v: number): this { return this.u32(v >>> 0); }
  u64(v: number | bigint): this {
    let b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 8; i++) { this.out.push(Number(b & 0xffn)); b >>= 8n; }
    return this;
  }
  f32(v: number): this { const b = new Uint8Array(new Float32Array([v]).buffer); for (const x of b) this.out.push(x); return this; }
  bytes(b: ArrayLike<number>): this { for (let i = 0; i < b.length; i++) this.out.push(b[i]!); return this; }
  str(s: string): this { const b = Buffer.from(s, 'utf8'); return this.u64(b.length).bytes(b); }
  padTo(align: number): this { while (this.out.length % align !== 0) this.out.push(0); return this; }
  build(): Uint8Array { return Uint8Array.from(this.out); }
}

/** Value type ids (gguf.md). */
export const VT = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
/** ggml type ids used in tests. */
export const GT = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q3_K: 11, Q4_K: 12, BF16: 30 } as const;

export interface RawTensor { name: string; ne: (number | bigint)[]; type: number; offset: number | bigint; nDims?: number }
export interface RawSpec {
  magic?: number[];
  version?: number;
  nTensors?: number | bigint;
  nKv?: number | bigint;
  /** Each writes one key-value pair. */
  kvs?: ((r: Raw) => void)[];
  tensors?: RawTensor[];
  /** Alignment the builder pads to before the data section (default 32). */
  align?: number;
  /** Bytes of the data section (default: enough for the default tensors). */
  dataBytes?: number;
}

export const kvString = (k: string, v: string) => (r: Raw) => { r.str(k).u32(VT.string).str(v); };
export const kvU32 = (k: string, v: number) => (r: Raw) => { r.str(k).u32(VT.u32).u32(v); };

/** Default: metadata general.architecture = "llama"; tensor "a" F32 [4] at 0, "b" Q8_0 ne [32, 2] at 32. */
export function rawGguf(spec: RawSpec = {}): Uint8Array {
  const kvs = spec.kvs ?? [kvString('general.architecture', 'llama')];
  const tensors = spec.tensors ?? [
    { name: 'a', ne: [4], type: GT.F32, offset: 0 },
    { name: 'b', ne: [32, 2], type: GT.Q8_0, offset: 32 },
  ];
  const r = new Raw();
  r.bytes(spec.magic ?? [0x47, 0x47, 0x55, 0x46]).u32(spec.version ?? 3);
  r.u64(spec.nTensors ?? tensors.length).u64(spec.nKv ?? kvs.length);
  for (const kv of kvs) kv(r);
  for (const t of tensors) {
    r.str(t.name).u32(t.nDims ?? t.ne.length);
    for (const d of t.ne) r.u64(d);
    r.u32(t.type).u64(t.offset);
  }
  r.padTo(spec.align ?? 32);
  const data = spec.dataBytes ?? 32 + 68;
  for (let i = 0; i < data; i++) r.u8(i * 7 + 3);
  return r.build();
}

let dir: string | undefined;
let counter = 0;
/** Writes bytes to a fresh file in a per-process temp directory and returns its path. */
export function tempFile(bytes: Uint8Array, name?: string): string {
  dir ??= mkdtempSync(join(tmpdir(), 'tessera-gguf-'));
  const p = join(dir, name ?? `f${counter++}.gguf`);
  writeFileSync(p, bytes);
  return p;
}
export function tempDir(): string {
  dir ??= mkdtempSync(join(tmpdir(), 'tessera-gguf-'));
  return dir;
}

/** Rewrites one file in place many times (write + ftruncate on a held descriptor: truncating
 *  through writeFileSync costs milliseconds per call on some filesystems). */
export class Rewriter {
  private readonly fd: number;
  constructor(readonly path: string) { this.fd = openSync(path, 'w+'); }
  write(bytes: Uint8Array): string {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, done);
    ftruncateSync(this.fd, bytes.length);
    return this.path;
  }
  close(): void { closeSync(this.fd); }
}
