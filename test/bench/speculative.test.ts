// The speculative bench end to end on tiny checkpoints (the --model path: real acceptance, every
// prompt prefilled once by the target and by the draft model, whose per-run caches start from forks
// of it, DraftModel.adopt): it completes, prints a row per draft kind and γ, and every speculative
// row's greedy output is token-identical to the plain run's, and each row's plain rate comes from the
// plain runs around it (--baseline bracket).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';

const script = fileURLToPath(new URL('../../src/bench/speculative.js', import.meta.url));

test('speculative bench: draft model, prompt lookup, two self drafts and the budget between them, batch 2, output identical to plain decoding in every row', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-spec-bench-'));
  try {
    const target = writeTestCheckpoint(join(dir, 't'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const out = execFileSync(process.execPath, [script, '--model', target, '--draft-model', target, '--draft-attention', 'streaming:sinks=4,window=48',
      '--drafts', 'prompt-lookup,model,self,self-budgets', '--self-attention', 'streaming:sinks=4,window=16;snapkv:budget=24,window=8', '--texts', 'haystack',
      '--contexts', '96', '--batches', '2', '--gammas', '3,auto', '--new-tokens', '8', '--threads', '1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const rows = out.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| target') && !l.startsWith('|---'));
    const kinds = rows.map((r) => r.split('|')[4]!.trim().replace(/ \((noise|verifications per budget);.*$/, '').replace(/ \(verifications per budget:.*$/, ''));
    const [streaming, snapkv] = ['self (streaming:sinks=4,window=16)', 'self (snapkv:budget=24,window=8)'];
    assert.deepEqual(kinds, ['none: plain again', 'prompt-lookup', 'prompt-lookup', 'model', 'model', streaming, streaming, snapkv, snapkv,
      'self, budget chosen by the cost model'], out);
    // both self drafts' T_D in the row that chooses between them; γ auto only
    const chosen = rows.at(-1)!.split('|');
    assert.match(chosen[5]!, /^ auto \(\d( with budget \d)? at measured α/, rows.at(-1));
    assert.match(chosen[15]!, /^ \d+\.\d\d \/ \d+\.\d\d $/, rows.at(-1));
    // --baseline bracket (the default): a plain run after each of the nine speculative runs, so the
    // cell has 11 plain runs, and each row's plain rate is the mean of the two around it
    assert.match(rows[0]!, /the cell's 11 plain runs \d+\.\d+–\d+\.\d+ tok\/CPU-s/, rows[0]);
    const rates = rows.slice(1).map((r) => Number(r.split('|')[7]));
    assert.ok(rates.every((x) => x > 0), `plain rates: ${rates.join(', ')}`);
    for (const r of rows) assert.equal(r.split('|').at(-2)!.trim(), '2/2', `output = plain: ${r}`);
    const model = rows.find((r) => r.split('|')[4]!.trim() === 'model' && r.split('|')[5]!.trim() === '3')!;
    assert.ok(Number(model.split('|')[12]) > 0, `the draft model's drafts were verified (acceptance rate > 0): ${model}`);
    // the aggregate per-position acceptance: at most γ = 3 positions, never rising with the position,
    // and (each a fraction of the drafts) summing to mean acceptance length − 1
    const perPosition = model.split('|')[14]!.trim().split(' / ').map(Number);
    assert.ok(perPosition.length >= 1 && perPosition.length <= 3, model);
    for (let j = 1; j < perPosition.length; j++) assert.ok(perPosition[j]! <= perPosition[j - 1]!, model);
    const sum = perPosition.reduce((a, x) => a + x, 0);
    assert.ok(Math.abs(sum - (Number(model.split('|')[13]) - 1)) < 0.02, `Σ per-position ${sum} vs mean length − 1: ${model}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
