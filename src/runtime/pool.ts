// The thread pool: the main thread plus `threads − 1` worker_threads, all running the same kernels
// over the same shared arenas. Calls are synchronous for the caller: the main thread publishes the
// job in a shared control block (protocol.ts), wakes the workers, computes its own slice, then waits
// in Atomics.wait until every worker has reported. Work is split into contiguous slices of rows
// (matmul), heads (attention) or (sequence, head) pairs (training attention); thread 0 (the main
// thread) takes the first slice, never the longest.
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
import { weightBytes, type CacheDType, type Ptr, type WeightDType } from '../kernels/types.js';
import { kernelModule } from '../kernels/wasm.js';
import type { Arena } from './arena.js';
import { checkKernelKind, type KernelKind } from './kernel-factory.js';
import {
  ARENA, CACHE_DTYPES, DEAD, DONE, ERROR, EXITED, EXIT_CODE, MAX_THREADS, OP, OP_NAMES, Op, PENDING, RANGES, SEQ, WEIGHT_DTYPES,
  createControl, isSparseOp, isTrainOp, readError, runSlice, runSparseSlice, runTrainSlice, splitRange, type Control,
} from './protocol.js';
import { sparseKernels } from '../attention/sparse-kernels.js';
import { trainKernelsOf } from '../training/train-kernels.js';
import type { RegisterMessage, WorkerInit } from './worker.js';

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

/** Matmul slices start at multiples of this many rows (keeps the SIMD kernels' row blocks whole). */
export const ROW_ALIGN = 8;
/** Spinning helps only on an idle, dedicated machine; on a shared or virtualised one (a 2-vCPU VM
 *  measured with src/bench/threads-bench.ts) it made jobs slower, so by default workers sleep at once. */
export const DEFAULT_SPIN_MICROS = 0;
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
  private readonly registered = new Map<number, Arena>();
  private disposed = false;
  private failure: Error | undefined;

  private constructor(threads: number, kind: KernelKind, control: Control, workers: WorkerHandle[], spinMicros: number, minSplitBytes: number) {
    this.threads = threads;
    this.kernelKind = kind;
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
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new Error(`ThreadPool.create: threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
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
    return new ThreadPool(threads, opts.kernels, control, workers, spinMicros, minSplitBytes);
  }

  /** Makes `arena` usable by the workers (each binds its own kernels to the shared memory). */
  register(arena: Arena): void {
    this.checkUsable('register');
    if (arena.kernelKind !== this.kernelKind) {
      throw new Error(`ThreadPool.register: arena "${arena.label}" uses '${arena.kernelKind}' kernels but the pool ` +
        `runs '${this.kernelKind}'; create both with the same kind so every thread computes alike`);
    }
    if (this.registered.has(arena.id)) return;
    const msg: RegisterMessage = { id: arena.id, memory: arena.memory };
    for (const { port } of this.workers) port.postMessage(msg);
    this.dispatch(Op.Register, arena.id, undefined);
    this.registered.set(arena.id, arena);
  }

  /** Drops the workers' kernels for `arena`, so its memory can be freed once the caller drops it. */
  unregister(arena: Arena): void {
    if (this.disposed || !this.registered.has(arena.id)) return;
    this.registered.delete(arena.id);
    if (this.failure !== undefined) return; // nothing to tell dead workers; dispose() ends the rest
    this.dispatch(Op.Unregister, arena.id, undefined);
  }

  /** Kernels.matmul over rows [0, rows), split by rows across the threads. Same arguments. */
  matmul(arena: Arena, dtype: WeightDType, w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number): void {
    const dt = WEIGHT_DTYPES.indexOf(dtype);
    if (dt < 0) throw new Error(`ThreadPool.matmul: unknown weight dtype ${JSON.stringify(dtype)}`);
    this.checkJob('matmul', arena);
    const a = this.control.args; // layout read by runSlice
    a[0] = dt; a[1] = w; a[2] = x; a[3] = y; a[4] = n; a[5] = rows; a[6] = cols;
    this.job(arena, Op.Matmul, rows, ROW_ALIGN, n * weightBytes(dtype, rows * cols));
  }

  /** Kernels.attention over heads [0, H), split by heads (whole GQA groups when there are enough). */
  attention(arena: Arena, q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, cacheDType: CacheDType,
            n: number, S: number, H: number, Hkv: number, D: number, scale: number, pages: Ptr = 0, pageShift = 0, state: Ptr = 0): void {
    const ct = CACHE_DTYPES.indexOf(cacheDType);
    if (ct < 0) throw new Error(`ThreadPool.attention: unknown cache dtype ${JSON.stringify(cacheDType)}`);
    // Keeping a group's heads on one thread lets it read that KV head once per group — but only
    // when the groups divide evenly over the threads (3 KV heads on 2 threads would leave one thread
    // 2/3 of the work; split by single heads instead, re-reading one group's rows from cache).
    const unit = Hkv % this.threads === 0 && H % Hkv === 0 ? H / Hkv : 1;
    this.checkJob('attention', arena);
    const a = this.control.args; // layout read by runSlice
    a[0] = q; a[1] = qPos; a[2] = k; a[3] = v; a[4] = out; a[5] = ct;
    a[6] = n; a[7] = S; a[8] = H; a[9] = Hkv; a[10] = D; a[11] = scale; a[12] = pages; a[13] = pageShift; a[14] = state;
    const work = n * H * S * D * (cacheDType === 'f32' ? 8 : 4); // each head reads a K and a V row per key
    this.job(arena, Op.Attention, H, unit, work);
  }

  /** SimHash codes of key rows [r0, r1) (SparseKernels.lshCodes), split by tokens across the threads. */
  lshCodes(arena: Arena, x: Ptr, f16: boolean, rowStride: number, mu: Ptr, R: Ptr, xs: Ptr, D: number, K: number, L: number,
           codes: Ptr, codeStride: number, norms: Ptr, i0: number, r0: number, r1: number): void {
    this.checkJob('lshCodes', arena);
    const a = this.control.args; // layout read by runSparseSlice
    a[0] = x; a[1] = f16 ? 1 : 0; a[2] = rowStride; a[3] = mu; a[4] = R; a[5] = xs; a[6] = D; a[7] = K; a[8] = L;
    a[9] = codes; a[10] = codeStride; a[11] = norms; a[12] = i0;
    // Offset the split range by r0: slices are [r0 + s, r0 + e).
    this.jobAt(arena, Op.LshCodes, r0, r1 - r0, 4, (r1 - r0) * K * L * D * 4);
  }

  /** One MagicPIG decode step (SparseKernels.magicpigDecode) over query heads [0, H), split by heads;
   *  `work` estimates the bytes it touches (small jobs stay on this thread). */
  magicpig(arena: Arena, desc: Ptr, H: number, work: number): void {
    this.checkJob('magicpig', arena);
    this.control.args[0] = desc;
    this.job(arena, Op.MagicPig, H, 1, work);
  }

  /** Training attention forward (TrainKernels.attnForward) over B sequences laid out back to back
   *  (q/out (B, T, H, D), k/v (B, T, Hkv, D), lse (B, T, H)), split by (sequence, query head). */
  trainAttnForward(arena: Arena, q: Ptr, k: Ptr, v: Ptr, out: Ptr, lse: Ptr,
                   B: number, T: number, H: number, Hkv: number, D: number, scale: number): void {
    checkTrainAttn('trainAttnForward', B, T, H, Hkv, D);
    this.checkJob('trainAttnForward', arena);
    const a = this.control.args; // layout read by runTrainSlice
    a[0] = q; a[1] = k; a[2] = v; a[3] = out; a[4] = lse;
    a[5] = B; a[6] = T; a[7] = H; a[8] = Hkv; a[9] = D; a[10] = scale;
    // Whole GQA groups per thread when they divide evenly (a group's K/V rows stay in one cache).
    const unit = (B * Hkv) % this.threads === 0 ? H / Hkv : 1;
    const work = B * H * (T * (T + 1) / 2) * D * 8; // each (query, key) pair reads a K and a V row
    this.job(arena, Op.TrainAttnForward, B * H, unit, work);
  }

  /** Training attention backward (TrainKernels.attnBackward, adds into dq/dk/dv) over B sequences,
   *  split by (sequence, KV group); a group writes only its own dk/dv rows and its heads' dq rows. */
  trainAttnBackward(arena: Arena, q: Ptr, k: Ptr, v: Ptr, out: Ptr, dout: Ptr, lse: Ptr, dq: Ptr, dk: Ptr, dv: Ptr,
                    B: number, T: number, H: number, Hkv: number, D: number, scale: number): void {
    checkTrainAttn('trainAttnBackward', B, T, H, Hkv, D);
    this.checkJob('trainAttnBackward', arena);
    const a = this.control.args; // layout read by runTrainSlice
    a[0] = q; a[1] = k; a[2] = v; a[3] = out; a[4] = dout; a[5] = lse; a[6] = dq; a[7] = dk; a[8] = dv;
    a[9] = B; a[10] = T; a[11] = H; a[12] = Hkv; a[13] = D; a[14] = scale;
    const work = B * H * (T * (T + 1) / 2) * D * 24; // reads q, k, v, dout rows, updates dq, dk, dv rows
    this.job(arena, Op.TrainAttnBackward, B * Hkv, 1, work);
  }

  /** Stops and terminates the workers. Idempotent; the pool is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.registered.clear();
    if (this.workers.length > 0 && this.failure === undefined) {
      try { this.dispatch(Op.Stop, 0, undefined, 1000); } catch { /* terminate below regardless */ }
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

  private checkJob(name: string, arena: Arena): void {
    this.checkUsable(name);
    if (!this.registered.has(arena.id)) {
      throw new Error(`ThreadPool.${name}: arena "${arena.label}" is not registered; call pool.register(arena) after creating it`);
    }
  }

  /** Runs a job whose arguments are already in control.args over [0, total). */
  private job(arena: Arena, op: number, total: number, unit: number, work: number): void {
    this.jobAt(arena, op, 0, total, unit, work);
  }

  /** job() over [start, start + total). */
  private jobAt(arena: Arena, op: number, start: number, total: number, unit: number, work: number): void {
    const c = this.control;
    splitRange(total, this.threads, unit, c.ints, RANGES);
    if (start !== 0) for (let t = 0; t < 2 * this.threads; t++) c.ints[RANGES + t]! += start;
    // Jobs too small to split (one non-empty slice, or little work) run here without waking the workers.
    let busy = 0;
    for (let t = 0; t < this.threads; t++) if (c.ints[RANGES + 2 * t]! < c.ints[RANGES + 2 * t + 1]!) busy++;
    if (busy <= 1 || work < this.minSplitBytes) {
      this.runOwn(arena, op, start, start + total);
      return;
    }
    this.dispatch(op, arena.id, arena);
  }

  /** This thread's slice of a job, with the arena's kernels (dense or sparse ones). */
  private runOwn(arena: Arena, op: number, r0: number, r1: number): void {
    if (isSparseOp(op)) runSparseSlice(sparseKernels(arena.kernelKind, arena.memory), op, this.control.args, r0, r1);
    else if (isTrainOp(op)) runTrainSlice(trainKernelsOf(arena.kernelKind, arena.memory), op, this.control.args, r0, r1);
    else runSlice(arena.kernels, op, this.control.args, r0, r1);
  }

  /** Posts a job to every worker, runs slice 0 on this thread with `own` kernels (if given), waits
   *  for all, and rethrows the first failure. */
  private dispatch(op: number, arenaId: number, own: Arena | undefined, timeoutMs = Infinity): void {
    const ints = this.control.ints;
    const opName = OP_NAMES[op] ?? String(op);
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
      try { this.runOwn(own, op, ints[RANGES]!, ints[RANGES + 1]!); } catch (err) { ownError = err; }
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

function checkTrainAttn(fn: string, B: number, T: number, H: number, Hkv: number, D: number): void {
  const ok = [B, T, H, Hkv, D].every((x) => Number.isInteger(x) && x > 0) && H % Hkv === 0;
  if (!ok) throw new Error(`ThreadPool.${fn}: need positive integer B, T, H, Hkv, D with H a multiple of Hkv, got B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D}`);
}

/** Whether a worker's thread has stopped, asked synchronously (its 'exit' event needs the event loop,
 *  which a waiting main thread does not run). Node 20 answers idle = -1 from eventLoopUtilization()
 *  once the thread is stopped or torn down (node_worker.cc LoopIdleTime), and 0 until the first call
 *  that finds it online, which pool creation makes. Checked by test/runtime/worker-death.test.ts. */
function threadStopped(worker: Worker): boolean {
  return worker.performance.eventLoopUtilization().idle === -1;
}
