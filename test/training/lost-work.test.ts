// Training must not lose or leak work. Each row is something a careless user or a kill -9 leaves
// behind (a finished run's folder reused without --resume, temp files of killed writes, a damaged or
// hand-edited trainer_state.json, a checkpoint saved from a diverged run) and what must happen now:
// refusal naming the file and the fix, cleanup of exactly our stale files, or a stop with an error
// before anything good is overwritten.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTrainConfig, type TrainConfig } from '../../src/training/train-config.js';
import { runTraining } from '../../src/training/train-run.js';
import { readSafetensorsF32, removeStaleTemps } from '../../src/training/checkpoint.js';
import { writeSafetensors } from '../../src/formats/safetensors-writer.js';
import { openSafetensors } from '../../src/formats/safetensors.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'tessera-lost-work-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};
const STEPS = 4;

const configJson = (out: string) => ({ family: 'llama', model: { d: 16, layers: 1, heads: 2 }, data: { task: 'recall', vocabSize: 32, queries: 4 },
  steps: STEPS, batch: 2, context: 24, warmup: 1, evalEvery: 0, evalBatches: 1, checkpointEvery: 2, out });
const cfg = (out: string): TrainConfig => parseTrainConfig(configJson(out), 'test');
const run = (out: string, opts: { resume?: boolean; overwrite?: boolean; stopAt?: number } = {}) =>
  runTraining(cfg(out), { progress: false, log: quiet, finalEvalWindows: 2, ...opts });
const stateOf = (out: string) => JSON.parse(readFileSync(join(out, 'checkpoint', 'trainer_state.json'), 'utf8')) as Record<string, unknown>;

/** A pid that is certainly not running: a child that has exited. */
const deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;

test('a folder holding a checkpoint is not overwritten without --resume or --overwrite', async () => {
  const out = join(tmp, 'reuse');
  await run(out);
  assert.equal(stateOf(out).step, STEPS);
  await assert.rejects(run(out, { stopAt: 1 }), /holds a training checkpoint .*; pass --resume to continue it, --overwrite to start over and replace it, or choose another --out/);
  assert.equal(stateOf(out).step, STEPS, 'the checkpoint is untouched');
  await assert.rejects(run(out, { resume: true, overwrite: true }), /contradict/);
  await run(out, { overwrite: true, stopAt: 2 });
  assert.equal(stateOf(out).step, 2, '--overwrite starts over');

  const cfgPath = join(tmp, 'reuse.json');
  writeFileSync(cfgPath, JSON.stringify(configJson(out)));
  const cli = spawnSync(process.execPath, [MAIN, 'train', '--config', cfgPath, '--quiet'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /holds a training checkpoint/);
  assert.equal(stateOf(out).step, 2);
});

test('stale temp files of killed writes are removed, and only those', () => {
  const dir = join(tmp, 'stale');
  mkdirSync(join(dir, 'checkpoint'), { recursive: true });
  writeFileSync(join(dir, 'checkpoint', 'model.safetensors'), 'x');                      // a complete checkpoint
  const rows: [name: string, folder: boolean, removed: boolean, what: string][] = [
    [`.checkpoint.tmp-${deadPid}-0a1b2c3d`, true, true, 'checkpoint folder of a killed save'],
    [`.loss.csv.tmp-${deadPid}-0123456789ab`, false, true, 'loss.csv of a killed write'],
    [`.model.safetensors.tmp-${deadPid}-ba9876543210`, false, true, 'a killed atomic file write'],
    [`checkpoint.old-${deadPid}-cafebabe`, true, true, 'swapped-out checkpoint (the new one is complete)'],
    [`.loss.csv.tmp-${process.pid}-aaaaaaaaaaaa`, false, false, 'a write of a process still running'],
    ['.loss.csv.tmp-notours', false, false, 'not a name our writes use'],
    [`loss.csv.tmp-${deadPid}-0123456789ab`, false, false, 'no leading dot: not ours'],
    ['notes.txt', false, false, 'a user file'],
  ];
  for (const [name, folder] of rows) {
    if (folder) { mkdirSync(join(dir, name)); writeFileSync(join(dir, name, 'model.safetensors'), 'x'); } else writeFileSync(join(dir, name), 'x');
  }
  const removed = removeStaleTemps(dir);
  for (const [name, , gone, what] of rows) assert.equal(!existsSync(join(dir, name)), gone, `${what}: ${name}`);
  assert.equal(removed.length, rows.filter((r) => r[2]).length);

  // without a complete checkpoint, a swapped-out one is the recovery copy: kept
  const rec = join(tmp, 'recovery');
  mkdirSync(join(rec, `checkpoint.old-${deadPid}-cafebabe`), { recursive: true });
  writeFileSync(join(rec, `checkpoint.old-${deadPid}-cafebabe`, 'model.safetensors'), 'x');
  assert.deepEqual(removeStaleTemps(rec), []);
});

test('a run cleans the temp files killed writes left in its folder', async () => {
  const out = join(tmp, 'killed');
  await run(out, { stopAt: 2 });
  const junk = [`.checkpoint.tmp-${deadPid}-0a1b2c3d`, `.loss.csv.tmp-${deadPid}-0123456789ab`];
  mkdirSync(join(out, junk[0]));
  writeFileSync(join(out, junk[0], 'model.safetensors'), new Uint8Array(1000));
  writeFileSync(join(out, junk[1]), 'step,loss\n');
  await run(out, { resume: true });
  assert.deepEqual(readdirSync(out).filter((n) => n.includes('.tmp-')), []);
});

test('trainer_state.json is validated on resume: each damage is refused naming the file', async () => {
  const base = join(tmp, 'state-base');
  await run(base, { stopAt: 2 });
  const good = stateOf(base);
  const rows: [what: string, text: string, error: RegExp][] = [
    ['step −5', JSON.stringify({ ...good, step: -5 }), /step = -5 must be an integer in \[0, 4\]/],
    ['step "abc"', JSON.stringify({ ...good, step: 'abc' }), /step = "abc" must be an integer in \[0, 4\]/],
    ['step 1e9', JSON.stringify({ ...good, step: 1e9 }), /step = 1000000000 must be an integer in \[0, 4\]/],
    ['step 1.5', JSON.stringify({ ...good, step: 1.5 }), /step = 1.5 must be an integer/],
    ['{}', '{}', /the field "step" is missing/],
    ['an array', '[1, 2]', /must be a JSON object/],
    ['garbage', 'not json at all', /trainer_state\.json: invalid JSON at offset 0/],
    ['a duplicate key', JSON.stringify(good).replace('{', '{"step": 0, '), /trainer_state\.json: duplicate key "step"/],
    ['no rng', JSON.stringify({ ...good, rng: undefined }), /the field "rng" is missing/],
    ['rng not a state', JSON.stringify({ ...good, rng: 'x' }), /rng is not a state this run wrote/],
    ['tokens −1', JSON.stringify({ ...good, tokens: -1 }), /tokens = -1 must be a non-negative integer/],
    ['history shorter than step', JSON.stringify({ ...good, history: [] }), /history must hold one row per step \(2\)/],
  ];
  for (const [what, text, error] of rows) {
    const out = join(tmp, `state-${what.replace(/\W+/g, '-')}`);
    cpSync(base, out, { recursive: true });
    writeFileSync(join(out, 'checkpoint', 'trainer_state.json'), text);
    await assert.rejects(run(out, { resume: true }), (e: Error) => {
      assert.match(e.message, /trainer_state\.json/, `${what}: names the file: ${e.message}`);
      assert.match(e.message, error, what);
      return true;
    }, what);
  }
});

/** Rewrites one safetensors file of a checkpoint with `edit` applied to every tensor. */
function editTensors(path: string, edit: (name: string, x: Float32Array) => void): void {
  const meta = openSafetensors(path);
  const metadata = meta.metadata;
  meta.close();
  const ts = [...readSafetensorsF32(path)].map(([name, x]) => { edit(name, x); return { name, dtype: 'F32' as const, shape: [x.length], data: new Uint8Array(x.buffer) }; });
  const shapes = openSafetensors(path);
  for (const t of ts) t.shape = shapes.tensors.get(t.name)!.shape;
  shapes.close();
  writeSafetensors(path, ts, metadata);
}

test('a checkpoint with NaN parameters is refused on resume, with a non-zero exit from the CLI', async () => {
  const out = join(tmp, 'nan-model');
  await run(out, { stopAt: 2 });
  const exported = readFileSync(join(out, 'model', 'model.safetensors'));
  editTensors(join(out, 'checkpoint', 'model.safetensors'), (name, x) => { if (name === 'model.norm.weight') x[1] = NaN; });
  await assert.rejects(run(out, { resume: true }), /model\.safetensors: parameter model\.norm\.weight holds NaN \(element 1\): the checkpoint was saved from a diverged run/);
  const cfgPath = join(tmp, 'nan.json');
  writeFileSync(cfgPath, JSON.stringify(configJson(out)));
  const cli = spawnSync(process.execPath, [MAIN, 'train', '--config', cfgPath, '--resume', '--quiet'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /holds NaN/);
  assert.deepEqual(readFileSync(join(out, 'model', 'model.safetensors')), exported, 'the exported model of the good run is not replaced');
});

test('a run whose loss becomes NaN stops with an error and keeps the last good checkpoint', async () => {
  const out = join(tmp, 'diverge');
  await run(out, { stopAt: 2 });
  // NaN second moments make the next update NaN: step 3 is computed from good parameters, step 4 is not
  editTensors(join(out, 'checkpoint', 'optimizer.safetensors'), (name, x) => { if (name.endsWith('.exp_avg_sq')) x.fill(NaN); });
  await assert.rejects(run(out, { resume: true }), /training diverged: the loss of step 4 is NaN/);
  assert.equal(stateOf(out).step, 2, 'the step-2 checkpoint is kept');
  for (const [name, x] of readSafetensorsF32(join(out, 'checkpoint', 'model.safetensors'))) assert.ok(x.every(Number.isFinite), name);
});
