// A pool worker (see pool.ts and protocol.ts). It never returns to its event loop: after startup it
// blocks in Atomics.wait for the next job, runs its slice with its own kernel instances (one per
// registered arena, all over the same shared memories as the main thread), and reports done.
// Arena memories arrive on a MessagePort read synchronously with receiveMessageOnPort, because a
// worker blocked in Atomics.wait never runs message handlers.
// Death: a process 'exit' handler (Node runs it on process.exit() in the worker, on an uncaught
// error and on a normal end, but not on worker.terminate() or a resource-limit kill) marks this
// thread EXITED and, if a job was in progress, reports the job done so the main thread wakes at once.
// Deaths that run no JavaScript are found by the main thread itself (pool.ts waitForWorkers).

import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Kernels } from '../kernels/types.js';
import { createKernels, type KernelKind } from './kernel-factory.js';
import {
  ARENA, DEAD, DONE, EXITED, EXIT_CODE, OP, Op, PENDING, RANGES, SEQ, controlViews, isSparseOp, isTrainOp, runSlice, runSparseSlice,
  runTrainSlice, writeError,
} from './protocol.js';
import { sparseKernels } from '../attention/sparse-kernels.js';
import { trainKernelsOf } from '../training/train-kernels.js';

export interface WorkerInit {
  control: SharedArrayBuffer;
  /** Thread index (1 … threads − 1; the main thread is 0). */
  index: number;
  kind: KernelKind;
  /** The compiled kernel module, posted so the worker does not compile it again ('wasm' only). */
  module?: WebAssembly.Module;
  port: MessagePort;
  /** How long to poll for the next job before sleeping in Atomics.wait. */
  spinMicros: number;
}

/** Message posted on the port before a Register job. */
export interface RegisterMessage { id: number; memory: WebAssembly.Memory }

const init = workerData as WorkerInit;
const control = controlViews(init.control);
const { ints, args } = control;
const arenas = new Map<number, Kernels>();
const memories = new Map<number, WebAssembly.Memory>();

function register(id: number): void {
  // postMessage enqueues synchronously, so the memory is already on the port; older messages
  // (from a register that failed half-way) are skipped.
  for (;;) {
    const received = receiveMessageOnPort(init.port);
    if (received === undefined) throw new Error(`worker ${init.index}: memory of arena ${id} was not posted`);
    const msg = received.message as RegisterMessage;
    if (msg.id !== id) continue;
    arenas.set(id, createKernels(init.kind, msg.memory, init.module));
    memories.set(id, msg.memory);
    return;
  }
}

function runJob(op: number): void {
  const arenaId = Atomics.load(ints, ARENA);
  switch (op) {
    case Op.Register: register(arenaId); return;
    case Op.Unregister: arenas.delete(arenaId); memories.delete(arenaId); return;
    case Op.TestExit: if (args[0] === init.index) process.exit(args[1]); return; // tests only (protocol.ts)
    default: {
      const kernels = arenas.get(arenaId);
      if (kernels === undefined) throw new Error(`worker ${init.index}: arena ${arenaId} is not registered`);
      const r0 = ints[RANGES + 2 * init.index]!, r1 = ints[RANGES + 2 * init.index + 1]!;
      if (isSparseOp(op)) runSparseSlice(sparseKernels(init.kind, memories.get(arenaId)!, init.module), op, args, r0, r1);
      else if (isTrainOp(op)) runTrainSlice(trainKernelsOf(init.kind, memories.get(arenaId)!, init.module), op, args, r0, r1);
      else runSlice(kernels, op, args, r0, r1);
    }
  }
}

/** SEQ of the job this thread is running, or undefined between jobs (read by the exit handler). */
let current: number | undefined;

function finish(seq: number): void {
  Atomics.store(ints, DONE + init.index, seq);
  if (Atomics.sub(ints, PENDING, 1) === 1) Atomics.notify(ints, PENDING);
}

process.on('exit', (code) => {
  Atomics.store(ints, EXIT_CODE + init.index, code);
  Atomics.store(ints, EXITED + init.index, 1);
  Atomics.compareExchange(ints, DEAD, 0, init.index + 1);
  if (current !== undefined) {
    const seq = current;
    current = undefined;
    finish(seq);
  } else {
    // Wakes a main thread that may be waiting on a job this thread will never take.
    Atomics.notify(ints, PENDING);
  }
});

function loop(seen: number): void {
  const spinMs = init.spinMicros / 1000;
  for (;;) {
    // Short jobs come back to back during decode: polling briefly avoids a futex sleep/wake.
    if (spinMs > 0) {
      const deadline = performance.now() + spinMs;
      while (Atomics.load(ints, SEQ) === seen && performance.now() < deadline) { /* spin */ }
    }
    while (Atomics.load(ints, SEQ) === seen) Atomics.wait(ints, SEQ, seen);
    seen = Atomics.load(ints, SEQ);
    const op = Atomics.load(ints, OP);
    if (op === Op.Stop) { finish(seen); return; }
    current = seen;
    try {
      runJob(op);
    } catch (err) {
      writeError(control, init.index, err);
    }
    current = undefined; // before finish(): an exit after it must not report the job twice
    finish(seen);
  }
}

// Read SEQ before saying ready: the pool posts no job until every worker is ready, so no job is missed.
const firstSeq = Atomics.load(ints, SEQ);
parentPort!.postMessage('ready');
loop(firstSeq);
