// GGUF reader and writer: writer → reader round trips over every value type and tensor type, a
// table of hostile files (each refused with a FormatError naming the problem), and truncation at
// every byte of a small valid file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FormatError } from '../../src/formats/errors.js';
import { openGguf, type GgufType, type GgufValue } from '../../src/formats/gguf.js';
import { writeGguf, type GgufMetadataEntry, type GgufTensorToWrite } from '../../src/formats/gguf-writer.js';
import { GT, Raw, Rewriter, VT, kvString, kvU32, rawGguf, tempDir, tempFile, type RawSpec } from './gguf-bytes.js';
import { uniform01 } from '../../src/data/rng.js';

const rng = uniform01;

function randomBytes(n: number, r: () => number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

const METADATA: [string, GgufValue, GgufType][] = [
  ['t.u8', 200, 'u8'], ['t.i8', -5, 'i8'], ['t.u16', 60000, 'u16'], ['t.i16', -30000, 'i16'],
  ['t.u32', 4_000_000_000, 'u32'], ['t.i32', -2_000_000_000, 'i32'], ['t.f32', 1.5, 'f32'], ['t.bool', true, 'bool'],
  ['t.string', 'héllo ✓', 'string'], ['t.u64.small', 12345, 'u64'], ['t.u64.big', 2n ** 60n, 'u64'],
  ['t.i64.small', -5, 'i64'], ['t.i64.big', -(2n ** 62n), 'i64'], ['t.f64', Math.PI, 'f64'],
  ['t.arr.string', ['a', '', 'ü b'], 'string[]'], ['t.arr.i32', [1, -2, 3], 'i32[]'], ['t.arr.f32', [0.5, -0.25], 'f32[]'],
  ['t.arr.u8', [0, 255], 'u8[]'], ['t.arr.bool', [true, false], 'bool[]'], ['t.arr.u64', [1, 2n ** 63n], 'u64[]'],
  ['t.arr.empty', [], 'f32[]'], ['t.arr.f64', [1e300, -1e-300], 'f64[]'],
];

function tensorsFor(r: () => number): GgufTensorToWrite[] {
  return [
    { name: 'w.f32', ggmlType: 'F32', shape: [3, 4], data: randomBytes(48, r) },
    { name: 'w.f16', ggmlType: 'F16', shape: [2, 8], data: randomBytes(32, r) },
    { name: 'w.bf16', ggmlType: 'BF16', shape: [5], data: randomBytes(10, r) },
    { name: 'w.q8', ggmlType: 'Q8_0', shape: [2, 64], data: randomBytes(2 * 2 * 34, r) },
    { name: 'w.q4', ggmlType: 'Q4_0', shape: [3, 32], data: randomBytes(3 * 18, r) },
    { name: 'w.q4k', ggmlType: 'Q4_K', shape: [2, 256], data: randomBytes(2 * 144, r) },
    { name: 'w.q5k', ggmlType: 'Q5_K', shape: [1, 512], data: randomBytes(2 * 176, r) },
    { name: 'w.q6k', ggmlType: 'Q6_K', shape: [3, 256], data: randomBytes(3 * 210, r) },
  ];
}

for (const alignment of [32, 64]) {
  test(`writer → reader round trip, alignment ${alignment}`, () => {
    const r = rng(alignment);
    const tensors = tensorsFor(r);
    const path = join(tempDir(), `roundtrip-${alignment}.gguf`);
    writeGguf(path, METADATA, tensors, { alignment });
    const f = openGguf(path);
    try {
      assert.equal(f.version, 3);
      assert.equal(f.alignment, alignment);
      assert.equal(f.dataOffset % alignment, 0);
      for (const [k, v, t] of METADATA) {
        assert.deepEqual(f.metadata.get(k), v, k);
        assert.equal(f.metadataTypes.get(k), t, k);
      }
      assert.equal(typeof f.metadata.get('t.u64.big'), 'bigint');
      if (alignment === 32) assert.equal(f.metadata.has('general.alignment'), false);
      else assert.equal(f.metadataTypes.get('general.alignment'), 'u32');
      const dtypes = { F32: 'f32', F16: 'f16', BF16: 'bf16', Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k' } as const;
      assert.deepEqual([...f.tensors.keys()], tensors.map((t) => t.name));
      for (const t of tensors) {
        const e = f.tensors.get(t.name)!;
        assert.deepEqual(e.shape, t.shape);
        assert.deepEqual(e.ne, [...t.shape].reverse());
        assert.equal(e.dtype, dtypes[t.ggmlType]);
        assert.equal(e.ggmlType, t.ggmlType);
        assert.equal((e.offset - f.dataOffset) % alignment, 0);
        const got = new Uint8Array(e.byteLength);
        f.read(e, got);
        assert.deepEqual(got, t.data);
      }
    } finally {
      f.close();
    }
  });
}

test('f32 metadata values are rounded to f32; the header is little-endian v3 with the right counts', () => {
  const path = join(tempDir(), 'f32.gguf');
  writeGguf(path, [['x', [0.1], 'f32[]'], ['y', 1e-5, 'f32']], []);
  const f = openGguf(path);
  assert.deepEqual(f.metadata.get('x'), [Math.fround(0.1)]);
  assert.equal(f.metadata.get('y'), Math.fround(1e-5));
  f.close();
  const b = readFileSync(path);
  assert.equal(b.toString('latin1', 0, 4), 'GGUF');
  assert.equal(b.readUInt32LE(4), 3);
  assert.equal(b.readBigUInt64LE(8), 0n);
  assert.equal(b.readBigUInt64LE(16), 2n);
});

test('large header (vocabulary-sized arrays, > 1 MiB) round-trips across buffer growth and read chunks', () => {
  const n = 150_000;
  const tokens = Array.from({ length: n }, (_, i) => `tok_${i}_${'é'.repeat(i % 5)}`);
  const types = Array.from({ length: n }, (_, i) => (i % 7) - 3);
  const scores = Array.from({ length: n }, (_, i) => Math.fround(i / 3));
  const path = join(tempDir(), 'big-header.gguf');
  const data = randomBytes(64 * 4, rng(9));
  writeGguf(path, [['tokenizer.ggml.tokens', tokens], ['tokenizer.ggml.token_type', types, 'i32[]'], ['tokenizer.ggml.scores', scores, 'f32[]']],
    [{ name: 'w', ggmlType: 'F32', shape: [64], data }]);
  const f = openGguf(path);
  assert.ok(f.dataOffset > 2 * 1024 * 1024);
  assert.deepEqual(f.metadata.get('tokenizer.ggml.tokens'), tokens);
  assert.deepEqual(f.metadata.get('tokenizer.ggml.token_type'), types);
  assert.deepEqual(f.metadata.get('tokenizer.ggml.scores'), scores);
  const got = new Uint8Array(data.length);
  f.read(f.tensors.get('w')!, got);
  assert.deepEqual(got, data);
  f.close();
});

test('writer refuses bad input and leaves no file or temp file behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-gguf-w-'));
  const path = join(dir, 'bad.gguf');
  const cases: [GgufMetadataEntry[], GgufTensorToWrite[], RegExp][] = [
    [[['n', 5]], [], /explicit type/],
    [[['n', 300, 'u8']], [], /out of range/],
    [[['n', 1.5, 'u32']], [], /not an integer/],
    [[['n', 'x', 'string'], ['n', 'y', 'string']], [], /duplicate key/],
    [[], [{ name: 'q', ggmlType: 'Q8_0', shape: [2, 16], data: new Uint8Array(34) }], /multiple of 32/],
    [[], [{ name: 'q', ggmlType: 'F32', shape: [2, 2], data: new Uint8Array(15) }], /needs 16 bytes/],
    [[], [{ name: 'a', ggmlType: 'F32', shape: [1], data: new Uint8Array(4) }, { name: 'a', ggmlType: 'F32', shape: [1], data: new Uint8Array(4) }], /duplicate tensor/],
    [[], [{ name: 'x'.repeat(64), ggmlType: 'F32', shape: [1], data: new Uint8Array(4) }], /1\.\.63 bytes/],
  ];
  for (const [md, ts, re] of cases) assert.throws(() => writeGguf(path, md, ts), re);
  assert.throws(() => writeGguf(path, [], [], { alignment: 24 }), /power of two/);
  assert.deepEqual(readdirSync(dir), []);
  assert.equal(existsSync(path), false);
});

test('a valid raw file (built without the writer) opens with the expected table', () => {
  const f = openGguf(tempFile(rawGguf()));
  assert.equal(f.metadata.get('general.architecture'), 'llama');
  const b = f.tensors.get('b')!;
  assert.deepEqual(b.shape, [2, 32]);
  assert.equal(b.byteLength, 68);
  assert.equal(b.offset, f.dataOffset + 32);
  f.close();
});

test('tensors of other known ggml types are listed but refused at read with advice', () => {
  // Q3_K: 256 values per 110-byte block
  const path = tempFile(rawGguf({ tensors: [{ name: 'k', ne: [256, 1], type: GT.Q3_K, offset: 0 }], dataBytes: 110 }));
  const f = openGguf(path);
  const e = f.tensors.get('k')!;
  assert.equal(e.dtype, 'other');
  assert.equal(e.byteLength, 110);
  assert.throws(() => f.read(e, new Uint8Array(110)), (err: unknown) =>
    err instanceof FormatError && /unsupported tensor type Q3_K for tensor k; re-quantise to q8_0, q4_0 or a K-quant \(e\.g\. tessera quantize/.test(err.message));
  f.close();
});

// ---------------------------------------------------------------------------------------------
// Hostile files

const arrayKv = (elemType: number, len: number | bigint, body: (r: Raw) => void = () => {}) => (r: Raw) => {
  r.str('arr').u32(VT.array).u32(elemType).u64(len);
  body(r);
};

const HOSTILE: [string, RawSpec | Uint8Array, RegExp][] = [
  ['bad magic', { magic: [0x47, 0x47, 0x4d, 0x4c] }, /not a GGUF file: magic is "GGML"/],
  ['empty file', new Uint8Array(0), /not a GGUF file: only 0 bytes/],
  ['version 1', { version: 1 }, /GGUF version 1 is not supported/],
  ['version 4', { version: 4 }, /unsupported GGUF version 4/],
  ['byte-swapped version 3', { version: 0x03000000 }, /big-endian GGUF .* byte-swapped 3/],
  ['n_tensors 2^60', { nTensors: 2n ** 60n }, /tensor count = 1152921504606846976 exceeds maxTensors/],
  ['n_kv 2^60', { nKv: 2n ** 60n }, /metadata count = 1152921504606846976 need at least/],
  ['n_kv 2^64-1', { nKv: 2n ** 64n - 1n }, /need at least/],
  ['n_tensors more than fit', { nTensors: 1000 }, /need at least \d+ bytes of header/],
  ['string length past EOF', { kvs: [(r) => r.str('k').u32(VT.string).u64(5000)] }, /length of metadata "k" = 5000 .* needs at least 5000 bytes/],
  ['string length 2^63', { kvs: [(r) => r.str('k').u32(VT.string).u64(2n ** 63n)] }, /length of metadata "k" = 9223372036854775808/],
  ['key length huge', { kvs: [(r) => r.u64(2n ** 62n)] }, /length of key of metadata entry 0 = \d+ .* exceeds the limit of 65535/],
  ['array length huge', { kvs: [arrayKv(VT.u32, 2n ** 40n)] }, /array length of metadata "arr" = 1099511627776/],
  ['array of strings longer than the file', { kvs: [arrayKv(VT.string, 100)] }, /array length of metadata "arr" = 100 .* needs at least 800 bytes/],
  ['nested arrays', { kvs: [arrayKv(VT.array, 1)] }, /array of arrays/],
  ['unknown value type', { kvs: [(r) => r.str('k').u32(13).u32(0)] }, /metadata "k" has unknown value type 13/],
  ['unknown array element type', { kvs: [arrayKv(99, 1)] }, /elements of metadata "arr" has unknown value type 99/],
  ['bool byte 2', { kvs: [(r) => r.str('k').u32(VT.bool).u8(2)] }, /bool with byte value 2/],
  ['invalid UTF-8 key', { kvs: [(r) => r.u64(2).bytes([0xc3, 0x28]).u32(VT.u8).u8(0)] }, /not valid UTF-8/],
  ['empty key', { kvs: [(r) => r.u64(0).u32(VT.u8).u8(0)] }, /empty key/],
  ['duplicate metadata key', { kvs: [kvU32('k', 1), kvU32('k', 2)] }, /duplicate metadata key "k"/],
  ['unknown ggml type', { tensors: [{ name: 'a', ne: [4], type: 99, offset: 0 }] }, /tensor "a" has unknown ggml type id 99/],
  ['removed ggml type 4', { tensors: [{ name: 'a', ne: [4], type: 4, offset: 0 }] }, /unknown ggml type id 4/],
  ['n_dims 0', { tensors: [{ name: 'a', ne: [], type: GT.F32, offset: 0 }] }, /tensor "a" has n_dims = 0/],
  ['n_dims 5', { tensors: [{ name: 'a', ne: [1, 1, 1, 1, 1], type: GT.F32, offset: 0 }] }, /n_dims = 5/],
  ['ne zero', { tensors: [{ name: 'a', ne: [4, 0], type: GT.F32, offset: 0 }] }, /ne\[1\] = 0/],
  ['ne negative', { tensors: [{ name: 'a', ne: [-4n], type: GT.F32, offset: 0 }] }, /ne\[0\] of tensor "a" = 18446744073709551612 is out of range/],
  ['ne product overflows', { tensors: [{ name: 'a', ne: [2n ** 30n, 2n ** 30n, 2n ** 30n], type: GT.F32, offset: 0 }] }, /element count of tensor "a": .* overflows/],
  ['byte size overflows', { tensors: [{ name: 'a', ne: [2n ** 52n, 2], type: GT.F32, offset: 0 }] }, /overflows/],
  ['huge tensor past EOF', { tensors: [{ name: 'a', ne: [2n ** 40n], type: GT.F32, offset: 0 }] }, /tensor "a" data .* past the end of the file/],
  ['ne[0] not a block multiple', { tensors: [{ name: 'a', ne: [16, 2], type: GT.Q8_0, offset: 0 }] }, /ne\[0\] = 16, not a multiple of its block size 32/],
  ['alignment 0', { kvs: [kvU32('general.alignment', 0)] }, /general.alignment = 0 .* power of two/],
  ['alignment 3', { kvs: [kvU32('general.alignment', 3)] }, /general.alignment = 3/],
  ['alignment 2^31', { kvs: [kvU32('general.alignment', 2 ** 31)] }, /general.alignment = 2147483648/],
  ['alignment 2^40 as u64', { kvs: [(r) => r.str('general.alignment').u32(VT.u64).u64(2n ** 40n)] }, /general.alignment = 1099511627776 \(u64\)/],
  ['alignment as string', { kvs: [kvString('general.alignment', '32')] }, /general.alignment = 32 \(string\)/],
  ['offset misaligned', { tensors: [{ name: 'a', ne: [4], type: GT.F32, offset: 4 }] }, /tensor "a" has data offset 4, not a multiple of the alignment 32/],
  ['offset past EOF', { tensors: [{ name: 'a', ne: [4], type: GT.F32, offset: 4096 }] }, /tensor "a" data .* past the end of the file/],
  ['offset 2^63', { tensors: [{ name: 'a', ne: [4], type: GT.F32, offset: 2n ** 63n }] }, /data offset of tensor "a" = 9223372036854775808 is out of range/],
  ['overlapping tensors', { tensors: [{ name: 'a', ne: [32, 2], type: GT.Q8_0, offset: 0 }, { name: 'b', ne: [4], type: GT.F32, offset: 64 }] }, /tensor "b" data at relative offset 64 overlaps tensor "a" \[0, 68\)/],
  ['same offset twice', { tensors: [{ name: 'a', ne: [4], type: GT.F32, offset: 0 }, { name: 'b', ne: [4], type: GT.F32, offset: 0 }] }, /overlaps/],
  ['duplicate tensor names', { tensors: [{ name: 'a', ne: [4], type: GT.F32, offset: 0 }, { name: 'a', ne: [4], type: GT.F32, offset: 32 }] }, /duplicate tensor name "a"/],
  ['empty tensor name', { tensors: [{ name: '', ne: [4], type: GT.F32, offset: 0 }] }, /tensor 0 at offset \d+ has an empty name/],
  ['tensor name of 64 bytes', { tensors: [{ name: 'n'.repeat(64), ne: [4], type: GT.F32, offset: 0 }] }, /length of name of tensor 0 = 64 .* exceeds the limit of 63/],
  ['data section missing', { dataBytes: 0 }, /tensor "a" data \[\d+, \d+\) lies past the end/],
];

for (const [what, spec, re] of HOSTILE) {
  test(`hostile: ${what}`, () => {
    const bytes = spec instanceof Uint8Array ? spec : rawGguf(spec);
    const path = tempFile(bytes);
    assert.throws(() => openGguf(path), (e: unknown) => {
      assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
      assert.match(e.message, re);
      assert.ok(e.message.startsWith(path), 'message names the file');
      return true;
    });
  });
}

test('hostile: huge counts in a 160-byte file fail without a large allocation', () => {
  const bytes = rawGguf({ nTensors: 2n ** 16n, nKv: 2n ** 59n, tensors: [], dataBytes: 0 });
  const padded = new Uint8Array(160);
  padded.set(bytes.subarray(0, Math.min(160, bytes.length)));
  const path = tempFile(padded);
  const before = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
  assert.throws(() => openGguf(path), /need at least/);
  const after = process.memoryUsage().arrayBuffers + process.memoryUsage().heapUsed;
  assert.ok(after - before < 64 * 1024 * 1024, `allocated ${after - before} bytes`);
});

test('hostile: maxMetadataBytes and maxTensors caps are enforced', () => {
  const path = tempFile(rawGguf({ kvs: [kvString('general.architecture', 'x'.repeat(1000))] }));
  assert.throws(() => openGguf(path, { maxMetadataBytes: 256 }), /maxMetadataBytes = 256/);
  assert.throws(() => openGguf(path, { maxTensors: 1 }), /tensor count = 2 exceeds maxTensors = 1/);
  openGguf(path).close();
});

test('truncation at every byte of a small valid file is refused with FormatError', () => {
  // the last tensor ends exactly at the end of the file, so no prefix is a valid file
  const full = rawGguf({
    kvs: [kvString('general.architecture', 'llama'), arrayKv(VT.string, 2, (r) => r.str('ab').str('c')), kvU32('general.alignment', 32)],
  });
  const f = openGguf(tempFile(full));
  f.close();
  const file = new Rewriter(join(tempDir(), 'trunc.gguf'));
  for (let n = 0; n < full.length; n++) {
    assert.throws(() => openGguf(file.write(full.subarray(0, n))), FormatError, `prefix of ${n} bytes`);
  }
  file.close();
});
