// Experiment e at toy size: the recall mosaic is trained when missing (and reused after), both parts
// run every backend on both families, dense reads every key and the sparse backends fewer, and the
// report files are written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUICK_PLAN, lmRows, recallRows, report } from '../../src/experiments/mosaic-sparse.js';
import { REPO_ROOT, writeFiles } from '../../src/experiments/report.js';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-mosaic-sparse-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('mosaic-sparse --quick: keys read by backend for the mosaic and the transformer, report written', async () => {
  const plan = { ...QUICK_PLAN, lm: [{ window: 48, prompt: 16, windows: 1 }], recallLengths: [48] };
  const lines: string[] = [];
  const recall = await recallRows(plan, REPO_ROOT, join(tmp, 'runs'), (s) => lines.push(s));
  assert.ok(lines.some((l) => l.startsWith('training the recall mosaic')));
  assert.ok(existsSync(join(tmp, 'runs', 'induction-mosaic-l1', 'model', 'config.json')));
  const lm = await lmRows(plan, REPO_ROOT, () => {}, join(tmp, 'runs'));
  assert.equal(recall.length, plan.specs.length);
  assert.equal(lm.length, plan.specs.length * plan.lmModels.length);
  for (const r of [...recall, ...lm]) {
    assert.ok(Number.isFinite(r.loss) && r.loss > 0, `${r.model} ${r.spec}: loss ${r.loss}`);
    if (r.spec === 'dense') assert.equal(r.keysFraction, 1);
    else assert.ok(r.keysFraction > 0 && r.keysFraction < 1, `${r.model} ${r.spec}: keys ${r.keysFraction}`);
  }
  assert.equal(lm[0].tokens, 48 - 16 + 1);
  // a second call reuses the trained model
  lines.length = 0;
  await recallRows({ ...plan, specs: ['dense'] }, REPO_ROOT, join(tmp, 'runs'), (s) => lines.push(s));
  assert.ok(!lines.some((l) => l.startsWith('training')));
  assert.ok(lm.every((r) => r.load.length === 2));
  const again = await lmRows(plan, REPO_ROOT, (s) => lines.push(s), join(tmp, 'runs'));
  assert.deepEqual(again, lm, 'kept rows are reused as they were');
  // kept recall rows copied without the model they were measured with: reused, nothing trained
  const rowsOnly = join(tmp, 'rows-only');
  cpSync(join(tmp, 'runs', 'rows'), join(rowsOnly, 'rows'), { recursive: true });
  lines.length = 0;
  assert.deepEqual(await recallRows(plan, REPO_ROOT, rowsOnly, (s) => lines.push(s)), recall);
  assert.ok(!lines.some((l) => l.startsWith('training')), lines.join('\n'));
  assert.ok(!existsSync(join(rowsOnly, 'induction-mosaic-l1')));
  const { md, files } = report(plan, [...recall, ...lm], 'test');
  assert.match(md, /\| dense \| 100\.0% \|/);
  for (const p of writeFiles(join(tmp, 'docs'), files)) assert.ok(existsSync(p));
});
