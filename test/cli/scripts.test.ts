// Research and benchmark scripts reject options they do not know (a typo must not start a long run
// with the defaults) and print their help without running. Every script is found by walking src/
// for the ways a module runs itself (checking node's argv, or calling main() at the top level), so a
// script added later is covered without editing a list.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
const script = (rel: string) => fileURLToPath(new URL(`../../src/${rel}`, import.meta.url));

/** Every module under src/ (the `tessera` command aside) that runs when node is given its path, as a path under dist/src. */
function scripts(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts') && /isMainModule\(import\.meta\.url\)|process\.argv\[1\]|^(await )?main\(/m.test(readFileSync(path, 'utf8'))) {
        found.push(relative(SRC, path).replace(/\.ts$/, '.js'));
      }
    }
  };
  walk(SRC);
  return found.filter((f) => !f.startsWith('cli/')).sort();
}

function run(rel: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [script(rel), ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

const ALL = scripts();

it('the walk finds the scripts', () => {
  for (const known of ['bench/kernels-bench.js', 'experiments/long-context/probe-speed.js', 'eval/merge-results.js', 'mosaic/train-recall.js']) {
    assert.ok(ALL.includes(known), `${known} not found among ${ALL.join(', ')}`);
  }
});

describe('every script', { concurrency: 4 }, () => {
  for (const rel of ALL) {
    it(`${rel}: an unknown option exits 2 naming it, with a --help hint, before any work`, async () => {
      const r = await run(rel, '--bogus', '1');
      assert.equal(r.status, 2, `exit ${r.status}; stderr: ${r.stderr}`);
      assert.match(r.stderr, /unknown option --bogus\n {2}hint: run 'node \S+ --help' for the options\n$/);
      assert.equal(r.stdout, '');
    });
    it(`${rel}: --help prints the options and runs nothing`, async () => {
      const r = await run(rel, '--help');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Usage: node \S+ \[options\]/);
      assert.match(r.stdout, /Options:\n[^]*-h, --help/);
      assert.equal(r.stderr, '');
    });
  }
});

describe('the older bare arguments reach their flags', { concurrency: 4 }, () => {
  // Out-of-range values, so the check is made without running the benchmark.
  for (const [rel, arg, message] of [
    ['bench/train-bench.js', '0', /--steps must be an integer ≥ 1, got 0/],
    ['bench/threads-bench.js', '1', /--max-threads must be an integer ≥ 2, got 1/],
    ['experiments/throughput.js', '0', /--steps must be an integer ≥ 1, got 0/],
    ['experiments/long-context/probe-speed.js', '[[128,2]]', /--shapes must be a list of \[d, layers, heads, T, batch\]/],
  ] as const) {
    it(`${rel} ${arg}`, async () => {
      const r = await run(rel, arg);
      assert.equal(r.status, 2, `exit ${r.status}; stderr: ${r.stderr}`);
      assert.match(r.stderr, message);
    });
  }
  it('long-context checks its numbers before loading anything', async () => {
    const steps = await run('bench/long-context.js', '--steps', 'abc');
    assert.equal(steps.status, 2, steps.stderr);
    assert.match(steps.stderr, /--steps expects an integer, got 'abc'/);
    const contexts = await run('bench/long-context.js', '--real-prefill', '--contexts', '4096,x');
    assert.equal(contexts.status, 2, contexts.stderr);
    assert.match(contexts.stderr, /--contexts expects an integer, got 'x'/);
  });
  it('compare-runs and merge-results need their folders or files', async () => {
    assert.match((await run('experiments/compare-runs.js', '--svg', 'x.svg')).stderr, /missing required option --run RUN_DIR/);
    assert.match((await run('eval/merge-results.js', 'a.json')).stderr, /missing required option --out DIR/);
    const notEval = await run('eval/merge-results.js', '--out', join(tmpdir(), 'tessera-merge-never-written'), fileURLToPath(new URL('../../../package.json', import.meta.url)));
    assert.equal(notEval.status, 1, notEval.stderr);
    assert.match(notEval.stderr, /^\S+merge-results\.js: \S+package\.json is not the results\.json of a `tessera eval` run \(no backends, cells, details list\)\n$/);
  });
});
