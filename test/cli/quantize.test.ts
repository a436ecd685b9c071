// `tessera quantize`, spawned as a user runs it: usage and runtime errors, what it writes, and that
// nothing is left behind or overwritten when it refuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf } from '../../src/formats/gguf-writer.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tessera-quantize-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function tessera(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, 'quantize', ...args], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const typesOf = (path: string): Record<string, string> => {
  const f = openGguf(path);
  try { return Object.fromEntries([...f.tensors.values()].map((e) => [e.name, e.ggmlType])); } finally { f.close(); }
};

const ck = writeTestCheckpoint(join(dir, 'smollm2'), 'smollm2-tiny', { formats: ['gguf-f32'] });
const f32 = ck.gguf.f32!;

test('quantize: usage errors exit 2 and say what is wrong', () => {
  const cases: [string[], RegExp][] = [
    [[f32, '--type', 'q4_k_m'], /expected IN\.gguf and OUT\.gguf, got 1 path/],
    [[f32, join(dir, 'x.gguf')], /missing required option --type/],
    [[f32, join(dir, 'x.gguf'), '--type', 'q3_k'], /--type must be one of q4_k_m, q5_k_m, q6_k, q8_0, q4_0, got 'q3_k'/],
  ];
  for (const [argv, re] of cases) {
    const r = tessera(...argv);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});

test('quantize: q4_k_m of a model whose hidden size is not a multiple of 256 mixes q8_0 fallbacks with K-quants', () => {
  const out = join(dir, 'smollm2-q4_k_m.gguf');
  const r = tessera(f32, out, '--type', 'q4_k_m');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /q4_k_m, tensors /);
  const t = typesOf(out);
  // hidden 96: rows of 96 values -> q8_0; ffn_down rows are 256 (the ffn size) -> K-quant
  assert.equal(t['blk.0.attn_q.weight'], 'Q8_0');
  assert.equal(t['token_embd.weight'], 'Q8_0');           // tied: the output projection, q6_K wanted, 96 wide
  // 3 layers: use_more_bits(i, 3) holds for i ≥ ⌊21/8⌋ = 2 only ((i − 0) % 3 == 2 adds nothing)
  assert.equal(t['blk.0.ffn_down.weight'], 'Q4_K');
  assert.equal(t['blk.1.ffn_down.weight'], 'Q4_K');
  assert.equal(t['blk.2.ffn_down.weight'], 'Q6_K');
  assert.equal(t['output_norm.weight'], 'F32');
});

test('quantize: refuses to overwrite, to write over its input, and to quantise twice', () => {
  const existing = join(dir, 'existing.gguf');
  writeFileSync(existing, 'keep me');
  let r = tessera(f32, existing, '--type', 'q8_0');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already exists[\s\S]*--force/);
  assert.equal(readFileSync(existing, 'utf8'), 'keep me');
  r = tessera(f32, f32, '--type', 'q8_0');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is the input file/);
  r = tessera(join(dir, 'missing.gguf'), join(dir, 'y.gguf'), '--type', 'q8_0');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /does not exist/);
  const q8 = join(dir, 'q8.gguf');
  assert.equal(tessera(f32, q8, '--type', 'q8_0').code, 0);
  r = tessera(q8, join(dir, 'twice.gguf'), '--type', 'q4_k_m');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already quantised \(Q8_0\).*quantise the f16 or f32 GGUF instead/);
  assert.match(r.stderr, /hint: quantize takes a GGUF whose weights are f32, f16 or bf16/);
  assert.doesNotMatch(r.stderr, /damaged/);
  assert.equal(existsSync(join(dir, 'twice.gguf')), false);
  assert.equal(tessera(f32, existing, '--type', 'q6_k', '--force').code, 0);
  assert.equal(typesOf(existing)['blk.0.ffn_down.weight'], 'Q6_K');
});

test('quantize: a non-finite weight is refused by name and leaves no output', () => {
  const bad = join(dir, 'nan.gguf');
  const w = new Float32Array(256);
  w[7] = NaN;
  writeGguf(bad, [['general.architecture', 'llama', 'string'], ['llama.block_count', 1, 'u32']],
    [{ name: 'blk.0.attn_q.weight', ggmlType: 'F32', shape: [1, 256], data: new Uint8Array(w.buffer) }]);
  const out = join(dir, 'nan-q4.gguf');
  const r = tessera(bad, out, '--type', 'q4_k_m');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /tensor blk\.0\.attn_q\.weight holds a non-finite value \(NaN\) at element 7/);
  assert.equal(existsSync(out), false);
});
