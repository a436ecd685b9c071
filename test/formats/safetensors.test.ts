// Safetensors reader/writer: hand-built reference files from the format spec, writer → reader round
// trips (single and sharded), and a table of malformed files, one per rule of docs/RELIABILITY.md.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { openSafetensors, readFully, readSafetensorsMetadata } from '../../src/formats/safetensors.js';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/formats/safetensors-writer.js';
import { openShardedSafetensors } from '../../src/formats/hf-folder.js';
import type { TensorSource } from '../../src/formats/tensor-source.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-st-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

/** A file made of an explicit header length, header text and data bytes (nothing computed for us). */
function rawFile(header: string, data: Uint8Array | number[] = [], n?: bigint): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.byteLength + data.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

function put(bytes: Uint8Array): string {
  const p = join(dir, `f${counter++}.safetensors`);
  writeFileSync(p, bytes);
  return p;
}

function bytesOf(arr: ArrayBufferView): Uint8Array {
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

test('reads a hand-built file: dtypes mapped, offsets absolute, bytes exact', () => {
  const header = '{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const data = [0, 0, 128, 63, 0, 0, 0, 64, 0, 60, 0, 64, 0, 66]; // f32 1, 2; f16 1, 2, 3
  const p = put(rawFile(header, data));
  const f = openSafetensors(p);
  const h = new TextEncoder().encode(header).byteLength;
  assert.deepEqual([...f.tensors.keys()], ['a', 'b']); // file order
  assert.deepEqual(f.tensors.get('a'), { name: 'a', dtype: 'f32', shape: [2], file: p, offset: 8 + h, byteLength: 8 });
  assert.deepEqual(f.tensors.get('b'), { name: 'b', dtype: 'f16', shape: [3], file: p, offset: 8 + h + 8, byteLength: 6 });
  assert.deepEqual(f.metadata, { format: 'pt' });
  const a = new Uint8Array(8);
  f.read(f.tensors.get('a')!, a);
  assert.deepEqual([...new Float32Array(a.buffer)], [1, 2]);
  const b = new Uint8Array(6);
  f.read(f.tensors.get('b')!, b);
  assert.deepEqual([...b], [0, 60, 0, 64, 0, 66]);
  assert.throws(() => f.read(f.tensors.get('b')!, new Uint8Array(5)), /needs a 6-byte buffer/);
  f.close();
  assert.throws(() => f.read(f.tensors.get('a')!, a), /after close/);
  assert.deepEqual(readSafetensorsMetadata(p), { format: 'pt' });
});

test('writer output equals the reference layout byte for byte', () => {
  // What the reference implementation writes for {"a": f32 [2] = [1, 2]}: compact JSON, padded with
  // spaces so 8 + N is a multiple of 8.
  const p = join(dir, 'ref.safetensors');
  writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: bytesOf(new Float32Array([1, 2])) }]);
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'; // 54 bytes → padded to 56
  const expected = rawFile(json + '  ', [0, 0, 128, 63, 0, 0, 0, 64]);
  assert.deepEqual(readFileSync(p), Buffer.from(expected));
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.tmp-')), []); // temp file renamed away
});

function sampleTensors(): TensorToWrite[] {
  const f32 = new Float32Array([1.5, -2, 3.25, 0, 7, -0.5]);
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff]); // 1, -2, 65504
  const bf16 = new Uint16Array([0x3f80, 0x4049, 0xbf00, 0x0000]); // 1, 3.140625, -0.5, 0
  return [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 3], data: bytesOf(f32) },
    { name: 'h.f16', dtype: 'F16', shape: [3], data: bytesOf(f16) },
    { name: 'h.bf16', dtype: 'BF16', shape: [2, 2], data: bytesOf(bf16) },
    { name: 'ids', dtype: 'I32', shape: [2], data: bytesOf(new Int32Array([-1, 1 << 30])) },
    { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: 'scalar', dtype: 'F64', shape: [], data: bytesOf(new Float64Array([Math.PI])) },
    { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    { name: '__proto__', dtype: 'U8', shape: [1], data: new Uint8Array([42]) },
  ];
}

function readAll(src: TensorSource): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [name, e] of src.tensors) {
    const buf = new Uint8Array(e.byteLength);
    src.read(e, buf);
    out.set(name, buf);
  }
  return out;
}

test('round trip: f32/f16/bf16/i32/bool/f64 scalar/zero-size/"__proto__" name, metadata', () => {
  const tensors = sampleTensors();
  const p = join(dir, 'rt.safetensors');
  writeSafetensors(p, tensors, { format: 'pt', note: 'ünïcode ✓' });
  const bytes = readFileSync(p);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const f = openSafetensors(p);
  assert.deepEqual(f.metadata, { format: 'pt', note: 'ünïcode ✓' });
  assert.deepEqual([...f.tensors.keys()], tensors.map((t) => t.name));
  const dt = { F32: 'f32', F16: 'f16', BF16: 'bf16', I32: 'i32', BOOL: 'bool', F64: 'f64', U8: 'u8' } as Record<string, string>;
  const got = readAll(f);
  for (const t of tensors) {
    const e = f.tensors.get(t.name)!;
    assert.equal(e.dtype, dt[t.dtype]);
    assert.deepEqual(e.shape, t.shape);
    assert.deepEqual(got.get(t.name), t.data);
    assert.deepEqual(bytes.subarray(e.offset, e.offset + e.byteLength), Buffer.from(t.data));
  }
  f.close();
});

test('sharded round trip: model-0000i-of-0000n files and an index that matches them', () => {
  const sd = mkdtempSync(join(dir, 'shards-'));
  const tensors = sampleTensors();
  // 24 + 6 + 8 + 8 + 3 + 8 + 0 + 1 bytes; 16-byte shards → the 24-byte tensor gets a shard of its own.
  const res = writeShardedSafetensors(sd, tensors, 16, { format: 'pt' });
  assert.equal(res.totalSize, 58);
  assert.deepEqual(res.files, ['model-00001-of-00004.safetensors', 'model-00002-of-00004.safetensors', 'model-00003-of-00004.safetensors', 'model-00004-of-00004.safetensors']);
  const index = JSON.parse(readFileSync(join(sd, 'model.safetensors.index.json'), 'utf8'));
  assert.equal(index.metadata.total_size, 58);
  assert.equal(index.weight_map['model.embed_tokens.weight'], res.files[0]);
  assert.equal(index.weight_map['h.f16'], res.files[1]); // 6 + 8 = 14 ≤ 16
  assert.equal(index.weight_map['h.bf16'], res.files[1]);
  assert.equal(index.weight_map.ids, res.files[2]); // 8 + 3 = 11, + 8 > 16
  assert.equal(index.weight_map.mask, res.files[2]);
  assert.equal(index.weight_map.scalar, res.files[3]);
  const src = openShardedSafetensors(join(sd, 'model.safetensors.index.json'));
  const got = readAll(src);
  for (const t of tensors) assert.deepEqual(got.get(t.name), t.data);
  assert.deepEqual(readSafetensorsMetadata(join(sd, res.files[2]!)), { format: 'pt' });
  src.close();
});

test('writer refuses inconsistent input', () => {
  const p = join(dir, 'bad-w.safetensors');
  const d = new Uint8Array(8);
  assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [3], data: d }]), /data is 8 bytes but shape \[3\] of F32 needs 12/);
  assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [2], data: d }, { name: 'a', dtype: 'F32', shape: [2], data: d }]), /duplicate tensor name "a"/);
  assert.throws(() => writeSafetensors(p, [{ name: '__metadata__', dtype: 'F32', shape: [2], data: d }]), /reserved/);
  assert.throws(() => writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [-2], data: d }]), /not a non-negative integer/);
  assert.deepEqual(readdirSync(dir).filter((x) => x.startsWith('bad-w') || x.includes('.tmp-')), []);
});

// One row per rule: [what, file bytes, expected message, options].
const E = (name: string, body: string): string => `"${name}":${body}`;
const T = (dtype: string, shape: string, offsets: string): string => `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;
const A = E('a', T('F32', '[2]', '[0,8]'));
const eight = new Array(8).fill(0);
const rows: [string, Uint8Array, RegExp, { maxHeaderBytes?: number }?][] = [
  ['file shorter than 8 bytes', new Uint8Array([1, 0, 0]), /3 bytes, smaller than the 8-byte header length/],
  ['header length 2^64 − 1', rawFile(`{${A}}`, eight, 0xffffffffffffffffn), /header length 18446744073709551615 exceeds the limit of 100000000/],
  ['header length above a configured cap', rawFile(`{${A}}`, eight), /exceeds the limit of 16 bytes \(maxHeaderBytes\)/, { maxHeaderBytes: 16 }],
  ['header length past end of file', rawFile(`{${A}}`, eight, 1000n), /header length 1000 runs past the end of the file/],
  ['empty header', rawFile('', []), /found an empty header/],
  ['header not starting with {', rawFile(` {${A}}`, eight), /must begin with '\{' \(found byte 0x20\)/],
  ['byte-order mark before {', rawFile(`\ufeff{${A}}`, eight), /must begin with '\{' \(found byte 0xef\)/],
  ['invalid UTF-8', (() => { const f = rawFile(`{"a\u00ff":{}}`); f[11] = 0xff; f[12] = 0xfe; return f; })(), /not valid UTF-8/],
  ['invalid JSON (trailing comma)', rawFile(`{${A},}`, eight), /header: invalid JSON at offset \d+: expected a string key/],
  ['trailing garbage after JSON', rawFile(`{${A}}x`, eight), /trailing character "x" after the JSON value/],
  ['control character in a name', rawFile(`{"a\u0001":${T('F32', '[2]', '[0,8]')}}`, eight), /control character in string/],
  ['deeply nested arrays', rawFile(`{"a":{"dtype":"F32","shape":${'['.repeat(100000)}`, eight), /nesting deeper than 8 levels/],
  ['duplicate tensor name', rawFile(`{${A},${E('a', T('F32', '[2]', '[8,16]'))}}`, new Array(16).fill(0)), /duplicate key "a"/],
  ['duplicate key inside an entry', rawFile(`{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}`, eight), /duplicate key "dtype"/],
  ['duplicate __metadata__', rawFile(`{"__metadata__":{},"__metadata__":{},${A}}`, eight), /duplicate key "__metadata__"/],
  ['__metadata__ not an object', rawFile(`{"__metadata__":"x",${A}}`, eight), /__metadata__ must be an object mapping strings to strings/],
  ['__metadata__ value not a string', rawFile(`{"__metadata__":{"k":1},${A}}`, eight), /__metadata__\["k"\] must be a string, found number/],
  ['entry not an object', rawFile(`{"a":[1]}`), /tensor "a": entry must be an object/],
  ['unknown key in entry', rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}`, eight), /tensor "a": unknown key "extra"/],
  ['missing dtype', rawFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, eight), /tensor "a": dtype missing/],
  ['unknown dtype', rawFile(`{${E('a', T('F4', '[2]', '[0,8]'))}}`, eight), /tensor "a": unknown or unsupported dtype "F4"/],
  ['dtype with prototype name', rawFile(`{${E('a', T('toString', '[2]', '[0,8]'))}}`, eight), /unknown or unsupported dtype "toString"/],
  ['shape not an array', rawFile(`{${E('a', T('F32', '2', '[0,8]'))}}`, eight), /tensor "a": shape missing or not an array/],
  ['negative dimension', rawFile(`{${E('a', T('F32', '[-2]', '[0,8]'))}}`, eight), /shape\[0\] = -2 is not a non-negative integer/],
  ['fractional dimension', rawFile(`{${E('a', T('F32', '[2,0.5]', '[0,4]'))}}`, eight), /shape\[1\] = 0.5 is not a non-negative integer/],
  ['dimension 1e400', rawFile(`{${E('a', T('F32', '[1e400]', '[0,8]'))}}`, eight), /shape\[0\] = Infinity is not/],
  ['string dimension', rawFile(`{${E('a', T('F32', '["2"]', '[0,8]'))}}`, eight), /shape\[0\] = "2" is not/],
  ['element count overflows', rawFile(`{${E('a', T('F32', '[4294967296,4294967296]', '[0,8]'))}}`, eight), /shape element count: 4294967296 × 4294967296 overflows/],
  ['byte size overflows', rawFile(`{${E('a', T('F64', '[4503599627370496]', '[0,8]'))}}`, eight), /byte size: 4503599627370496 × 8 overflows/],
  ['data_offsets of wrong length', rawFile(`{${E('a', T('F32', '[2]', '[0,4,8]'))}}`, eight), /data_offsets must be \[begin, end\]/],
  ['negative begin', rawFile(`{${E('a', T('F32', '[2]', '[-8,0]'))}}`, eight), /data_offsets begin = -8 is not a non-negative integer/],
  ['end beyond 2^53', rawFile(`{${E('a', T('F32', '[2]', '[0,18446744073709551615]'))}}`, eight), /data_offsets end = 18446744073709552000 is not/],
  ['end < begin', rawFile(`{${E('a', T('F32', '[0]', '[8,0]'))}}`, eight), /data_offsets end 0 < begin 8/],
  ['span ≠ numel × dtype size', rawFile(`{${E('a', T('F32', '[2]', '[0,12]'))}}`, new Array(12).fill(0)), /span 12 bytes but shape \[2\] of F32 needs 8/],
  ['first tensor not at 0', rawFile(`{${E('a', T('F32', '[2]', '[4,12]'))}}`, new Array(12).fill(0)), /tensor "a": data_offsets begin 4 leaves a hole \(the data section starts at 0\)/],
  ['hole between tensors', rawFile(`{${A},${E('b', T('U8', '[2]', '[10,12]'))}}`, new Array(12).fill(0)), /tensor "b": data_offsets begin 10 leaves a hole \(the previous tensor "a" ends at 8\)/],
  ['overlapping tensors', rawFile(`{${A},${E('b', T('U8', '[4]', '[6,10]'))}}`, new Array(10).fill(0)), /tensor "b": data_offsets begin 6 overlaps \(the previous tensor "a" ends at 8\)/],
  ['two tensors on the same bytes', rawFile(`{${A},${E('b', T('F32', '[2]', '[0,8]'))}}`, eight), /begin 0 overlaps/],
  ['trailing bytes after the data', rawFile(`{${A}}`, new Array(9).fill(0)), /file size \d+ != 8 \+ header \d+ \+ data 8 = \d+; the file has trailing bytes/],
  ['data cut short', rawFile(`{${A}}`, new Array(7).fill(0)), /file size \d+ != 8 \+ header \d+ \+ data 8 = \d+; the file is truncated/],
  ['no tensors but data bytes', rawFile('{}', [1]), /the file has trailing bytes/],
];

for (const [what, bytes, re, opts] of rows) {
  test(`rejects: ${what}`, () => {
    const p = put(bytes);
    assert.throws(() => openSafetensors(p, opts), (e: unknown) => {
      assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
      assert.ok(e.message.startsWith(`${p}: `), `message must name the file: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  });
}

test('accepts the edge cases the format allows', () => {
  const empty = openSafetensors(put(rawFile('{}')));
  assert.equal(empty.tensors.size, 0);
  empty.close();
  // Zero-size tensors may share an offset; JSON whitespace padding after the object is fine.
  const z = openSafetensors(put(rawFile(`{${E('z', T('F32', '[0]', '[0,0]'))},${E('y', T('I8', '[0,5]', '[0,0]'))},${A}}  \n\t `, eight)));
  assert.deepEqual([...z.tensors.keys()].sort(), ['a', 'y', 'z']);
  assert.equal(z.tensors.get('a')!.dtype, 'f32');
  z.close();
});

test('missing file and directories are FormatErrors naming the path', () => {
  assert.throws(() => openSafetensors(join(dir, 'nope.safetensors')), /nope\.safetensors: cannot open file \(ENOENT\)/);
  assert.throws(() => openSafetensors(dir), (e: unknown) => e instanceof FormatError);
});

test('every truncation of a valid file is rejected with the right reason', () => {
  const p = join(dir, 'trunc-src.safetensors');
  writeSafetensors(p, sampleTensors().slice(0, 4), { format: 'pt' });
  const full = readFileSync(p);
  const n = Number(full.readBigUInt64LE(0));
  assert.ok(full.length > 200 && 8 + n < full.length);
  const cuts = [...Array(201).keys()].concat([8 + n + 1, 8 + n + 13, full.length - 1]);
  for (const cut of cuts) {
    const q = put(full.subarray(0, cut));
    const re = cut < 8 ? /smaller than the 8-byte header length/
      : cut < 8 + n ? /runs past the end of the file/
        : /the file is truncated/;
    assert.throws(() => openSafetensors(q), (e: unknown) => e instanceof FormatError && re.test(e.message), `cut at ${cut}`);
  }
  const ok = openSafetensors(put(full));
  assert.equal(ok.tensors.size, 4);
  ok.close();
});

test('readFully loops over chunks and reports a short read as a FormatError', () => {
  const bytes = Uint8Array.from({ length: 50 }, (_, i) => i * 3);
  const p = put(bytes);
  const fd = openSync(p, 'r');
  try {
    const dst = new Uint8Array(47);
    readFully(fd, dst, 2, p, 5); // 10 calls of ≤ 5 bytes
    assert.deepEqual(dst, bytes.subarray(2, 49));
    assert.throws(() => readFully(fd, new Uint8Array(10), 45, p, 4), /unexpected end of file at byte 50 \(wanted 5 more bytes\)/);
  } finally {
    closeSync(fd);
  }
});

test('writer accepts views into larger buffers (byteOffset ≠ 0)', () => {
  const backing = Uint8Array.from({ length: 64 }, (_, i) => i);
  const p = join(dir, 'views.safetensors');
  writeSafetensors(p, [
    { name: 'x', dtype: 'U8', shape: [5], data: backing.subarray(10, 15) },
    { name: 'y', dtype: 'I16', shape: [2], data: backing.subarray(33, 37) },
  ]);
  const f = openSafetensors(p);
  const got = readAll(f);
  assert.deepEqual([...got.get('x')!], [10, 11, 12, 13, 14]);
  assert.deepEqual([...got.get('y')!], [33, 34, 35, 36]);
  f.close();
});
