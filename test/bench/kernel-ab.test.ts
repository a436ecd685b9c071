// The kernel A/B harness runs both ops end to end on tiny cases: a build against itself gives the
// same bits (the check that would stop a real A/B of builds computing different things), and the
// table has one row per case. Its timings are not checked (benchmarks print, tests do not time).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../src/bench/kernel-ab.js', import.meta.url));
const WASM = fileURLToPath(new URL('../../kernels.wasm', import.meta.url));

function run(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // the plain build, against itself: the same kind on every Node version
    execFile(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, TESSERA_KERNELS: 'simd' } },
      (err, stdout, stderr) => done({ status: err ? Number(err.code) : 0, stdout, stderr }));
  });
}

test('matmul: one row per dtype, shape and n, same bits for a build against itself', async () => {
  const r = await run('--a', WASM, '--dtypes', 'f32', '--n', '1,2', '--rounds', '1', '--batch-ms', '1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^matmul A\/B: A = .*kernels\.wasm, B = this tree's simd build/);
  const rows = r.stdout.split('\n').filter((l) => l.startsWith('| f32 |'));
  assert.equal(rows.length, 4 * 2, r.stdout); // four SmolLM2 shapes × two n
  for (const row of rows) assert.match(row, /\| yes \|$/);
});

test('matmul: an A:B dtype pair runs each layout in its build (same values, same bits), on the --shapes given', async () => {
  const r = await run('--a', WASM, '--dtypes', 'q6_k:q6_kx4,q4_k', '--shapes', '8x512,6x256', '--n', '1,3', '--rounds', '1', '--batch-ms', '1');
  assert.equal(r.status, 0, r.stderr);
  const pairs = r.stdout.split('\n').filter((l) => l.startsWith('| q6_k → q6_kx4 |'));
  assert.deepEqual(pairs.map((l) => l.split(' | ').slice(1, 3).join(' ')), ['8×512 1', '8×512 3'], r.stdout); // 6 rows: no x4 layout
  assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('| q4_k |')).length, 2 * 2, r.stdout);
  for (const row of r.stdout.split('\n').filter((l) => l.startsWith('| q'))) assert.match(row, /\| yes \|$/);
  assert.match((await run('--a', WASM, '--shapes', '8by512')).stderr, /--shapes takes ROWSxCOLS, e\.g\. 2048x8192, got '8by512'/);
  assert.match((await run('--a', WASM, '--dtypes', 'q6_k:q7_k')).stderr, /--dtypes with --op matmul takes .*, got 'q7_k'/);
});

test('matmul: --a-layout lays out A\'s weights with the code of the tree given (this one: the same bits); mistakes are named', async () => {
  const dist = fileURLToPath(new URL('../../', import.meta.url));
  const r = await run('--a', WASM, '--a-layout', dist, '--dtypes', 'q6_kx4,q4_kx4', '--shapes', '8x512', '--n', '1,2', '--rounds', '1', '--batch-ms', '1');
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| q[46]_kx4 \| 8×512 \|/.test(l));
  assert.equal(rows.length, 2 * 2, r.stdout);
  for (const row of rows) assert.match(row, /\| yes \|$/);
  assert.match((await run('--a', WASM, '--a-layout', '/nonexistent-dist')).stderr, /cannot load \/nonexistent-dist\/src\/bench\/kernels-bench\.js/);
  assert.match((await run('--op', 'attention', '--a', WASM, '--a-layout', dist)).stderr, /--a-layout is for --op matmul/);
});

test('attention: one row per cache, context and n, same bits for a build against itself', async () => {
  const r = await run('--op', 'attention', '--a', WASM, '--b', WASM, '--ctx', '64', '--n', '1,3', '--rounds', '1', '--batch-ms', '1');
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\| f(16|32) \| 64 \|/.test(l));
  assert.equal(rows.length, 2 * 2, r.stdout);
  for (const row of rows) assert.match(row, /\| yes \|$/);
});

test('mistakes are named: a missing --a, a dtype of the other op, a file that is not a kernel build', async () => {
  assert.match((await run()).stderr, /missing required option --a FILE/);
  assert.match((await run('--op', 'attention', '--a', WASM, '--dtypes', 'q4_k')).stderr, /--dtypes with --op attention takes f16, f32, got 'q4_k'/);
  const r = await run('--a', SCRIPT);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot read or compile .*kernel-ab\.js: .*\n {2}hint: give a kernels \.wasm of the simd kind/);
});
