// Fuzz: thousands of seeded random mutations of small valid safetensors files. Every mutant must either
// open with all tensors inside the file and tiling its data section, or be refused with a FormatError;
// any other exception (RangeError, stack overflow, TypeError…) or a hang fails the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { SAFETENSORS_DTYPES, openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { uniform01 } from '../../src/data/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const prng = uniform01;

function seeds(): Uint8Array[] {
  const u8 = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 255);
  const specs = [
    { meta: { format: 'pt' }, t: [['w', 'F32', [2, 3]], ['b', 'F16', [3]], ['n', 'BF16', [2, 2]]] },
    { meta: undefined, t: [['x', 'I8', [5]], ['e', 'F32', [0]], ['s', 'F64', []], ['m', 'BOOL', [1, 3]]] },
    { meta: { a: 'b', c: 'ünï' }, t: [['only', 'U16', [4]]] },
  ] as const;
  return specs.map((s, i) => {
    const p = join(dir, `seed${i}.safetensors`);
    writeSafetensors(p, s.t.map(([name, dtype, shape]) => {
      const numel = (shape as readonly number[]).reduce((a, b) => a * b, 1);
      return { name, dtype, shape: [...shape], data: u8(numel * SAFETENSORS_DTYPES[dtype].bytes) };
    }), s.meta);
    return new Uint8Array(readFileSync(p));
  });
}

const NASTY_NUMBERS = ['-1', '0', '1e400', '-0', '0.5', '99999999999999999999', '9007199254740993', '4294967296', '1e-9', '18446744073709551615', '3'];
const NASTY_STRINGS = ['"F32"', '"BF16"', '"F8_E4M3"', '"X"', '"__proto__"', '"constructor"', '""', 'null', 'true', '{}', '[]', '[[[[[[[[[[[[1]]]]]]]]]]]]'];

function headerLength(f: Uint8Array): number {
  return f.byteLength >= 8 ? Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true)) : 0;
}

/** Rebuilds a file from a (possibly edited) header text and the seed's data section. */
function withHeader(text: string, data: Uint8Array): Uint8Array {
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.byteLength), true);
  out.set(h, 8);
  out.set(data, 8 + h.byteLength);
  return out;
}

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const at = (len: number): number => Math.floor(rnd() * len);
  const n = headerLength(src);
  const text = new TextDecoder().decode(src.subarray(8, 8 + n));
  const data = src.subarray(8 + n);
  switch (Math.floor(rnd() * 10)) {
    case 0: { // flip 1–4 random bytes
      const f = src.slice();
      for (let k = 1 + at(4); k > 0; k--) f[at(f.length)] ^= 1 << at(8);
      return f;
    }
    case 1: { // insert random bytes
      const i = at(src.length + 1), k = 1 + at(16);
      const f = new Uint8Array(src.length + k);
      f.set(src.subarray(0, i));
      for (let j = 0; j < k; j++) f[i + j] = at(256);
      f.set(src.subarray(i), i + k);
      return f;
    }
    case 2: { // delete a range
      const i = at(src.length), k = 1 + at(16);
      return Uint8Array.from([...src.subarray(0, i), ...src.subarray(i + k)]);
    }
    case 3: { // edit the header length: small shifts, zero, huge, random u64
      const f = src.slice();
      const dv = new DataView(f.buffer);
      const choice = at(4);
      const v = choice === 0 ? BigInt(Math.max(0, n + at(33) - 16)) : choice === 1 ? 0n
        : choice === 2 ? (1n << BigInt(at(64))) : BigInt.asUintN(64, BigInt(at(2 ** 32)) << 32n | BigInt(at(2 ** 32)));
      dv.setBigUint64(0, v, true);
      return f;
    }
    case 4: { // replace a number in the JSON with a nasty one
      const nums = [...text.matchAll(/-?\d+(\.\d+)?/g)];
      if (nums.length === 0) return src;
      const m = pick(nums);
      return withHeader(text.slice(0, m.index) + pick(NASTY_NUMBERS) + text.slice(m.index! + m[0].length), data);
    }
    case 5: { // replace a string/value in the JSON
      const strs = [...text.matchAll(/"[^"]*"/g)];
      if (strs.length === 0) return src;
      const m = pick(strs);
      return withHeader(text.slice(0, m.index) + pick(NASTY_STRINGS) + text.slice(m.index! + m[0].length), data);
    }
    case 6: { // duplicate a key: repeat one `"name":{…}` member, or add a key to an entry
      const members = [...text.matchAll(/"[^"]*":\{[^{}]*\}/g)];
      if (members.length === 0) return src;
      const m = pick(members);
      const extra = rnd() < 0.5 ? m[0] : m[0].replace(/\{/, '{"dtype":"F32",');
      return withHeader(text.slice(0, m.index) + extra + ',' + text.slice(m.index!), data);
    }
    case 7: { // deep nesting (up to 1e5) somewhere a value is expected
      const depth = pick([9, 100, 1000, 100000]);
      const i = text.indexOf('[');
      if (i < 0) return src;
      return withHeader(text.slice(0, i) + '['.repeat(depth) + text.slice(i) + ']'.repeat(rnd() < 0.5 ? depth : 0), data);
    }
    case 8: { // shift one tensor's data_offsets, keeping its span (holes, overlaps, reordering)
      const offs = [...text.matchAll(/"data_offsets":\[(\d+),(\d+)\]/g)];
      if (offs.length === 0) return src;
      const m = pick(offs), k = at(17) - 8;
      const b = Math.max(0, Number(m[1]) + k), e = b + Number(m[2]) - Number(m[1]);
      return withHeader(text.slice(0, m.index) + `"data_offsets":[${b},${e}]` + text.slice(m.index! + m[0].length), data);
    }
    default: { // change the data section's length, keeping the header
      const d = rnd() < 0.5 ? data.subarray(0, at(data.length + 1)) : Uint8Array.from([...data, ...new Array(1 + at(9)).fill(7)]);
      return withHeader(text, d);
    }
  }
}

test('5000+ random mutations: each opens consistently or throws FormatError', { timeout: 60_000 }, () => {
  const rnd = prng(0x7e55e7a);
  const bases = seeds();
  let opened = 0, refused = 0;
  const reasons = new Set<string>();
  for (let c = 0; c < 6000; c++) {
    let f = mutate(pick(bases, rnd), rnd);
    if (rnd() < 0.3) f = mutate(f, rnd); // some cases get two mutations
    // A new file per case: rewriting one file in place makes some filesystems flush on every truncate.
    const path = join(dir, `mutant${c}.safetensors`);
    writeFileSync(path, f);
    let src;
    try {
      src = openSafetensors(path);
    } catch (e) {
      if (!(e instanceof FormatError)) assert.fail(`case ${c}: ${String(e)} is not a FormatError`);
      assert.ok(e.message.startsWith(`${path}: `));
      reasons.add(e.message.slice(path.length + 2).replace(/"(?:[^"\\]|\\.)*"|\(.*?\)|-?[\d.]+(e[+-]?\d+)?|Infinity/g, '_'));
      refused++;
      unlinkSync(path);
      continue;
    }
    // Accepted: every tensor inside the data section, and together they tile it exactly.
    let sum = 0;
    for (const e of src.tensors.values()) {
      assert.ok(e.offset >= src.dataStart && e.offset + e.byteLength <= f.byteLength, `case ${c}: ${e.name} outside the file`);
      const numel = e.shape.reduce((a, b) => a * b, 1);
      assert.ok(Number.isSafeInteger(numel) && e.byteLength % Math.max(numel, 1) === 0);
      const buf = new Uint8Array(e.byteLength);
      src.read(e, buf);
      assert.deepEqual(buf, f.subarray(e.offset, e.offset + e.byteLength));
      sum += e.byteLength;
    }
    assert.equal(src.dataStart + sum, f.byteLength);
    src.close();
    unlinkSync(path);
    opened++;
  }
  // The fuzz must reach both outcomes and many distinct rules, or it tests nothing.
  assert.ok(opened > 100, `only ${opened} mutants opened`);
  assert.ok(refused > 3000, `only ${refused} mutants refused`);
  if (process.env.FUZZ_VERBOSE) console.log(opened, refused, [...reasons].join('\n'));
  assert.ok(reasons.size >= 15, `only ${reasons.size} distinct reasons: ${[...reasons].join(' | ')}`);
});

function pick<T>(xs: readonly T[], rnd: () => number): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}
