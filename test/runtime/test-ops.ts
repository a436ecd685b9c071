// A kernel family defined outside src/, as any module may define one (src/runtime/pool-op.ts): the
// pool's workers must import it by its URL like the project's own families.
//   unitThreads: writes, for each unit r of [0, total), the threadId of the thread that ran it
//     into the i32 at out + 4r (so a test can see which threads took part); with `costs`, the
//     units' costs, which the split then follows;
//   claimedUnits: a claimed job (JobSplit.chunks) over [0, total) in chunks of whole `unit`s: adds 1
//     to the i32 at visits + 4r and writes threadId to the i32 at owners + 4r for each unit r it runs,
//     and the chunk's place in the order chunks started (an atomic counter at order) to order + 4 + 4r;
//     after each chunk the calling thread sleeps `mainMs` and the workers `workerMs` (slower cores);
//   testExit (test/runtime/worker-death.test.ts): pool thread t (a worker, t ≥ 1) calls
//     process.exit(code) in the middle of the job, as a crash inside a kernel would; its slices are
//     one unit per thread, so thread t runs exactly unit t.
import { threadId } from 'node:worker_threads';
import { defineKernelFamily } from '../../src/runtime/pool-op.js';

const family = defineKernelFamily(import.meta.url, 'test', (_kind, memory) => new Int32Array(memory.buffer));

export const unitThreadsOp = family.op('unitThreads', {
  args: ['out'],
  prepare(a, _threads, out: number, total: number, costs?: readonly number[]) {
    a[0] = out;
    return { total, unit: 1, work: Infinity, cost: costs && ((u: number) => costs[u]!) };
  },
  slice(mem, a, r0, r1) { for (let r = r0; r < r1; r++) mem[a[0]! / 4 + r] = threadId; },
});

export const claimedUnitsOp = family.op('claimedUnits', {
  args: ['visits', 'owners', 'mainMs', 'workerMs', 'order'],
  prepare(a, _threads, visits: number, owners: number, total: number, unit: number, chunks: number, mainMs: number, workerMs: number, order: number) {
    a[0] = visits; a[1] = owners; a[2] = mainMs; a[3] = workerMs; a[4] = order;
    return { total, unit, work: Infinity, chunks };
  },
  slice(mem, a, r0, r1) {
    const k = Atomics.add(mem, a[4]! / 4, 1);
    for (let r = r0; r < r1; r++) { mem[a[0]! / 4 + r]! += 1; mem[a[1]! / 4 + r] = threadId; mem[a[4]! / 4 + 1 + r] = k; }
    const ms = threadId === 0 ? a[2]! : a[3]!;
    if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  },
});

export const exitOp = family.op('testExit', {
  args: ['thread', 'code'],
  prepare(a, threads, thread: number, code: number) {
    a[0] = thread; a[1] = code;
    return { total: threads, unit: 1, work: Infinity };
  },
  slice(_mem, a, r0) { if (r0 === a[0]) process.exit(a[1]); },
});
