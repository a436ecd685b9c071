// eval-ppl --file: the user's own text, tokenized with the model's tokenizer, scored window by window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { evalPerplexity } from '../../src/eval/perplexity.js';
import { Tessera } from '../../src/api/tessera.js';

const MODEL = fileURLToPath(new URL('../../../models/default', import.meta.url));

test('a text file is scored as windows of ctx tokens from an empty cache, every position (checked against the logits API)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-ppl-'));
  try {
    const file = join(dir, 'speech.txt');
    writeFileSync(file, 'The Congress has met in a time of peace. We must balance the budget and defend the nation. '.repeat(6));
    const ctx = 16, windows = 2;
    const r = await evalPerplexity(MODEL, { file, ctx, maxWindows: windows, threads: 1 });
    assert.equal(r.windows, windows);
    assert.equal(r.tokens, windows * ctx);
    assert.equal(r.split, 'file');
    const t = await Tessera.load(MODEL, { threads: 1 });
    try {
      const ids = t.tokenize('The Congress has met in a time of peace. We must balance the budget and defend the nation. '.repeat(6));
      assert.ok(ids.length > windows * ctx + 1);
      let total = 0;
      for (let w = 0; w < windows; w++) {
        const win = ids.slice(w * ctx, w * ctx + ctx);
        const logits = await t.logits(win);
        const V = logits.length / ctx;
        for (let p = 0; p < ctx; p++) {
          const row = logits.subarray(p * V, (p + 1) * V);
          const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
          const z = row.reduce((a, b) => a + Math.exp(b - max), 0);
          total += Math.log(z) + max - row[ids[w * ctx + p + 1]];
        }
      }
      assert.ok(Math.abs(r.loss - total / (windows * ctx)) < 1e-4, `eval-ppl ${r.loss} vs logits API ${total / (windows * ctx)}`);
    } finally { t.dispose(); }
    writeFileSync(file, 'Too short.');
    await assert.rejects(evalPerplexity(MODEL, { file, ctx, threads: 1 }), /too short for one window of 16 \+ 1; give more text or a smaller ctx/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
