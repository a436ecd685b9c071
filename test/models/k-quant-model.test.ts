// A model file whose matrices take turns over q8_0, q4_0, q4_K, q5_K and q6_K (kquant-tiny, so q, k
// and v — one input — need q8_0 and q8_K activations alike), run whole:
//   - against the same model with every matrix dequantised to f32: only the activation quantisation
//     separates them, so a matmul fed the wrong activation format shows up as a gross error;
//   - the SIMD kernels against the plain-TypeScript twin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf, type GgufMetadataEntry, type GgufWriteType } from '../../src/formats/gguf-writer.js';
import { activationFormat, type WeightDType } from '../../src/kernels/types.js';
import { quantizeToQ4_0, quantizeToQ8_0 } from '../../src/kernels/reference.js';
import { quantizeToK } from '../../src/kernels/k-quants.js';
import { readAsF32 } from '../../src/models/tensor-convert.js';
import { loadModel } from '../../src/models/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-kq-model-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const f32 = writeTestCheckpoint(join(dir, 'ck'), 'kquant-tiny', { formats: ['gguf-f32'] }).gguf.f32!;
const mixed = join(dir, 'mixed.gguf');
const ROTATION = ['Q8_0', 'Q4_K', 'Q6_K', 'Q4_0', 'Q5_K'] as const;

/** src rewritten with every tensor encoded by `encode` (f32 values in, type and bytes out). */
function rewrite(src: string, dst: string, encode: (name: string, i: number, values: Float32Array) => { ggmlType: GgufWriteType; data: Uint8Array }): void {
  const f = openGguf(src);
  try {
    const md: GgufMetadataEntry[] = [...f.metadata].filter(([k]) => k !== 'general.file_type').map(([k, v]) => [k, v, f.metadataTypes.get(k)]);
    writeGguf(dst, md, [...f.tensors.values()].map((e, i) => ({ name: e.name, shape: e.shape, ...encode(e.name, i, readAsF32(f, e)) })));
  } finally { f.close(); }
}
rewrite(f32, mixed, (name, i, v) => {
  if (name.endsWith('norm.weight')) return { ggmlType: 'F32', data: new Uint8Array(v.buffer) };
  const t = ROTATION[i % ROTATION.length]!;
  const data = t === 'Q8_0' ? quantizeToQ8_0(v) : t === 'Q4_0' ? quantizeToQ4_0(v) : quantizeToK(t === 'Q4_K' ? 'q4_k' : t === 'Q5_K' ? 'q5_k' : 'q6_k', v);
  return { ggmlType: t, data };
});

const PROMPT = [1, 17, 42, 99, 5, 250, 3, 77, 8, 120, 64, 33];

async function logits(path: string, kernels: 'wasm' | 'reference'): Promise<Float32Array> {
  const m = await loadModel(path, { kernels, threads: 1, contextLength: 64 });
  try {
    return Float32Array.from(m.model.forward(PROMPT, m.model.createCache(64), { logits: 'all' }));
  } finally { m.model.dispose(); }
}

/** max |a − b| / rms(b). */
function relErr(a: Float32Array, b: Float32Array): number {
  let m = 0, ss = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); ss += b[i]! ** 2; }
  return m / Math.sqrt(ss / b.length);
}

test('a file mixing q8_0, q4_0, q4_K, q5_K and q6_K runs as its dequantised f32 twin, up to activation quantisation', async () => {
  const f = openGguf(mixed);
  const t = (n: string) => f.tensors.get(n)!.ggmlType;
  assert.notEqual(activationFormat(t('blk.0.attn_q.weight').toLowerCase() as WeightDType), activationFormat(t('blk.0.attn_k.weight').toLowerCase() as WeightDType), 'q and k want different activation formats');
  f.close();
  const deq = join(dir, 'dequantised.gguf');
  rewrite(mixed, deq, (_, __, v) => ({ ggmlType: 'F32', data: new Uint8Array(v.buffer) }));
  const err = relErr(await logits(mixed, 'wasm'), await logits(deq, 'wasm'));
  console.log(`# mixed file vs dequantised f32: max |Δ logit| / rms = ${err.toExponential(2)}`);
  // measured 0.15 (a pure q8_0 file vs its dequantised twin: 0.13 — random weights amplify the
  // activation rounding); with the q8_0 / q8_K scratch mixed up: 5.7
  assert.ok(err < 0.5, `max |Δ logit| / rms = ${err}`);
});

test('the mixed file: SIMD kernels = plain-TypeScript twin on the whole model', async () => {
  const err = relErr(await logits(mixed, 'wasm'), await logits(mixed, 'reference'));
  console.log(`# wasm vs reference kernels: max |Δ logit| / rms = ${err.toExponential(2)}`);
  assert.ok(err < 1e-4, `max |Δ logit| / rms = ${err}`);
});

test('a K-quant super-block whose f16 scale is not finite is refused at load, naming the tensor', async () => {
  const bad = join(dir, 'nan-scale.gguf');
  rewrite(mixed, bad, (name, i, v) => {
    if (name.endsWith('norm.weight')) return { ggmlType: 'F32', data: new Uint8Array(v.buffer) };
    if (name !== 'blk.0.attn_k.weight') return { ggmlType: 'F32', data: new Uint8Array(v.buffer) };
    const data = quantizeToK('q6_k', v);
    data[210 + 208] = 0x00; data[210 + 209] = 0x7e;                     // block 1's d = f16 NaN
    return { ggmlType: 'Q6_K', data };
  });
  await assert.rejects(loadModel(bad, { threads: 1, contextLength: 16 }), /tensor blk\.0\.attn_k\.weight holds a non-finite value \(NaN at element 256\)/);
});
