// A pool worker (see pool.ts and protocol.ts). After startup it blocks in Atomics.wait for the next
// job, runs its slice of a registered op (pool-op.ts) with its own kernel instances (one per family
// and registered arena, all over the same shared memories as the main thread), and reports done.
// Arena memories and the ops to load arrive on a MessagePort read synchronously with
// receiveMessageOnPort, because a worker blocked in Atomics.wait never runs message handlers. The
// one job that returns to the event loop is LoadOps, which imports the modules defining the ops.
// Death: a process 'exit' handler (Node runs it on process.exit() in the worker, on an uncaught
// error and on a normal end, but not on worker.terminate() or a resource-limit kill) marks this
// thread EXITED and, if a job was in progress, reports the job done so the main thread wakes at once.
// Deaths that run no JavaScript are found by the main thread itself (pool.ts waitForWorkers).

import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { KernelKind } from './kernel-factory.js';
import { importPoolOp, type KernelFamily, type PoolOp } from './pool-op.js';
import {
  ARENA, DEAD, DONE, EXITED, EXIT_CODE, OP, Op, PENDING, SEQ, controlViews, runOwnPart, writeError, type LoadOpsMessage, type PortMessage,
} from './protocol.js';

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

const init = workerData as WorkerInit;
const control = controlViews(init.control);
const { ints, args } = control;
/** Registered arenas: the memory and each family's kernels bound to it (bound on first use). */
const arenas = new Map<number, { memory: WebAssembly.Memory; kernels: Map<KernelFamily<unknown>, unknown> }>();
/** Ops by the id the pool posts them under. */
const ops = new Map<number, PoolOp<unknown, never>>();

/** The next message of `kind` on the port matching `accept`. postMessage enqueues synchronously, so
 *  it is already there; older messages (from a job that failed half-way) are skipped. */
function receive<M extends PortMessage>(kind: M['kind'], accept: (m: M) => boolean): M {
  for (;;) {
    const received = receiveMessageOnPort(init.port);
    if (received === undefined) throw new Error(`worker ${init.index}: the pool posted no ${kind} message for this job`);
    const msg = received.message as PortMessage;
    if (msg.kind === kind && accept(msg as M)) return msg as M;
  }
}

function register(id: number): void {
  const msg = receive<PortMessage & { kind: 'arena' }>('arena', (m) => m.id === id);
  arenas.set(id, { memory: msg.memory, kernels: new Map() });
}

/** Imports the modules of the ops the pool is about to post (their top-level definitions register
 *  them on this thread too). The only job that waits on this thread's event loop. */
async function loadOps(load: number): Promise<void> {
  const msg = receive<LoadOpsMessage>('ops', (m) => m.load === load);
  for (const { id, url, family, name } of msg.ops) ops.set(id, await importPoolOp(url, family, name));
}

function runJob(op: number): void {
  const arenaId = Atomics.load(ints, ARENA);
  switch (op) {
    case Op.Register: register(arenaId); return;
    case Op.Unregister: arenas.delete(arenaId); return;
    default: {
      const def = ops.get(op);
      if (def === undefined) throw new Error(`worker ${init.index}: op ${op} was never loaded`);
      const arena = arenas.get(arenaId);
      if (arena === undefined) throw new Error(`worker ${init.index}: arena ${arenaId} is not registered`);
      let kernels = arena.kernels.get(def.family);
      if (kernels === undefined) {
        kernels = def.family.bind(init.kind, arena.memory, init.module);
        arena.kernels.set(def.family, kernels);
      }
      runOwnPart(ints, init.index, def, kernels, args);
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

async function loop(seen: number): Promise<void> {
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
      // Only LoadOps awaits (a dynamic import); every other job runs without leaving this loop.
      if (op === Op.LoadOps) await loadOps(args[0]!); // args[0]: which LoadOpsMessage
      else runJob(op);
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
void loop(firstSeq); // never settles: the loop ends only with the thread
