// Experiment e at toy size: the recall models (the mosaic, and the transformer through each of its
// configs in order) are trained when missing (and reused after), both parts run every backend on both
// families, dense reads every key and the sparse backends fewer, rows of an earlier report are taken
// instead of measured (--reuse) only where they match, and the report files are written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUICK_PLAN, earlierRows, lmRows, recallRows, report } from '../../src/experiments/mosaic-sparse.js';
import { REPO_ROOT, writeFiles } from '../../src/experiments/report.js';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-mosaic-sparse-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test('mosaic-sparse --quick: keys read by backend for the mosaic and the transformer, report written', async () => {
  const plan = { ...QUICK_PLAN, lm: [{ window: 48, prompt: 16, windows: 1 }], recallLengths: [48] };
  const lines: string[] = [];
  const recall = await recallRows(plan, REPO_ROOT, join(tmp, 'runs'), (s) => lines.push(s));
  assert.equal(plan.recallModels.length, 2);
  for (const m of plan.recallModels) {
    m.configs.forEach((c, i) => {
      const name = c.replace(/^configs\/|\.json$/g, '');
      assert.ok(existsSync(join(tmp, 'runs', name, 'model', 'config.json')), name);
      // each config after the first starts from the previous one's model
      const trained = JSON.parse(readFileSync(join(tmp, 'runs', name, 'train-config.json'), 'utf8')) as { init?: string };
      assert.equal(trained.init, i === 0 ? undefined : join(tmp, 'runs', m.configs[i - 1].replace(/^configs\/|\.json$/g, ''), 'model'));
    });
  }
  assert.ok(plan.recallModels[1].configs.length > 1, 'the transformer is trained through more than one config');
  assert.equal(lines.filter((l) => l.startsWith('training the recall model')).length, plan.recallModels.flatMap((m) => m.configs).length);
  const lm = await lmRows(plan, REPO_ROOT, () => {}, join(tmp, 'runs'));
  assert.equal(recall.length, plan.specs.length * plan.recallModels.length);
  assert.deepEqual(new Set(recall.map((r) => r.model)), new Set(plan.recallModels.map((m) => m.name)));
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
  for (const m of plan.recallModels) assert.ok(md.includes(`## Recall, ${m.name}`), m.name);
  for (const p of writeFiles(join(tmp, 'docs'), files)) assert.ok(existsSync(p));
  // --reuse: an earlier report's rows are taken, not measured, and kept in the new folder's rows/
  const earlier = join(tmp, 'docs', 'results', 'mosaic-sparse.json');
  const fresh = join(tmp, 'fresh');
  lines.length = 0;
  assert.deepEqual(await recallRows(plan, REPO_ROOT, fresh, (s) => lines.push(s), earlierRows(earlier, plan)), recall);
  assert.deepEqual(await lmRows(plan, REPO_ROOT, (s) => lines.push(s), fresh, earlierRows(earlier, plan)), lm);
  assert.ok(!lines.some((l) => l.startsWith('training')), lines.join('\n'));
  assert.equal(lines.filter((l) => l.startsWith("reusing the earlier report's row")).length, recall.length + lm.length);
  assert.ok(!existsSync(join(fresh, 'induction-mosaic-l1')));
  // … but not a row of other weights, nor of a plan with other settings: those are measured
  const old = JSON.parse(readFileSync(earlier, 'utf8')) as { plan: typeof plan; rows: typeof lm };
  old.rows = old.rows.map((r) => (r.part === 'lm' && r.spec === 'dense' ? { ...r, weights: 'another' } : r));
  writeFileSync(earlier, JSON.stringify(old));
  assert.equal(earlierRows(earlier, plan).length, recall.length + lm.length);
  const other = join(tmp, 'other');
  lines.length = 0;
  await lmRows(plan, REPO_ROOT, (s) => lines.push(s), other, earlierRows(earlier, plan));
  assert.equal(lines.filter((l) => l.startsWith("reusing the earlier report's row")).length, lm.length - plan.lmModels.length);
  assert.equal(earlierRows(earlier, { ...plan, recallSequences: plan.recallSequences + 1, lm: [{ window: 48, prompt: 17, windows: 1 }] }).length, 0);
});
