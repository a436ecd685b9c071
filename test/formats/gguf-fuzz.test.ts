// Mutation fuzz of the GGUF reader: thousands of seeded random mutations of small valid files. Each
// must either open (and then every loadable tensor must read) or throw FormatError — never a
// RangeError, TypeError, out-of-memory or hang.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf-writer.js';
import { Rewriter, tempDir } from './gguf-bytes.js';
import { uniform01 } from '../../src/data/rng.js';

const rng = uniform01;

function seeds(): Uint8Array[] {
  const dir = tempDir();
  const a = join(dir, 'seed-a.gguf');
  writeGguf(a, [
    ['general.architecture', 'llama'],
    ['llama.context_length', 128, 'u32'],
    ['tokenizer.ggml.tokens', ['<s>', 'a', 'bc'], 'string[]'],
    ['tokenizer.ggml.scores', [0, -1.5, 2], 'f32[]'],
    ['tokenizer.ggml.token_type', [3, 1, 1], 'i32[]'],
    ['x.u64', 2n ** 40n, 'u64'],
    ['x.bool', true],
  ], [
    { name: 'token_embd.weight', ggmlType: 'Q8_0', shape: [3, 32], data: new Uint8Array(3 * 34).fill(1) },
    { name: 'output_norm.weight', ggmlType: 'F32', shape: [32], data: new Uint8Array(128).fill(2) },
  ]);
  const b = join(dir, 'seed-b.gguf');
  writeGguf(b, [['general.name', 'tiny'], ['a.i8', [-1, 2], 'i8[]']], [
    { name: 'q4', ggmlType: 'Q4_0', shape: [2, 32], data: new Uint8Array(36).fill(0x55) },
    { name: 'h', ggmlType: 'F16', shape: [2, 2, 2], data: new Uint8Array(16).fill(3) },
    { name: 'bf', ggmlType: 'BF16', shape: [3], data: new Uint8Array(6).fill(4) },
  ], { alignment: 16 });
  return [readFileSync(a), readFileSync(b)];
}

const INTERESTING = [0n, 1n, 2n, 3n, 4n, 5n, 8n, 13n, 31n, 32n, 63n, 64n, 0x7fn, 0xffn, 0x7fffffffn, 0xffffffffn, 2n ** 32n, 2n ** 53n, 2n ** 60n, 2n ** 63n, 2n ** 64n - 1n];

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  let b: Uint8Array = Uint8Array.from(src);
  const rounds = 1 + pick(3);
  for (let k = 0; k < rounds; k++) {
    switch (pick(6)) {
      case 0: { const i = pick(b.length); b[i] = b[i]! ^ (1 << pick(8)); break; }
      case 1: { b[pick(b.length)] = pick(256); break; }
      case 2: { // overwrite a little-endian u32/u64 with an interesting value, at any offset in the header
        const v = INTERESTING[pick(INTERESTING.length)]!;
        const width = r() < 0.5 ? 4 : 8;
        const at = pick(Math.max(1, Math.min(b.length, 400) - width));
        for (let i = 0; i < width; i++) b[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
        break;
      }
      case 3: { b = b.subarray(0, pick(b.length + 1)); break; }
      case 4: { // insert random bytes
        const at = pick(b.length + 1);
        const ins = Uint8Array.from({ length: 1 + pick(8) }, () => pick(256));
        const nb = new Uint8Array(b.length + ins.length);
        nb.set(b.subarray(0, at)); nb.set(ins, at); nb.set(b.subarray(at), at + ins.length);
        b = nb;
        break;
      }
      default: { // delete a run of bytes
        const at = pick(b.length + 1);
        const n = 1 + pick(8);
        const nb = new Uint8Array(Math.max(0, b.length - n));
        nb.set(b.subarray(0, at).subarray(0, nb.length));
        if (at + n < b.length) nb.set(b.subarray(at + n), at);
        b = nb;
      }
    }
  }
  return b;
}

test('fuzz: 6000 mutations of valid GGUF files open cleanly or throw FormatError', () => {
  const bases = seeds();
  const r = rng(0x6775_6766);
  const file = new Rewriter(join(tempDir(), 'fuzz.gguf'));
  let opened = 0;
  let refused = 0;
  for (let i = 0; i < 6000; i++) {
    const bytes = mutate(bases[i % bases.length]!, r);
    const path = file.write(bytes);
    try {
      const f = openGguf(path);
      try {
        for (const e of f.tensors.values()) {
          assert.ok(e.offset + e.byteLength <= bytes.length, 'entry inside the file');
          if (e.dtype === 'other') continue;
          const dst = new Uint8Array(e.byteLength);
          f.read(e, dst);
          assert.deepEqual(dst, bytes.subarray(e.offset, e.offset + e.byteLength));
        }
      } finally {
        f.close();
      }
      opened++;
    } catch (e) {
      if (!(e instanceof FormatError)) {
        assert.fail(`case ${i}: ${String(e)}; bytes ${Buffer.from(bytes).toString('hex')}`);
      }
      refused++;
    }
  }
  file.close();
  if (process.env.GGUF_FUZZ_VERBOSE) console.log({ opened, refused });
  // both outcomes must occur, or the mutations are too weak / too strong to test anything
  assert.ok(opened > 100, `opened ${opened}`);
  assert.ok(refused > 1000, `refused ${refused}`);
});
