// A worker that dies in the middle of a job must make the call throw, never hang the main thread
// (which blocks in Atomics.wait and so never sees the worker's 'exit' event). Each scenario runs in
// a child process with a hard timeout, because a hang in Atomics.wait would also block node:test's
// own timers: a regression fails the test after 20 s instead of stalling CI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

interface Outcome {
  /** Message of the call during which the worker died ('' if it returned). */
  during: string;
  /** Message of a later matmul on the same pool ('' if it returned). */
  later: string;
  /** dispose() returned; the next call then reports a disposed pool. */
  disposed: string;
}

/** Runs `body` (which must leave the dying call's error in `during`) in a child process on a pool
 *  of `threads` with a registered arena and a matmul big enough to split; returns what it saw. */
function scenario(threads: number, body: string): Outcome {
  const url = (p: string): string => JSON.stringify(new URL(p, import.meta.url).href);
  const script = `
    const { Arena } = await import(${url('../../src/runtime/arena.js')});
    const { ThreadPool } = await import(${url('../../src/runtime/pool.js')});
    const { matmulOp } = await import(${url('../../src/kernels/pool-ops.js')});
    const { exitOp } = await import(${url('./test-ops.js')});
    const pool = await ThreadPool.create({ threads: ${threads}, kernels: 'reference', minSplitBytes: 0 });
    const arena = Arena.create(1 << 16, { kernels: 'reference' });
    pool.register(arena);
    const w = arena.alloc(16 * 32 * 4), x = arena.alloc(32 * 4), y = arena.alloc(16 * 4);
    arena.f32(w, 16 * 32).fill(1); arena.f32(x, 32).fill(2);
    const matmul = () => pool.run(matmulOp, arena, 'f32', w, x, y, 1, 16, 32);
    const message = (fn) => { try { fn(); return ''; } catch (err) { return err.message; } };
    const workers = pool.workers;       // private: reached into as a crash would
    const exit = (thread, code) => pool.run(exitOp, arena, thread, code);
    matmul();
    if (arena.f32(y, 16)[15] !== 64) throw new Error('the pool computed wrong before the death');
    let during = '';
    ${body}
    const later = message(matmul);
    pool.dispose();
    const disposed = message(matmul);
    console.log(JSON.stringify({ during, later, disposed }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, encoding: 'utf8' });
  assert.equal(child.error, undefined, `the child hung (killed after 20 s): ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as Outcome;
}

function assertUnusableAfter(o: Outcome, worker: string): void {
  assert.match(o.later, new RegExp(`^ThreadPool\\.matmul: a worker died \\(${worker}.*\\); create a new pool$`));
  assert.equal(o.disposed, 'ThreadPool.matmul: the pool was disposed');
}

test('process.exit() inside a worker during a job throws from that call', () => {
  const o = scenario(2, `during = message(() => exit(1, 7));`);
  assert.equal(o.during, 'ThreadPool.testExit: a worker died (worker 1 exited with code 7); create a new pool');
  assertUnusableAfter(o, 'worker 1 exited with code 7');
});

test('one of two workers exits during a job: the call waits for the live one, then throws', () => {
  const o = scenario(3, `during = message(() => exit(2, 3));`);
  assert.equal(o.during, 'ThreadPool.testExit: a worker died (worker 2 exited with code 3); create a new pool');
  assertUnusableAfter(o, 'worker 2 exited with code 3');
});

test('worker.terminate() (runs no JavaScript in the worker) just before a job throws from that call', () => {
  // The main thread cannot call terminate() during a call (it is blocked), so it is issued just
  // before one, without awaiting: the worker is stopped while the job is posted and the pool has
  // seen no 'exit' event, the case an out-of-memory kill also produces.
  const o = scenario(2, `
    void workers[0].worker.terminate();
    during = message(matmul);`);
  assert.equal(o.during, 'ThreadPool.matmul: a worker died (worker 1 stopped without running its exit handler ' +
    '(terminated, or killed by a resource limit)); create a new pool');
  assertUnusableAfter(o, 'worker 1 stopped without running its exit handler');
});

test('a worker that exited between jobs fails the next call at once, without posting a job', () => {
  // The exit runs in a job of its own; the error of that call is checked above, this one is the next.
  const o = scenario(2, `
    message(() => exit(1, 5));
    pool.failure = undefined; // forget it, as if the exit had happened between calls
    during = message(matmul);`);
  assert.equal(o.during, 'ThreadPool.matmul: a worker died (worker 1 exited with code 5); create a new pool');
  assertUnusableAfter(o, 'worker 1 exited with code 5');
});
