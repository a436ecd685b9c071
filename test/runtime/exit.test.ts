// A script that forgets pool.dispose() must still exit: workers are unref'd and blocked in
// Atomics.wait, which must not keep the process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

test('a process that never disposes its pool exits on its own', () => {
  const arenaUrl = new URL('../../src/runtime/arena.js', import.meta.url).href;
  const poolUrl = new URL('../../src/runtime/pool.js', import.meta.url).href;
  const opsUrl = new URL('../../src/kernels/pool-ops.js', import.meta.url).href;
  const script = `
    const { Arena } = await import(${JSON.stringify(arenaUrl)});
    const { ThreadPool } = await import(${JSON.stringify(poolUrl)});
    const { matmulOp } = await import(${JSON.stringify(opsUrl)});
    const pool = await ThreadPool.create({ threads: 2, kernels: 'reference' });
    const arena = Arena.create(1 << 16, { kernels: 'reference' });
    pool.register(arena);
    const w = arena.alloc(16 * 32 * 4), x = arena.alloc(32 * 4), y = arena.alloc(16 * 4);
    arena.f32(w, 16 * 32).fill(1); arena.f32(x, 32).fill(2);
    pool.run(matmulOp, arena, 'f32', w, x, y, 1, 16, 32);
    console.log(arena.f32(y, 16)[15]);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000, encoding: 'utf8' });
  assert.equal(child.error, undefined, 'the child process did not exit within 20 s');
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), '64');
});
