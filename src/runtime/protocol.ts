// The job protocol between the pool (main thread) and its workers: one SharedArrayBuffer holds the
// control words, the per-thread ranges, the job's numeric arguments and the first error's message.
// A job is: write OP/ARENA/ARGS/RANGES, set PENDING = workers, bump SEQ, notify. Each worker runs
// its range, then decrements PENDING (the last one notifies). Atomics order everything: the writes
// before `Atomics.add(SEQ)` are visible to a worker that observed the new SEQ, and a worker's writes
// before its `Atomics.sub(PENDING)` are visible to the main thread once it reads PENDING == 0.
// Death: a worker also stores the job's SEQ in its DONE word before decrementing PENDING, and its
// process 'exit' handler marks it EXITED; so after a death the main thread can tell exactly which
// workers still owe the current job and whether every one of them is dead (pool.ts waitForWorkers).

import type { CacheDType, Kernels, WeightDType } from '../kernels/types.js';
import type { SparseKernels } from '../attention/sparse-kernels.js';
import { attnBackwardUnits, attnForwardUnits, type TrainKernels } from '../training/train-kernels.js';

export const MAX_THREADS = 256;

// Int32 word indices.
export const SEQ = 0;          // job counter; workers wait for it to change
export const PENDING = 1;      // workers that have not finished the current job
export const OP = 2;           // Op code of the current job
export const ARENA = 3;        // arena id of the current job
export const ERROR = 4;        // 0, or 1 + thread index of the first worker that failed
export const ERROR_LEN = 5;    // bytes of the UTF-8 error message
export const DEAD = 6;         // 0, or 1 + thread index of the first worker whose exit handler ran
export const RANGES = 16;      // [r0, r1) of thread t at RANGES + 2t, RANGES + 2t + 1
export const DONE = RANGES + 2 * MAX_THREADS;   // DONE + t: SEQ of the last job thread t finished
export const EXITED = DONE + MAX_THREADS;       // EXITED + t: 1 once thread t's exit handler ran
export const EXIT_CODE = EXITED + MAX_THREADS;  // EXIT_CODE + t: the code it exited with
const INT_WORDS = EXIT_CODE + MAX_THREADS;

const ARGS_OFFSET = INT_WORDS * 4;    // Float64 job arguments (pointers and sizes are exact in f64)
export const MAX_ARGS = 16;
const MESSAGE_OFFSET = ARGS_OFFSET + MAX_ARGS * 8;
const MESSAGE_BYTES = 4096;
export const CONTROL_BYTES = MESSAGE_OFFSET + MESSAGE_BYTES;

// TestExit exists only for test/runtime/worker-death.test.ts: worker args[0] calls
// process.exit(args[1]) in the middle of the job. No public ThreadPool method posts it.
export const Op = {
  Stop: 1, Register: 2, Unregister: 3, Matmul: 4, Attention: 5, LshCodes: 6, MagicPig: 7, TrainAttnForward: 8, TrainAttnBackward: 9,
  TestExit: 100,
} as const;

export const OP_NAMES: Record<number, string> = {
  [Op.Stop]: 'stop', [Op.Register]: 'register', [Op.Unregister]: 'unregister',
  [Op.Matmul]: 'matmul', [Op.Attention]: 'attention', [Op.LshCodes]: 'lshCodes', [Op.MagicPig]: 'magicpig',
  [Op.TrainAttnForward]: 'trainAttnForward', [Op.TrainAttnBackward]: 'trainAttnBackward',
  [Op.TestExit]: 'testExit',
};

/** Ops whose kernels are the sparse-attention ones (src/attention/sparse-kernels.ts). */
export function isSparseOp(op: number): boolean {
  return op === Op.LshCodes || op === Op.MagicPig;
}

/** Ops whose kernels are the training ones (src/training/train-kernels.ts). */
export function isTrainOp(op: number): boolean {
  return op === Op.TrainAttnForward || op === Op.TrainAttnBackward;
}

// Dtypes travel as indices into these tables.
export const WEIGHT_DTYPES: readonly WeightDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'];
export const CACHE_DTYPES: readonly CacheDType[] = ['f32', 'f16'];

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

/** Runs this thread's share [r0, r1) of a compute job. The same function runs on every thread. */
export function runSlice(kernels: Kernels, op: number, a: Float64Array, r0: number, r1: number): void {
  if (r0 >= r1) return;
  switch (op) {
    case Op.Matmul:
      // a = [dtype, w, x, y, n, rows, cols]
      kernels.matmul(WEIGHT_DTYPES[a[0]]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, r0, r1);
      return;
    case Op.Attention:
      // a = [q, qPos, k, v, out, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift, state]
      kernels.attention(a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, CACHE_DTYPES[a[5]]!,
        a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!, r0, r1);
      return;
    default:
      throw new Error(`runSlice: unknown op ${op}`);
  }
}

/** runSlice for the sparse-attention ops (split over tokens for LshCodes, query heads for MagicPig). */
export function runSparseSlice(k: SparseKernels, op: number, a: Float64Array, r0: number, r1: number): void {
  if (r0 >= r1) return;
  switch (op) {
    case Op.LshCodes:
      // a = [x, f16, rowStride, mu, R, xs, D, K, L, codes, codeStride, norms, i0]
      k.lshCodes(a[0]!, a[1] !== 0, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, a[11]!, a[12]!, r0, r1);
      return;
    case Op.MagicPig:
      // a = [desc]
      k.magicpigDecode(a[0]!, r0, r1);
      return;
    default:
      throw new Error(`runSparseSlice: unknown op ${op}`);
  }
}

/** runSlice for the training attention ops: units are (sequence, query head) pairs for the forward,
 *  (sequence, KV group) pairs for the backward (train-kernels.ts attnForwardUnits/attnBackwardUnits). */
export function runTrainSlice(k: TrainKernels, op: number, a: Float64Array, r0: number, r1: number): void {
  if (r0 >= r1) return;
  switch (op) {
    case Op.TrainAttnForward: // a = [q, k, v, out, lse, B, T, H, Hkv, D, scale]
      attnForwardUnits(k, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[6]!, a[7]!, a[8]!, a[9]!, a[10]!, r0, r1);
      return;
    case Op.TrainAttnBackward: // a = [q, k, v, out, dout, lse, dq, dk, dv, B, T, H, Hkv, D, scale]
      attnBackwardUnits(k, a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!, a[10]!, a[11]!, a[12]!, a[13]!, a[14]!, r0, r1);
      return;
    default:
      throw new Error(`runTrainSlice: unknown op ${op}`);
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
