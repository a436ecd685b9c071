// The batched-decode bench's Tessera side on a tiny checkpoint, with a prefill per sequence and with
// one prefill copied into every sequence (--prefill-once): a row per batch size, the same KV held
// either way (each copy holds pages of its own), and the copied prompt itself not counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { benchTesseraBatch, formatBatchTable } from '../../src/bench/batch.js';

test('batch bench: rows for batch 1 and 3, with a prefill per sequence and with one prefill copied (same KV held)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-batch-bench-'));
  try {
    const file = writeTestCheckpoint(join(dir, 't'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const o = { threads: 1, decodeTokens: 3, cacheDType: 'f16' as const, repo: '', llamaCpp: false };
    const each = await benchTesseraBatch(file, 'tiny', 'f32', 100, [1, 3], o);
    const once = await benchTesseraBatch(file, 'tiny', 'f32', 100, [1, 3], { ...o, prefillOnce: true });
    for (const rows of [each, once]) {
      assert.deepEqual(rows.map((r) => r.batch), [1, 3]);
      for (const r of rows) assert.ok(r.decodeTps > 0 && Number.isFinite(r.msPerToken), JSON.stringify(r));
    }
    assert.deepEqual(once.map((r) => r.kvBytes), each.map((r) => r.kvBytes));
    assert.equal(each[1]!.kvBytes, 3 * each[0]!.kvBytes);
    assert.match(formatBatchTable(once, []), /\| tiny \| f32 \| 100 \| 3 \| tessera \| 1 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
