// The job protocol between the pool (main thread) and its workers: one SharedArrayBuffer holds the
// control words, the per-thread ranges, the job's numeric arguments and the first error's message.
// A job is: write OP/ARENA/ARGS/RANGES, set PENDING = workers, bump SEQ, notify. Each worker runs
// its range, then decrements PENDING (the last one notifies). Atomics order everything: the writes
// before `Atomics.add(SEQ)` are visible to a worker that observed the new SEQ, and a worker's writes
// before its `Atomics.sub(PENDING)` are visible to the main thread once it reads PENDING == 0.
// Death: a worker also stores the job's SEQ in its DONE word before decrementing PENDING, and its
// process 'exit' handler marks it EXITED; so after a death the main thread can tell exactly which
// workers still owe the current job and whether every one of them is dead (pool.ts waitForWorkers).

import { MAX_ARGS } from './pool-op.js';

export const MAX_THREADS = 256;

// Int32 word indices.
export const SEQ = 0;          // job counter; workers wait for it to change
export const PENDING = 1;      // workers that have not finished the current job
export const OP = 2;           // Op code of the current job
export const ARENA = 3;        // arena id of the current job
export const ERROR = 4;        // 0, or 1 + thread index of the first worker that failed
export const ERROR_LEN = 5;    // bytes of the UTF-8 error message
export const DEAD = 6;         // 0, or 1 + thread index of the first worker whose exit handler ran
// A claimed job (JobSplit.chunks): its units [CLAIM_START, CLAIM_END) cut into chunks of CLAIM_SIZE
// units; thread t owns chunks [lo, hi), packed as lo << 16 | hi in CLAIMS + t, and takes them from
// the front, then steals from the back of the thread with most left (runOwnPart). CLAIM_SIZE 0: the
// job runs the fixed RANGES instead. CLAIM_THREADS: the threads that own chunks.
export const CLAIM_START = 7;
export const CLAIM_END = 8;
export const CLAIM_SIZE = 9;
export const CLAIM_THREADS = 10;
/** The most chunks one claimed job may have (a chunk index fits in 16 bits). */
export const MAX_CLAIM_CHUNKS = 0xffff;
export const RANGES = 16;      // [r0, r1) of thread t at RANGES + 2t, RANGES + 2t + 1
export const DONE = RANGES + 2 * MAX_THREADS;   // DONE + t: SEQ of the last job thread t finished
export const EXITED = DONE + MAX_THREADS;       // EXITED + t: 1 once thread t's exit handler ran
export const EXIT_CODE = EXITED + MAX_THREADS;  // EXIT_CODE + t: the code it exited with
export const CLAIMS = EXIT_CODE + MAX_THREADS;  // CLAIMS + t: thread t's chunks left, lo << 16 | hi
const INT_WORDS = CLAIMS + MAX_THREADS;

const ARGS_OFFSET = INT_WORDS * 4;    // Float64 job arguments (pointers and sizes are exact in f64)
const MESSAGE_OFFSET = ARGS_OFFSET + MAX_ARGS * 8;
const MESSAGE_BYTES = 4096;
export const CONTROL_BYTES = MESSAGE_OFFSET + MESSAGE_BYTES;

// Control ops of the pool itself; the ids of registered ops (pool-op.ts) start at FIRST_POOL_OP and
// are numbered by each pool in the order it first posts them (LoadOps tells the workers).
export const Op = { Stop: 1, Register: 2, Unregister: 3, LoadOps: 4 } as const;
export const FIRST_POOL_OP = 16;

export const CONTROL_OP_NAMES: Record<number, string> = {
  [Op.Stop]: 'stop', [Op.Register]: 'register', [Op.Unregister]: 'unregister', [Op.LoadOps]: 'loadOps',
};

/** Posted on a worker's port before a Register job: the arena's memory. */
export interface RegisterMessage { kind: 'arena'; id: number; memory: WebAssembly.Memory }
/** Posted before a LoadOps job: ops the worker imports (module URL, family and op name) and the
 *  ids this pool posts them under. */
export interface LoadOpsMessage { kind: 'ops'; load: number; ops: Array<{ id: number; url: string; family: string; name: string }> }
export type PortMessage = RegisterMessage | LoadOpsMessage;

export interface Control {
  sab: SharedArrayBuffer;
  ints: Int32Array;
  args: Float64Array;
  message: Uint8Array;
}

export function controlViews(sab: SharedArrayBuffer): Control {
  return {
    sab,
    ints: new Int32Array(sab, 0, INT_WORDS),
    args: new Float64Array(sab, ARGS_OFFSET, MAX_ARGS),
    message: new Uint8Array(sab, MESSAGE_OFFSET, MESSAGE_BYTES),
  };
}

export function createControl(): Control {
  return controlViews(new SharedArrayBuffer(CONTROL_BYTES));
}

/** Splits [0, total) into `parts` contiguous ranges whose boundaries are multiples of `unit`
 *  (except `total` itself), lengths within one unit of each other; leading ranges may be empty.
 *  The extra units go to the last parts, which also hold the partial unit, so part 0 (the main
 *  thread, which also dispatches) is never the longest. Writes [r0, r1) of part t to out[2t], out[2t + 1]. */
export function splitRange(total: number, parts: number, unit: number, out: Int32Array, offset = 0): void {
  const units = Math.ceil(total / unit);
  const base = Math.floor(units / parts), extra = units % parts;
  let start = 0;
  for (let t = 0; t < parts; t++) {
    const end = Math.min(total, start + (base + (t >= parts - extra ? 1 : 0)) * unit);
    out[offset + 2 * t] = start;
    out[offset + 2 * t + 1] = end;
    start = end;
  }
}

/** splitRange for units of unequal cost (`cost(u)` ≥ 0, e.g. the keys of a key chunk, where a call's
 *  last chunk may hold a few keys and the others thousands): each cut goes to the `unit`-aligned
 *  boundary whose cost prefix lies nearest to an equal share, so a slice of few heavy units and one
 *  of many light ones take about the same time. Contiguous, ordered, possibly empty ranges as
 *  splitRange writes them; with every cost equal it falls back to splitRange. */
export function splitRangeByCost(total: number, parts: number, unit: number, cost: (u: number) => number, out: Int32Array, offset = 0): void {
  const groups = Math.ceil(total / unit);
  const prefix = new Float64Array(groups + 1);
  let uniform = true;
  const c0 = total > 0 ? cost(0) : 0;
  for (let g = 0; g < groups; g++) {
    let c = 0;
    for (let u = g * unit, e = Math.min(total, u + unit); u < e; u++) {
      const cu = cost(u);
      if (cu !== c0) uniform = false;
      c += cu;
    }
    prefix[g + 1] = prefix[g]! + c;
  }
  const all = prefix[groups]!;
  if (uniform || !(all > 0)) { splitRange(total, parts, unit, out, offset); return; }
  let b = 0; // the previous cut, in groups
  for (let t = 0; t < parts; t++) {
    out[offset + 2 * t] = Math.min(total, b * unit);
    if (t === parts - 1) b = groups;
    else {
      const target = (all * (t + 1)) / parts;
      let e = b;
      while (e < groups && prefix[e + 1]! <= target) e++;
      // e: the last boundary at or below the target; e + 1 overshoots it: take the nearer
      if (e < groups && prefix[e + 1]! - target < target - prefix[e]!) e++;
      b = e;
    }
    out[offset + 2 * t + 1] = Math.min(total, b * unit);
  }
}

/** Records the first failure of a job (later ones are dropped: one message is enough to act on). */
export function writeError(c: Control, thread: number, err: unknown): void {
  if (Atomics.compareExchange(c.ints, ERROR, 0, thread + 1) !== 0) return;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const { written } = new TextEncoder().encodeInto(text, c.message);
  Atomics.store(c.ints, ERROR_LEN, written);
}

/** The failure recorded for the finished job, or undefined. */
export function readError(c: Control): { thread: number; message: string } | undefined {
  const who = Atomics.load(c.ints, ERROR);
  if (who === 0) return undefined;
  // TextDecoder refuses views of shared memory: copy the bytes out first.
  const bytes = c.message.slice(0, Atomics.load(c.ints, ERROR_LEN));
  return { thread: who - 1, message: new TextDecoder().decode(bytes) };
}

/** Runs this thread's part of the current job: its fixed range [RANGES[2t], RANGES[2t + 1]), or, in a
 *  claimed job, its own chunks from the front (one pass over its units in order, as a fixed range
 *  reads them: a one-token matmul's weights stay one sequential stream), then chunks stolen from the
 *  back of whichever thread has most left, so a thread that runs slower (a core shared with another
 *  machine's work, a late start) ends at most one chunk after the others. */
export function runOwnPart<K>(ints: Int32Array, thread: number, op: { slice(kernels: K, args: Float64Array, r0: number, r1: number): void },
                              kernels: K, args: Float64Array): void {
  const size = Atomics.load(ints, CLAIM_SIZE);
  if (size === 0) {
    const r0 = ints[RANGES + 2 * thread]!, r1 = ints[RANGES + 2 * thread + 1]!;
    if (r0 < r1) op.slice(kernels, args, r0, r1);
    return;
  }
  const start = Atomics.load(ints, CLAIM_START), end = Atomics.load(ints, CLAIM_END);
  const threads = Atomics.load(ints, CLAIM_THREADS);
  for (;;) { // own chunks, front first
    const w = Atomics.load(ints, CLAIMS + thread), lo = w >>> 16, hi = w & 0xffff;
    if (lo >= hi) break;
    if (Atomics.compareExchange(ints, CLAIMS + thread, w, ((lo + 1) << 16) | hi) === w) {
      op.slice(kernels, args, start + lo * size, Math.min(end, start + (lo + 1) * size));
    }
  }
  for (;;) { // then the others', back first
    let victim = -1, most = 0, vw = 0;
    for (let v = 0; v < threads; v++) {
      if (v === thread) continue;
      const w = Atomics.load(ints, CLAIMS + v), left = (w & 0xffff) - (w >>> 16);
      if (left > most) { most = left; victim = v; vw = w; }
    }
    if (victim < 0) return;
    const lo = vw >>> 16, hi = vw & 0xffff;
    if (Atomics.compareExchange(ints, CLAIMS + victim, vw, (lo << 16) | (hi - 1)) === vw) {
      op.slice(kernels, args, start + (hi - 1) * size, Math.min(end, start + hi * size));
    }
  }
}

/** writeClaims's scratch (one per thread that posts jobs: a decode step posts dozens). */
const claimCut = new Int32Array(2 * MAX_THREADS);

/** Writes the chunks' owners for a claimed job of `chunks` chunks: contiguous runs as splitRange
 *  cuts them (the main thread's never the longest), packed as runOwnPart reads them. */
export function writeClaims(ints: Int32Array, chunks: number, threads: number): void {
  if (!(Number.isInteger(chunks) && chunks >= 1 && chunks <= MAX_CLAIM_CHUNKS)) {
    throw new RangeError(`claimed job: ${chunks} chunks; at most ${MAX_CLAIM_CHUNKS}`);
  }
  splitRange(chunks, threads, 1, claimCut);
  for (let t = 0; t < threads; t++) Atomics.store(ints, CLAIMS + t, (claimCut[2 * t]! << 16) | claimCut[2 * t + 1]!);
  Atomics.store(ints, CLAIM_THREADS, threads);
}
