// The thread pool: the main thread plus `threads − 1` worker_threads, all running the same kernels
// over the same shared arenas. It runs any registered op (pool-op.ts): each kernel family defines
// its ops (argument layout, split, slice function) in its own module, so this file knows none of
// them. Calls are synchronous for the caller: the main thread publishes the job in a shared control
// block (protocol.ts), wakes the workers, computes its own slice, then waits in Atomics.wait until
// every worker has reported. Work is split into contiguous slices of the op's units (rows, heads,
// (sequence, head) pairs…); thread 0 (the main thread) takes the first slice, never the longest. An
// op may ask for claimed chunks instead (JobSplit.chunks): every thread takes its own slice's chunks
// in order, then steals the others' last chunks (protocol.ts runOwnPart).
// The first time a pool posts an op, the workers import the module that defines it (a LoadOps job).
//
// Lifetime: workers are unref'd, so a script that forgets dispose() still exits. dispose() is
// synchronous and idempotent. register() is synchronous too (the worker reads the memory from its
// port with receiveMessageOnPort during a Register job).
// Errors: every JavaScript or WebAssembly error inside a worker is caught and rethrown in the caller.
// Death: a worker that dies never finishes its job, and its 'exit' event cannot reach a main thread
// blocked in Atomics.wait, so the pool finds deaths through shared memory instead (no per-job
// messages or timers): the worker's process 'exit' handler marks it EXITED and reports its job done
// (process.exit(), uncaught errors); the main thread waits in DEATH_CHECK_MS slices and, when a
// slice ends with jobs still owed, asks each owing worker whether its thread has stopped, which
// catches deaths that run no JavaScript (worker.terminate(), resource limits). The call then throws,
// and the pool stays unusable ("create a new pool"); dispose() still works.

import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { kernelModule } from '../kernels/wasm.js';
import type { Arena } from './arena.js';
import { checkKernelKind, type KernelKind } from './kernel-factory.js';
import type { KernelFamily, PoolOp } from './pool-op.js';
import {
  ARENA, CLAIM_END, CLAIM_SIZE, CLAIM_START, CONTROL_OP_NAMES, DEAD, DONE, ERROR, EXITED, EXIT_CODE, FIRST_POOL_OP,
  MAX_THREADS, OP, Op, PENDING, RANGES, SEQ, createControl, readError, MAX_CLAIM_CHUNKS, runOwnPart, splitRange, splitRangeByCost, writeClaims, type Control, type LoadOpsMessage, type RegisterMessage,
} from './protocol.js';
import type { WorkerInit } from './worker.js';

export interface ThreadPoolOptions {
  /** Threads including the main thread; default os.availableParallelism(). */
  threads?: number;
  kernels: KernelKind;
  /** How long an idle worker (and the waiting main thread) polls before sleeping in Atomics.wait.
   *  Default DEFAULT_SPIN_MICROS; 0 = always sleep. */
  spinMicros?: number;
  /** Jobs that touch fewer bytes than this (weights × n for matmul, K/V reads for attention) run on
   *  the main thread alone, since waking a worker costs more than they do. Default MIN_SPLIT_BYTES. */
  minSplitBytes?: number;
}

/** A decode step is ~200 jobs of 10–100 µs with a few µs of main-thread work between them; a futex
 *  sleep and wake costs ~30 µs per job (src/bench/threads-bench.ts, 2-vCPU VM), so sleeping at once
 *  made two threads decode slower than one (SmolLM2-135M q8_0 at 512 tokens, quiet machine: 65 tok/s
 *  on 2 threads vs 56 on 1; 97 on 2 threads with this spin). 200 µs covers the gaps inside a step;
 *  an idle pool sleeps after it, so between requests the threads cost nothing. */
export const DEFAULT_SPIN_MICROS = 200;
/** The most threads a pool runs: 4 × the cores, so tests can split work over more threads than a
 *  small machine has, while a mistyped count cannot start hundreds of workers (256 threads on 2 cores
 *  took 18 s and 2.3 GB for 4 tokens); never more than the control block has slots for. The one
 *  bound on thread counts: the CLI's --threads and training's `threads` are checked here. */
export function maxThreads(): number {
  return Math.min(MAX_THREADS, 4 * availableParallelism());
}

/** 256 KiB: a 256×256 f32 matmul (~5 µs on one thread) costs about what a wake-up does. */
export const MIN_SPLIT_BYTES = 256 * 1024;
/** The waiting main thread checks for dead workers this often (a timed futex wait costs what an
 *  untimed one does; only jobs longer than this wake it early). */
export const DEATH_CHECK_MS = 200;

interface WorkerHandle { worker: Worker; port: MessagePort }

export class ThreadPool {
  /** Threads including the main thread. */
  readonly threads: number;
  readonly kernelKind: KernelKind;
  private readonly control: Control;
  private readonly workers: WorkerHandle[];
  private readonly spinMs: number;
  private readonly minSplitBytes: number;
  /** The compiled kernel module ('wasm'), shared with the workers. */
  private readonly module: WebAssembly.Module | undefined;
  /** Registered arenas and, per kernel family, its kernels bound for this thread (on first use). */
  private readonly registered = new Map<number, Map<KernelFamily<unknown>, unknown>>();
  /** Ids of the ops the workers have loaded (FIRST_POOL_OP and up, in the order first posted). */
  private readonly opIds = new Map<PoolOp<unknown, never>, number>();
  private readonly opNames = new Map<number, string>(Object.entries(CONTROL_OP_NAMES).map(([id, name]) => [Number(id), name]));
  private loads = 0;
  private disposed = false;
  private failure: Error | undefined;

  private constructor(threads: number, kind: KernelKind, module: WebAssembly.Module | undefined, control: Control,
                      workers: WorkerHandle[], spinMicros: number, minSplitBytes: number) {
    this.threads = threads;
    this.kernelKind = kind;
    this.module = module;
    this.control = control;
    this.workers = workers;
    this.spinMs = spinMicros / 1000;
    this.minSplitBytes = minSplitBytes;
    workers.forEach(({ worker }, i) => {
      // Workers catch their own errors; these only fire if one dies, which later calls report.
      worker.on('error', (err) => { this.failure ??= new Error(`worker ${i + 1} died of an uncaught ${err.name}: ${err.message}`, { cause: err }); });
      worker.on('exit', (code) => { if (!this.disposed) this.failure ??= new Error(`worker ${i + 1} exited with code ${code}`); });
      worker.unref();
    });
  }

  static async create(opts: ThreadPoolOptions): Promise<ThreadPool> {
    checkKernelKind('ThreadPool.create', opts.kernels);
    const threads = opts.threads ?? availableParallelism();
    const most = maxThreads();
    if (!Number.isInteger(threads) || threads < 1 || threads > most) {
      throw new RangeError(`threads must be an integer from 1 to ${most} (4 × this machine's ${availableParallelism()} cores), got ${threads}; `
        + 'leave it unset for one thread per core');
    }
    const spinMicros = opts.spinMicros ?? DEFAULT_SPIN_MICROS;
    if (!(spinMicros >= 0 && spinMicros <= 1e6)) {
      throw new Error(`ThreadPool.create: spinMicros must be in [0, 1e6], got ${spinMicros}`);
    }
    const minSplitBytes = opts.minSplitBytes ?? MIN_SPLIT_BYTES;
    if (!(minSplitBytes >= 0)) throw new Error(`ThreadPool.create: minSplitBytes must be >= 0, got ${minSplitBytes}`);
    const control = createControl();
    const module = opts.kernels === 'wasm' ? kernelModule() : undefined;
    const workers: WorkerHandle[] = [];
    try {
      for (let index = 1; index < threads; index++) {
        const { port1, port2 } = new MessageChannel();
        const init: WorkerInit = { control: control.sab, index, kind: opts.kernels, module, port: port2, spinMicros };
        const worker = new Worker(new URL('./worker.js', import.meta.url), {
          workerData: init, transferList: [port2],
          // Workers inherit the process's flags; --input-type (from `node --input-type=module -e`) makes them fail.
          execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
        });
        workers.push({ worker, port: port1 });
      }
      await Promise.all(workers.map(({ worker }, i) => new Promise<void>((resolve, reject) => {
        // Both 'online' and the worker's ready message: threadStopped() needs the worker online.
        let events = 0;
        const ready = (): void => { if (++events === 2) resolve(); };
        worker.once('online', ready);
        worker.once('message', ready);
        worker.once('error', (err) => reject(new Error(`ThreadPool.create: worker ${i + 1} failed to start: ${err.message}`, { cause: err })));
        worker.once('exit', (code) => reject(new Error(`ThreadPool.create: worker ${i + 1} exited with code ${code} while starting`)));
      })));
    } catch (err) {
      for (const { worker } of workers) void worker.terminate();
      throw err;
    }
    for (const { worker } of workers) {
      worker.removeAllListeners();
      threadStopped(worker); // caches the loop start time while the worker is alive (see threadStopped)
    }
    return new ThreadPool(threads, opts.kernels, module, control, workers, spinMicros, minSplitBytes);
  }

  /** Makes `arena` usable by the workers (each binds its own kernels to the shared memory). */
  register(arena: Arena): void {
    this.checkUsable('register');
    if (arena.kernelKind !== this.kernelKind) {
      throw new Error(`ThreadPool.register: arena "${arena.label}" uses '${arena.kernelKind}' kernels but the pool ` +
        `runs '${this.kernelKind}'; create both with the same kind so every thread computes alike`);
    }
    if (this.registered.has(arena.id)) return;
    const msg: RegisterMessage = { kind: 'arena', id: arena.id, memory: arena.memory };
    for (const { port } of this.workers) port.postMessage(msg);
    this.dispatch(Op.Register, arena.id, undefined);
    this.registered.set(arena.id, new Map());
  }

  /** Drops the workers' kernels for `arena`, so its memory can be freed once the caller drops it. */
  unregister(arena: Arena): void {
    if (this.disposed || !this.registered.has(arena.id)) return;
    this.registered.delete(arena.id);
    if (this.failure !== undefined) return; // nothing to tell dead workers; dispose() ends the rest
    this.dispatch(Op.Unregister, arena.id, undefined);
  }

  /** Runs `op` (defined by its kernel family, pool-op.ts) on `arena` with the call's arguments,
   *  split over the threads; returns when every slice is done. */
  run<K, A extends readonly unknown[]>(op: PoolOp<K, A>, arena: Arena, ...call: A): void {
    const kernels = this.checkJob(op.name, arena, op.family as KernelFamily<unknown>);
    const erased = op as unknown as PoolOp<unknown, never>;
    // Loading posts a job of its own, so it comes before this job's arguments are written.
    const id = this.opIds.get(erased) ?? (this.workers.length > 0 ? this.loadOp(erased) : 0);
    const c = this.control;
    const { start = 0, total, unit, work, cost, chunks } = op.prepare(c.args, this.threads, ...call);
    if (cost === undefined || this.threads === 1) splitRange(total, this.threads, unit, c.ints, RANGES);
    else splitRangeByCost(total, this.threads, unit, cost, c.ints, RANGES);
    if (start !== 0) for (let t = 0; t < 2 * this.threads; t++) c.ints[RANGES + t]! += start;
    // Jobs too small to split (one non-empty slice, or little work) run here without waking the workers.
    let busy = 0;
    for (let t = 0; t < this.threads; t++) if (c.ints[RANGES + 2 * t]! < c.ints[RANGES + 2 * t + 1]!) busy++;
    if (busy <= 1 || work < this.minSplitBytes) {
      if (total > 0) op.slice(kernels as K, c.args, start, start + total);
    } else {
      let size = 0;
      if (chunks !== undefined && cost === undefined) {
        const units = Math.ceil(total / unit);
        // no more chunks than a claim word indexes
        size = Math.max(1, Math.ceil(units / (this.threads * Math.max(1, chunks))), Math.ceil(units / MAX_CLAIM_CHUNKS)) * unit;
        Atomics.store(c.ints, CLAIM_START, start);
        Atomics.store(c.ints, CLAIM_END, start + total);
        writeClaims(c.ints, Math.ceil(total / size), this.threads);
      }
      Atomics.store(c.ints, CLAIM_SIZE, size);
      this.dispatch(id, arena.id, erased, kernels);
    }
    op.finish?.(kernels as K, c.args);
  }

  /** Stops and terminates the workers. Idempotent; the pool is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.registered.clear();
    if (this.workers.length > 0 && this.failure === undefined) {
      try { this.dispatch(Op.Stop, 0, undefined, undefined, 1000); } catch { /* terminate below regardless */ }
    }
    for (const { worker, port } of this.workers) {
      port.close();
      worker.terminate().catch(() => { /* already gone */ });
    }
  }

  private checkUsable(fn: string): void {
    if (this.disposed) throw new Error(`ThreadPool.${fn}: the pool was disposed`);
    if (this.failure !== undefined) {
      throw new Error(`ThreadPool.${fn}: a worker died (${this.failure.message}); create a new pool`, { cause: this.failure });
    }
  }

  /** Checks that the pool can run a job on `arena`; returns `family`'s kernels bound to it on this thread. */
  private checkJob(name: string, arena: Arena, family: KernelFamily<unknown>): unknown {
    this.checkUsable(name);
    const bound = this.registered.get(arena.id);
    if (bound === undefined) {
      throw new Error(`ThreadPool.${name}: arena "${arena.label}" is not registered; call pool.register(arena) after creating it`);
    }
    let kernels = bound.get(family);
    if (kernels === undefined) {
      kernels = family.bind(this.kernelKind, arena.memory, this.module);
      bound.set(family, kernels);
    }
    return kernels;
  }

  /** Makes the workers import `op`'s module and gives the op its id (once per pool and op). Posts
   *  every op of its family not yet loaded, so a family costs one LoadOps job. */
  private loadOp(op: PoolOp<unknown, never>): number {
    const ops: LoadOpsMessage['ops'] = [];
    for (const other of op.family.ops.values()) {
      if (this.opIds.has(other)) continue;
      ops.push({ id: FIRST_POOL_OP + this.opIds.size + ops.length, url: other.family.url, family: other.family.name, name: other.name });
    }
    if (!ops.some((o) => o.name === op.name)) { // defined outside its family's module (workers would not find it)
      ops.push({ id: FIRST_POOL_OP + this.opIds.size + ops.length, url: op.family.url, family: op.family.name, name: op.name });
    }
    const load = this.loads++;
    const msg: LoadOpsMessage = { kind: 'ops', load, ops };
    for (const { port } of this.workers) port.postMessage(msg);
    this.control.args[0] = load;
    this.dispatch(Op.LoadOps, 0, undefined, undefined, Infinity, op.name);
    for (const o of ops) {
      const def = o.name === op.name ? op : op.family.ops.get(o.name)!;
      this.opIds.set(def, o.id);
      this.opNames.set(o.id, def.name);
    }
    return this.opIds.get(op)!;
  }

  /** Posts job `op` to every worker, runs `own`'s part on this thread (if given: the slice
   *  [RANGES[0], RANGES[1]), or claimed chunks, protocol.ts runOwnPart), waits for all, and rethrows the first failure as `ThreadPool.<opName>: …`. */
  private dispatch(op: number, arenaId: number, own: PoolOp<unknown, never> | undefined, ownKernels?: unknown,
                   timeoutMs = Infinity, opName = this.opNames.get(op) ?? String(op)): void {
    const ints = this.control.ints;
    // A worker whose exit handler ran between jobs: fail now rather than post a job it cannot take.
    const deadBefore = Atomics.load(ints, DEAD);
    if (deadBefore !== 0) throw this.died(opName, deadBefore - 1);
    Atomics.store(ints, OP, op);
    Atomics.store(ints, ARENA, arenaId);
    Atomics.store(ints, ERROR, 0);
    Atomics.store(ints, PENDING, this.workers.length);
    const seq = (Atomics.add(ints, SEQ, 1) + 1) | 0; // the word wraps like an int32
    Atomics.notify(ints, SEQ);
    let ownError: unknown;
    if (own !== undefined) {
      try { runOwnPart(ints, 0, own, ownKernels, this.control.args); } catch (err) { ownError = err; }
    }
    const deadOwing = this.waitForWorkers(seq, timeoutMs);
    const dead = deadOwing ?? Atomics.load(ints, DEAD) - 1; // or one whose exit handler reported its job
    if (dead >= 1) throw this.died(opName, dead);
    if (ownError !== undefined) throw ownError;
    const failed = readError(this.control);
    if (failed !== undefined) {
      throw new Error(`ThreadPool.${opName}: worker ${failed.thread} failed: ${failed.message}`);
    }
  }

  /** Waits until every worker finished job `seq`; returns undefined then, or the index of a dead
   *  worker once every worker still owing the job is dead (waiting longer could never end). */
  private waitForWorkers(seq: number, timeoutMs: number): number | undefined {
    const ints = this.control.ints;
    if (this.spinMs > 0) {
      const deadline = performance.now() + this.spinMs;
      while (Atomics.load(ints, PENDING) !== 0 && performance.now() < deadline) { /* spin */ }
    }
    const giveUp = performance.now() + timeoutMs;
    for (;;) {
      const pending = Atomics.load(ints, PENDING);
      if (pending === 0) return undefined;
      const left = giveUp - performance.now();
      if (left <= 0) throw new Error(`ThreadPool: ${pending} worker(s) did not answer within ${timeoutMs} ms`);
      // Woken with the job unfinished (a slice ended, or an exit handler notified): look for deaths.
      // ('not-equal' only means a worker finished meanwhile: the common case, no check.)
      const woke = Atomics.wait(ints, PENDING, pending, Math.min(left, DEATH_CHECK_MS));
      if (woke !== 'not-equal' && Atomics.load(ints, PENDING) !== 0) {
        const dead = this.deadOwing(seq);
        if (dead !== undefined) return dead;
      }
    }
  }

  /** If every worker that has not finished job `seq` is dead, the first of them; else undefined
   *  (live workers still owe it: keep waiting, so none is left writing after the call returns). */
  private deadOwing(seq: number): number | undefined {
    const ints = this.control.ints;
    let dead: number | undefined;
    for (let t = 1; t < this.threads; t++) {
      if (Atomics.load(ints, DONE + t) === seq) continue;
      if (Atomics.load(ints, EXITED + t) === 0 && !threadStopped(this.workers[t - 1]!.worker)) return undefined;
      dead ??= t;
    }
    return dead;
  }

  /** Marks the pool failed because worker `t` died, and returns the error for the current call. */
  private died(opName: string, t: number): Error {
    const ints = this.control.ints;
    const reason = Atomics.load(ints, EXITED + t) !== 0
      ? `worker ${t} exited with code ${Atomics.load(ints, EXIT_CODE + t)}`
      : `worker ${t} stopped without running its exit handler (terminated, or killed by a resource limit)`;
    this.failure ??= new Error(reason);
    return new Error(`ThreadPool.${opName}: a worker died (${reason}); create a new pool`, { cause: this.failure });
  }
}

/** Whether a worker's thread has stopped, asked synchronously (its 'exit' event needs the event loop,
 *  which a waiting main thread does not run). Node 20 answers idle = -1 from eventLoopUtilization()
 *  once the thread is stopped or torn down (node_worker.cc LoopIdleTime), and 0 until the first call
 *  that finds it online, which pool creation makes. Checked by test/runtime/worker-death.test.ts. */
function threadStopped(worker: Worker): boolean {
  return worker.performance.eventLoopUtilization().idle === -1;
}
