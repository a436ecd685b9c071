// Research and benchmark scripts reject options they do not know (a typo must not start a long run
// with the defaults) and print their help without running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));
const run = (rel: string, ...args: string[]) => spawnSync(process.execPath, [script(rel), ...args], { encoding: 'utf8', timeout: 20_000 });

for (const rel of ['bench/long-context.js', 'bench/lsh-build.js', 'experiments/long-context/eval.js', 'eval/merge-results.js']) {
  test(`${rel}: an unknown option exits 2 naming it, before any work`, () => {
    const r = run(rel, '--bogus', '1');
    assert.equal(r.status, 2, `exit ${r.status}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /unknown option --bogus/);
  });
}

for (const rel of ['bench/long-context.js', 'bench/lsh-build.js', 'experiments/long-context/eval.js']) {
  test(`${rel}: --help prints the options and runs nothing`, () => {
    const r = run(rel, '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Options:/);
    assert.equal(r.stderr, '');
  });
}
