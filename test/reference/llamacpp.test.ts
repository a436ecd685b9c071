// Tessera against llama.cpp. The fixtures in test/fixtures/reference/ were produced by
// tools/reference/make-fixtures.mjs running llama.cpp (node-llama-cpp 3.21.1, CPU) on the random-weight
// checkpoints of src/testing/checkpoints.ts. Here each checkpoint is rebuilt (and its sha256 checked:
// the bytes llama.cpp saw), then:
//   1. llama.cpp vs a float64 textbook forward of the HF weights (test/reference/textbook-llama.ts),
//      in float for f32 and in q8_0 arithmetic for q8_0: this checks the fixtures, the GGUF converter
//      (Q/K permutation, rope_freqs, biases, tied heads) and llama.cpp's reading of our files;
//   2. Tessera on the GGUF of each dtype, on the HF folder (vs the f32 fixture: unpermuted Q/K with
//      NEOX RoPE must equal llama.cpp's permuted layout) and on the HF folder quantised to q8_0 at load
//      (vs the q8_0 fixture): next-token log-probabilities within a stated tolerance, and greedy
//      decoding (one token per forward) token-identical for all 64 tokens;
//   3. Tessera's tokenizers (tokenizer.json and the GGUF vocabulary) vs llama.cpp's tokenization.
// Log-probabilities, not logits: node-llama-cpp exposes softmax(logits) only, and logits are defined
// up to a constant anyway. Error = max over the vocabulary of |Δ log p|.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint, type CheckpointFormat, type TestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomLlamaWeights } from '../../src/testing/random-model.js';
import { logSoftmax, textbookLogits, textbookWeights } from './textbook-llama.js';
import { argmax, load, maxAbsDiff, readFixtures, report, runTessera, sequenceOf, type Fixture, type Run } from './llamacpp-harness.js';

// Tolerances on max |Δ log p| (nats) per recorded position, set from measurement (2 cores, x86):
//   f32  llama.cpp vs textbook f64 ≤ 1.1e-4; Tessera (GGUF and HF) vs llama.cpp ≤ 1.2e-4  → 1e-3
//   f16  Tessera vs llama.cpp ≤ 9e-5                                                      → 1e-3
//   q8_0 ≤ 6e-5 at most positions, but q8_0 has a rounding cliff: activations are quantised to
//        q8_0 before every matmul, and an element within float noise of a .5 rounding boundary
//        rounds differently in the two engines (summation order; f32 vs f64; llama.cpp's x86 path
//        computes 127/amax and rounds half to even where ggml's reference — and Tessera — compute
//        1/(amax/127) and round half away). One flipped quantum moved a whole row of log-probs by
//        0.14 (qwen2, textbook and Tessera alike, gone when the textbook uses the x86 formula) and
//        0.16 / 0.46 (smollm2 pos 78, textbook / Tessera). So for q8_0: ≥ 3 of 5 positions within
//        the tight tolerance, and every position within the loose one.
// The smallest greedy margin is ≥ 0.1 by seed choice (make-fixtures.mjs) in f32 and in q8_0
// arithmetic, so greedy tokens must be identical (teacher forcing keeps one flip from cascading).
const TOL_TEXTBOOK: Record<string, number> = { f32: 1e-3, q8_0: 1e-3 };
const TOL_TESSERA: Record<string, number> = { f32: 1e-3, f16: 1e-3, q8_0: 1e-3 };

const FIXTURES: Fixture[] = readFixtures('reference');

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function runTextbook(f: Fixture, ck: TestCheckpoint): Run {
  const w = textbookWeights(randomLlamaWeights(ck.config, f.seed), f.dtype === 'q8_0');
  const seq = sequenceOf(f);
  const V = ck.config.vocab_size;
  const all = textbookLogits(ck.config, w, seq, { q8: f.dtype === 'q8_0' }); // (n, V)
  const errors = new Map<number, number>();
  for (const l of f.logits) errors.set(l.position, maxAbsDiff(logSoftmax(all.subarray(l.position * V, (l.position + 1) * V)), l.values));
  const n = f.promptIds.length;
  const tokens = f.greedy.map((_, k) => argmax(all.subarray((n - 1 + k) * V, (n + k) * V)));
  return { errors, tokens };
}

const presets = [...new Set(FIXTURES.map((f) => f.preset))];
const root = mkdtempSync(join(tmpdir(), 'tessera-llamacpp-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));

test('llama.cpp fixtures exist for every tiny preset and dtype', () => {
  assert.deepEqual(presets.sort(), ['llama3-tiny', 'qwen2-tiny', 'smollm2-tiny']);
  for (const p of presets) assert.deepEqual(FIXTURES.filter((f) => f.preset === p).map((f) => f.dtype).sort(), ['f16', 'f32', 'q8_0']);
});

for (const preset of presets) {
  const fixtures = FIXTURES.filter((f) => f.preset === preset);
  const seed = fixtures[0]!.seed;
  let ck: TestCheckpoint | undefined;
  const checkpoint = (): TestCheckpoint => {
    if (!ck) {
      const formats: CheckpointFormat[] = ['hf', ...fixtures.map((f) => `gguf-${f.dtype}` as CheckpointFormat)];
      ck = writeTestCheckpoint(join(root, preset), preset, { seed, formats });
    }
    return ck;
  };

  test(`${preset}: rebuilt checkpoint files are byte-identical to those llama.cpp ran`, () => {
    const dir = join(checkpoint().hfDir!, '..');
    for (const f of fixtures) {
      assert.equal(f.seed, seed, 'all dtypes of a preset share one seed');
      for (const [name, hash] of Object.entries(f.files)) {
        assert.equal(sha256(join(dir, name)), hash, `${preset}/${name} changed since the fixture was made: if the change is intended, rerun tools/reference/make-fixtures.mjs`);
      }
    }
  });

  for (const f of fixtures) {
    if (f.dtype === 'f16') continue; // no textbook emulation of ggml's f16 activation rounding
    test(`${preset} ${f.dtype}: llama.cpp agrees with the textbook float64 forward of the HF weights`, () => {
      report(`${preset} ${f.dtype} llama.cpp vs textbook`, f, runTextbook(f, checkpoint()), TOL_TEXTBOOK[f.dtype]!);
    });
  }

  for (const f of fixtures) {
    test(`${preset}: Tessera on the ${f.dtype} GGUF matches llama.cpp`, async (t) => {
      const loaded = await load(t, checkpoint().gguf[f.dtype]!, {});
      if (!loaded) return;
      try {
        report(`${preset} gguf-${f.dtype}`, f, runTessera(loaded, f), TOL_TESSERA[f.dtype]!);
      } finally { loaded.model.dispose(); }
    });
  }

  for (const f of fixtures) {
    if (f.dtype === 'f16') continue;
    const quantize = f.dtype === 'q8_0' ? 'q8_0' as const : undefined;
    test(`${preset}: Tessera on the HF folder${quantize ? ' quantised to q8_0 at load' : ''} matches llama.cpp ${f.dtype}`, async (t) => {
      const loaded = await load(t, checkpoint().hfDir!, quantize ? { quantize } : {});
      if (!loaded) return;
      try {
        report(`${preset} hf${quantize ? '+q8_0' : ''}`, f, runTessera(loaded, f), TOL_TESSERA[f.dtype]!);
      } finally { loaded.model.dispose(); }
    });
  }

  test(`${preset}: Tessera's tokenizers split text as llama.cpp does`, async (t) => {
    const f = fixtures.find((x) => x.dtype === 'f32')!;
    for (const [label, path] of [['tokenizer.json', checkpoint().hfDir!], ['GGUF vocabulary', checkpoint().gguf.f32!]] as const) {
      const loaded = await load(t, path, {});
      if (!loaded) return;
      try {
        for (const { text, ids } of f.tokenization) {
          assert.deepEqual(loaded.tokenizer.encode(text, { addSpecialTokens: false }), ids, `${label}: ${JSON.stringify(text)}`);
        }
      } finally { loaded.model.dispose(); }
    }
  });
}
