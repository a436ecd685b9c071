// The fuzz command (src/testing/fuzz.ts) at CI size: a few hundred cases of every parser through the
// real command line, and its watchdog against a worker that hangs, throws and exits on chosen cases.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUZZ_PARSERS } from '../../src/testing/fuzz-targets.js';
import { fuzzParser, type ParserResult } from '../../src/testing/fuzz.js';

const FUZZ = fileURLToPath(new URL('../../src/testing/fuzz.js', import.meta.url));

test('the fuzz command runs 200 cases of every parser without a crash, hang or memory failure', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-cmd-'));
  try {
    const out = join(dir, 'fuzz.json');
    const stdout = execFileSync(process.execPath, [FUZZ, '--parser', 'all', '--n', '200', '--seed', '7', '--out', out], { encoding: 'utf8' });
    assert.match(stdout, /\| parser +\| cases \| accepted \| refused \|/);
    const { run, results } = JSON.parse(readFileSync(out, 'utf8')) as { run: { seed: number }; results: ParserResult[] };
    assert.equal(run.seed, 7);
    assert.deepEqual(results.map((r) => r.parser), [...FUZZ_PARSERS]);
    for (const r of results) {
      assert.equal(r.crashes + r.hangs + r.memory, 0, `${r.parser}: ${JSON.stringify([...r.crashCases, ...r.hangCases, ...r.memoryCases])}`);
      assert.equal(r.accepted + r.refused, 200, r.parser);
      // Both outcomes and several distinct refusal rules, or the mutations test nothing.
      assert.ok(r.accepted > 0 && r.refused > 0 && r.refusalRules >= 5, `${r.parser}: ${r.accepted} accepted, ${r.refused} refused, ${r.refusalRules} rules`);
      assert.ok(r.peakRssMiB > 10 && r.slowestCase >= 0, r.parser);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one case reruns alone from its seed and index, and --save writes its mutant', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fuzz-case-'));
  try {
    const save = join(dir, 'case.json');
    const run = () => execFileSync(process.execPath, [FUZZ, '--parser', 'config', '--seed', '7', '--case', '42', '--save', save], { encoding: 'utf8' });
    const first = run();
    const bytes = readFileSync(save);
    assert.match(first, /config case 42 \(seed 7\): (accepted|refused) in/);
    assert.equal(run().replace(/in [\d.]+ ms/, ''), first.replace(/in [\d.]+ ms/, ''));
    assert.deepEqual(readFileSync(save), bytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the watchdog reports a hang, a thrown error and an exiting worker by case index, and goes on', { timeout: 60_000 }, async () => {
  const lines: string[] = [];
  const r = await fuzzParser('config', {
    seed: 1, from: 0, n: 10, jobs: 1, timeoutMs: 2000, maxRssMb: 65536, progressS: 100,
    workerUrl: new URL('./fuzz-stub-worker.js', import.meta.url), log: (l) => lines.push(l),
  });
  assert.deepEqual(r.hangCases.map((c) => c.index), [3]);
  assert.deepEqual(r.crashCases.map((c) => c.index), [5, 7]);
  assert.match(r.crashCases[0]!.error, /TypeError: stub failure/);
  assert.match(r.crashCases[1]!.error, /exited with code 3/);
  assert.equal(r.accepted, 7);
  assert.deepEqual(r.acceptedBy, { stub: 7 });
  assert.equal(r.hangs + r.crashes + r.memory + r.accepted + r.refused, 10);
  assert.ok(lines.some((l) => /HANG at case 3/.test(l)), lines.join('\n'));
});
