// The size `tessera bench --shapes` announces before writing must be the size it writes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { estimatedBenchFileBytes } from '../../src/bench/bench-files.js';
import { writeTestCheckpoint, type PresetName } from '../../src/testing/checkpoints.js';
import { describeModel } from '../../src/models/load.js';

test('estimatedBenchFileBytes matches the tensor bytes of the written GGUF (f32, f16, q8_0)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-benchfiles-'));
  try {
    for (const preset of ['smollm2-tiny', 'llama3-tiny'] as PresetName[]) {
      const ck = writeTestCheckpoint(join(dir, preset), preset, { formats: ['gguf-f32', 'gguf-f16', 'gguf-q8_0'] });
      for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
        const written = describeModel(ck.gguf[dtype]!).weightBytes;
        const estimate = estimatedBenchFileBytes(preset, dtype);
        assert.ok(Math.abs(estimate - written) / written < 0.02, `${preset} ${dtype}: estimate ${estimate}, written ${written}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
