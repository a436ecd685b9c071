// Properties of the Llama forward pass that must hold whatever the weights:
//   incremental decoding == one full forward over the same tokens;
//   chunked prefill == one-shot prefill;
//   the SIMD kernels == the plain-TypeScript twins (whole model);
//   an HF folder == the same weights converted to GGUF (neox RoPE vs permuted Q/K + normal RoPE);
//   quantising to q8_0 at load == a q8_0 GGUF written by the converter.
// (Agreement with llama.cpp itself is test/reference/.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { presetConfig, writeRandomGguf, writeTestCheckpoint, TINY_PRESETS, type TestCheckpoint } from '../../src/testing/checkpoints.js';
import { panelsFit, PANEL_COLS } from '../../src/kernels/repack.js';
import { randomIds } from '../../src/testing/random-model.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-llama-'));
const checkpoints = new Map<string, TestCheckpoint>();
for (const preset of TINY_PRESETS) {
  checkpoints.set(preset, writeTestCheckpoint(join(dir, preset), preset, { formats: ['hf', 'gguf-f32', 'gguf-q8_0'] }));
}
test.after(() => rmSync(dir, { recursive: true, force: true }));

// These properties are checked at f32 precision, so with f32 K/V rows: an f16 cache rounds a K/V
// value the other way when two computations differ by 1e-6 (measured up to 6e-4 of the logits'
// range; docs/ARCHITECTURE.md "Batch invariance").
const F32_ROWS: LoadOptions = { cacheDType: 'f32' };

/** Logits (n, V) for `ids`, fed in pieces of the given sizes. */
async function logitsOf(path: string, ids: number[], pieces: number[], opts: LoadOptions = {}): Promise<Float32Array> {
  const { model } = await loadModel(path, { threads: 2, contextLength: 256, ...F32_ROWS, ...opts });
  try {
    const cache = model.createCache();
    const V = model.vocabSize;
    const out = new Float32Array(ids.length * V);
    let at = 0;
    for (const p of pieces) {
      out.set(model.forward(ids.slice(at, at + p), cache, { logits: 'all' }), at * V);
      at += p;
    }
    assert.equal(at, ids.length);
    assert.equal(cache.length, ids.length);
    return out;
  } finally { model.dispose(); }
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Number.isFinite(a[i]) && Number.isFinite(b[i]), `non-finite logit at ${i}`);
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

for (const preset of TINY_PRESETS) {
  const ck = () => checkpoints.get(preset)!;
  const ids = randomIds(7, 40, 500);

  test(`${preset}: incremental decoding equals one full forward`, async () => {
    const full = await logitsOf(ck().hfDir!, ids, [ids.length]);
    const steps = await logitsOf(ck().hfDir!, ids, ids.map(() => 1));
    assert.ok(maxRelDiff(steps, full) < 1e-5, `relative difference ${maxRelDiff(steps, full)}`);
  });

  test(`${preset}: chunked prefill equals one-shot prefill`, async () => {
    const oneShot = await logitsOf(ck().hfDir!, ids, [ids.length], { prefillChunk: 64 });
    const chunked = await logitsOf(ck().hfDir!, ids, [ids.length], { prefillChunk: 7 });
    const uneven = await logitsOf(ck().hfDir!, ids, [3, 17, 1, 19], { prefillChunk: 5 });
    assert.ok(maxRelDiff(chunked, oneShot) < 1e-5);
    assert.ok(maxRelDiff(uneven, oneShot) < 1e-5);
  });

  test(`${preset}: SIMD kernels equal the TypeScript twins on the whole model`, async () => {
    const wasm = await logitsOf(ck().hfDir!, ids, [ids.length], { kernels: 'wasm' });
    const ref = await logitsOf(ck().hfDir!, ids, [ids.length], { kernels: 'reference', threads: 1 });
    assert.ok(maxRelDiff(wasm, ref) < 1e-5, `relative difference ${maxRelDiff(wasm, ref)}`);
    const wasmQ = await logitsOf(ck().gguf.q8_0, ids, [ids.length], { kernels: 'wasm' });
    const refQ = await logitsOf(ck().gguf.q8_0, ids, [ids.length], { kernels: 'reference', threads: 1 });
    // The q8_0 matmuls are bit-identical to their twins (test/kernels/matmul-x4.test.ts), but the f32
    // kernels around them (attention, norms) differ in the last bit, and an activation on a rounding
    // boundary then quantises one int8 step apart: measured 1.3% of the logits' range on llama3-tiny.
    assert.ok(maxRelDiff(wasmQ, refQ) < 0.05, `q8_0 relative difference ${maxRelDiff(wasmQ, refQ)}`);
  });

  test(`${preset}: HF folder equals the same weights as GGUF`, async () => {
    const hf = await logitsOf(ck().hfDir!, ids, [ids.length]);
    const gguf = await logitsOf(ck().gguf.f32, ids, [ids.length]);
    assert.ok(maxRelDiff(gguf, hf) < 1e-5, `relative difference ${maxRelDiff(gguf, hf)}`);
  });

  test(`${preset}: quantising to q8_0 at load equals the converter's q8_0 GGUF`, async () => {
    // On the TypeScript twins: neox and interleaved RoPE round alike there, so no activation lands
    // on the other side of an int8 rounding step (see the SIMD test above).
    const twins: LoadOptions = { kernels: 'reference', threads: 1 };
    const atLoad = await logitsOf(ck().hfDir!, ids, [ids.length], { quantize: 'q8_0', ...twins });
    const file = await logitsOf(ck().gguf.q8_0, ids, [ids.length], twins);
    const f32 = await logitsOf(ck().hfDir!, ids, [ids.length], twins);
    // Same quantiser, and GGUF's Q/K row permutation moves whole rows (blocks run along rows), so
    // the two q8_0 models hold the same blocks and agree to float rounding.
    assert.ok(maxRelDiff(atLoad, file) < 1e-5, `relative difference ${maxRelDiff(atLoad, file)}`);
    // q8_0 of weights and activations moves these random models' logits by up to ~8% of their range
    // (llama.cpp's own q8_0 vs f32 fixtures differ as much: see test/fixtures/reference).
    assert.ok(maxRelDiff(atLoad, f32) < 0.15, `q8_0 stays close to f32: ${maxRelDiff(atLoad, f32)} vs file ${maxRelDiff(file, f32)}`);
    assert.ok(maxRelDiff(atLoad, f32) > 0, 'q8_0 at load really quantised');
  });
}

// The same properties with the default f16 cache: every path stores the same f16 rows except where a
// 1e-6 difference upstream rounds a K/V value the other way, which moves the logits by at most a few
// 1e-4 of their range (measured below); an f16 rounding error in the kernels themselves would show
// as 1e-3 or more.
test('with the default f16 cache, incremental decoding and chunked prefill stay within 2e-3 of one full forward', async () => {
  for (const preset of TINY_PRESETS) {
    const path = checkpoints.get(preset)!.hfDir!, ids = randomIds(7, 40, 500), f16: LoadOptions = { cacheDType: undefined };
    const full = await logitsOf(path, ids, [ids.length], f16);
    const steps = await logitsOf(path, ids, ids.map(() => 1), f16);
    const uneven = await logitsOf(path, ids, [3, 17, 1, 19], { ...f16, prefillChunk: 5 });
    const e1 = maxRelDiff(steps, full), e2 = maxRelDiff(uneven, full);
    console.log(`# ${preset} f16 cache: incremental ${e1.toExponential(2)}, chunked ${e2.toExponential(2)} of the logits' range`);
    assert.ok(e1 < 2e-3 && e2 < 2e-3, `${preset} f16 cache: incremental ${e1}, chunked ${e2}`);
    assert.ok(maxRelDiff(full, await logitsOf(path, ids, [ids.length])) > 0, `${preset}: the f16 cache is really f16`);
  }
});

test('forward rejects bad input with messages that name the problem', async () => {
  const { model } = await loadModel(checkpoints.get('smollm2-tiny')!.hfDir!, { threads: 1, contextLength: 8 });
  try {
    const cache = model.createCache();
    assert.throws(() => model.forward([model.vocabSize], cache), /outside the vocabulary/);
    assert.throws(() => model.forward([-1], cache), /outside the vocabulary/);
    assert.throws(() => model.forward([1.5], cache), /outside the vocabulary/);
    assert.throws(() => model.forward([], cache), /no tokens/);
    assert.throws(() => model.forward(new Array(9).fill(1), cache), /exceed the context length of 8/);
    model.forward([1, 2, 3], cache);
    assert.equal(cache.length, 3);
    cache.truncate(1);
    assert.equal(cache.length, 1);
    const fresh = model.createCache();
    model.forward([1], cache);                                   // a new cache leaves this one usable
    model.forward([1], fresh);
    assert.throws(() => model.forwardBatch([{ cache, tokens: [1] }, { cache, tokens: [2] }]), /same cache appears twice/);
    assert.throws(() => model.forwardBatch([]), /empty batch/);
    assert.throws(() => model.forwardBatch([{ cache: fresh, tokens: [1] }, { cache, tokens: [] }]), /no tokens \(batch item 1\)/);
    cache.release();
    assert.throws(() => model.forward([1], cache), /has been released/);
  } finally { model.dispose(); }
});

test('truncate then re-feed gives the same logits (rollback)', async () => {
  const { model } = await loadModel(checkpoints.get('llama3-tiny')!.hfDir!, { threads: 2, contextLength: 64, ...F32_ROWS });
  try {
    const cache = model.createCache();
    const ids = randomIds(3, 20, 500);
    model.forward(ids, cache);
    const a = Float32Array.from(model.forward([5], cache));
    cache.truncate(10);
    model.forward(randomIds(4, 10, 500), cache);               // overwrite positions 10..19 with other tokens
    cache.truncate(10);
    model.forward(ids.slice(10), cache);
    const b = model.forward([5], cache);
    assert.ok(maxRelDiff(b, a) < 1e-6);
  } finally { model.dispose(); }
});

test('a feed-forward block wider than one panel (its down projection in panels, f32 and f16): the SIMD kernels equal the twins, and decode steps and chunks equal one forward', async () => {
  const config = { ...presetConfig('llama3-tiny'), intermediate_size: 2 * PANEL_COLS };
  assert.ok(panelsFit(config.hidden_size, config.intermediate_size), 'the down projection goes into panels');
  const ids = randomIds(5, 40, config.vocab_size);
  for (const outType of ['f32', 'f16'] as const) {
    const file = writeRandomGguf(join(dir, `wide-ffn-${outType}.gguf`), config, outType);
    const wasm = await logitsOf(file, ids, [ids.length], { kernels: 'wasm' });
    const ref = await logitsOf(file, ids, [ids.length], { kernels: 'reference', threads: 1 });
    assert.ok(maxRelDiff(wasm, ref) < 1e-5, `${outType}: relative difference ${maxRelDiff(wasm, ref)}`);
    const pieces = await logitsOf(file, ids, [1, 1, 1, 17, 20]);
    assert.ok(maxRelDiff(pieces, wasm) < 1e-5, `${outType}: pieces against one forward ${maxRelDiff(pieces, wasm)}`);
  }
});
