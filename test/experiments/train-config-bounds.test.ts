// Training configs are planned against memory before anything is allocated (docs/RELIABILITY.md):
// `context: 1e9` used to reach 12.6 GB in 16 s, `layers: 1e6` and `d: 1e9` GBs before failing. One row
// per hostile config: the field, and the message naming it with the planned bytes. The bound each
// holds: parseTrainConfig allocates nothing, and `tessera train` exits 1 with the message before
// preparing data (checked on the command line under an address-space limit).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, checkTrainingPlan, parseTrainConfig } from '../../src/training/train-config.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const base = { family: 'llama', model: { d: 64, layers: 2, heads: 4 }, data: { task: 'recall', vocabSize: 64 }, steps: 10, batch: 8, context: 64, out: 'unused' };
type Raw = Record<string, unknown>;
const withField = (patch: Raw, model: Raw = {}, data: Raw = {}): Raw => ({ ...base, ...patch, model: { ...base.model, ...model }, data: { ...base.data, ...data } });

const ARENA = /more than the 3\.5 GiB one training arena \(one WebAssembly memory\) holds/;

const ROWS: [what: string, raw: Raw, message: RegExp][] = [
  ['context: 1e9', withField({ context: 1e9 }), /logits 1907\.3 GiB \(4 B × batch 8 × context 1000000000 × vocab 64\).*Lower batch, context or the vocabulary/],
  ['model.layers: 1e6', withField({}, { layers: 1e6 }), /parameters and AdamW state 122\.1 GiB \(16 B × \(vocab 64 × model\.d 64 \+ 2 × model\.layers 1000000 × model\.d²\)\).*Lower model\.d or model\.layers/],
  ['model.d: 1e9 (heads 1)', withField({}, { d: 1e9, heads: 1 }), /planned training memory is at least .* GiB: parameters and AdamW state .* model\.d 1000000000/],
  ['data.vocabSize: 1e9', withField({}, {}, { vocabSize: 1e9 }), /vocab 1000000000/],
  ['batch: 1e7', withField({ batch: 1e7 }), /logits .* \(4 B × batch 10000000 × context 64 × vocab 64\)/],
  ['corpus vocabSize 2^22 at batch 64 × context 1024', { ...withField({ batch: 64, context: 1024 }), data: { corpus: 'sotu', vocabSize: 2 ** 22 } }, /vocab 4194304/],
];

test('configs whose planned memory cannot fit are refused by parseTrainConfig, naming the fields and bytes', () => {
  for (const [what, raw, message] of ROWS) {
    assert.throws(() => parseTrainConfig(raw, 'hostile.json'), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `${what}: ${String(e)}`);
      assert.match(e.message, /^hostile\.json: the planned training memory is at least [\d.]+ GiB/, what);
      assert.match(e.message, ARENA, what);
      assert.match(e.message, message, what);
      return true;
    }, what);
  }
});

test('the plan is checked against this machine\'s memory too (data batches included)', () => {
  const cfg = parseTrainConfig(withField({ evalBatches: 1000, batch: 64, context: 1024 }), 'c.json');
  // 8 B × 64 × 1024 × 1001 = 0.49 GiB of batches outside the arena
  assert.throws(() => checkTrainingPlan(cfg, 64, 'c.json', 0.5 * 2 ** 30), /batches 0\.489 GiB .*more than this machine's 0\.500 GiB of memory\. Lower evalBatches, batch or context/);
  assert.throws(() => checkTrainingPlan(withParams(cfg, 4096), 64, 'c.json', 2 ** 30), /more than this machine's 1\.0 GiB of memory\. Lower model\.d or model\.layers/);
  checkTrainingPlan(cfg, 64, 'c.json', 2 ** 30); // fits in 1 GiB
});

function withParams(cfg: ReturnType<typeof parseTrainConfig>, d: number) {
  return { ...cfg, model: { ...cfg.model, d } };
}

test('control: every shipped config passes the plan', () => {
  const dir = join(ROOT, 'configs');
  const files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.startsWith('long-context'));
  assert.ok(files.length >= 8, files.join(', '));
  for (const f of files) parseTrainConfig(JSON.parse(readFileSync(join(dir, f), 'utf8')), f);
});

test('tessera train --context 1e9 exits 1 with the plan before preparing data, in bounded memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-plan-'));
  try {
    const cfg = join(dir, 'train.json');
    writeFileSync(cfg, JSON.stringify({ ...base, out: join(dir, 'run') }));
    const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    const r = spawnSync('sh', ['-c', 'ulimit -v 3145728; exec "$@"', 'sh', process.execPath, main, 'train', '--config', cfg, '--context', '1000000000'],
      { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.notEqual(r.signal, 'SIGTERM', 'still running after 60 s');
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /the planned training memory is at least 1907\.[0-9] GiB/);
    assert.match(r.stderr, /hint: fix the config file or the flag/);
    assert.deepEqual(readdirSync(dir), ['train.json'], 'nothing was written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
