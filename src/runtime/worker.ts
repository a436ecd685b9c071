// A pool worker (see pool.ts and protocol.ts). It never returns to its event loop: after startup it
// blocks in Atomics.wait for the next job, runs its slice with its own kernel instances (one per
// registered arena, all over the same shared memories as the main thread), and reports done.
// Arena memories arrive on a MessagePort read synchronously with receiveMessageOnPort, because a
// worker blocked in Atomics.wait never runs message handlers.

import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Kernels } from '../kernels/types.js';
import { createKernels, type KernelKind } from './kernel-factory.js';
import { ARENA, OP, Op, PENDING, RANGES, SEQ, controlViews, isSparseOp, runSlice, runSparseSlice, writeError } from './protocol.js';
import { sparseKernels } from '../attention/sparse-kernels.js';

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
    default: {
      const kernels = arenas.get(arenaId);
      if (kernels === undefined) throw new Error(`worker ${init.index}: arena ${arenaId} is not registered`);
      const r0 = ints[RANGES + 2 * init.index]!, r1 = ints[RANGES + 2 * init.index + 1]!;
      if (isSparseOp(op)) runSparseSlice(sparseKernels(init.kind, memories.get(arenaId)!, init.module), op, args, r0, r1);
      else runSlice(kernels, op, args, r0, r1);
    }
  }
}

function finish(): void {
  if (Atomics.sub(ints, PENDING, 1) === 1) Atomics.notify(ints, PENDING);
}

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
    if (op === Op.Stop) { finish(); return; }
    try {
      runJob(op);
    } catch (err) {
      writeError(control, init.index, err);
    }
    finish();
  }
}

// Read SEQ before saying ready: the pool posts no job until every worker is ready, so no job is missed.
const firstSeq = Atomics.load(ints, SEQ);
parentPort!.postMessage('ready');
loop(firstSeq);
