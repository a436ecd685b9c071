// Parallel ops: what the thread pool runs. A kernel family (the dense kernels, MagicPIG's sparse
// kernels, the training kernels…) defines its ops in its own module, so the pool knows none of them
// and adding an op touches only that module. An op says how to bind the family's kernels to an
// arena's memory on a thread, how its arguments are laid out in the control block's f64 words, how
// its work splits into units, and the slice function that every thread runs over its [r0, r1).
//
// Workers are separate module instances: a worker learns an op by importing the module at the
// family's URL (`import.meta.url` of the module that called defineKernelFamily), whose top-level
// definitions then register the same family and ops in the worker's own registry. The pool asks a
// worker to do this the first time it posts one of that family's ops (pool.ts, worker.ts), so every
// op of a family must be defined at the top level of the module that defines the family.

import type { KernelKind } from './kernel-factory.js';

/** f64 argument words of one job in the control block (protocol.ts). */
export const MAX_ARGS = 16;

/** How a job splits: units [start, start + total), slices aligned to multiples of `unit` units,
 *  `work`, an estimate of the bytes it touches (jobs under the pool's minSplitBytes stay on the
 *  calling thread), and optionally each unit's cost. */
export interface JobSplit {
  start?: number;
  total: number;
  unit: number;
  work: number;
  /** The relative cost of unit u (0 ≤ u < total) when units differ in size: the slices then get
   *  equal shares of the cost rather than of the units (protocol.ts splitRangeByCost). */
  cost?: (u: number) => number;
  /** Claimed instead of fixed slices: the units cut into about this many chunks per thread (each a
   *  multiple of `unit`); each thread takes its own slice's chunks in order, then the others' last
   *  ones until none is left (protocol.ts runOwnPart), so a thread on a slower core does less. For
   *  jobs long enough that a chunk's call costs nothing next to its work, whose units write disjoint
   *  outputs (then any split gives the same bits); not with `cost`. */
  chunks?: number;
}

export interface PoolOpSpec<K, A extends readonly unknown[]> {
  /** Names of the f64 argument words, in order (at most MAX_ARGS): the layout that `prepare`
   *  writes and `slice` reads. */
  args: readonly string[];
  /** Checks the call's arguments (throwing a message that names the op), writes them into `args`
   *  (numbers only: pointers and sizes are exact in f64), and says how to split the job over
   *  `threads` threads. Runs on the calling thread only. */
  prepare(args: Float64Array, threads: number, ...call: A): JobSplit;
  /** Runs units [r0, r1) (r0 < r1) with this thread's kernels; the same function runs on every
   *  thread, so a split never changes the result bits when units write disjoint outputs. */
  slice(kernels: K, args: Float64Array, r0: number, r1: number): void;
  /** Runs on the calling thread once every slice is done (when there is one to do: say so from
   *  `args`), e.g. to combine the slices' partial results in a fixed order. */
  finish?(kernels: K, args: Float64Array): void;
}

export interface PoolOp<K, A extends readonly unknown[]> extends PoolOpSpec<K, A> {
  /** Name used in errors: `ThreadPool.<name>: …`. */
  readonly name: string;
  readonly family: KernelFamily<K>;
}

/** Binds a family's kernels to one memory on the current thread (`module`: the compiled kernel
 *  module, posted to workers so they do not compile it again; 'wasm' only). */
export type BindKernels<K> = (kind: KernelKind, memory: WebAssembly.Memory, module?: WebAssembly.Module) => K;

export class KernelFamily<K> {
  /** Ops in definition order (the same order in every thread). */
  readonly ops = new Map<string, PoolOp<K, never>>();

  /** Use defineKernelFamily. */
  constructor(readonly url: string, readonly name: string, readonly bind: BindKernels<K>) {}

  /** Defines an op of this family; call it at the top level of the family's module. */
  op<A extends readonly unknown[]>(name: string, spec: PoolOpSpec<K, A>): PoolOp<K, A> {
    if (this.ops.has(name)) throw new Error(`kernel family "${this.name}": op "${name}" is defined twice`);
    if (spec.args.length > MAX_ARGS) {
      throw new Error(`kernel family "${this.name}": op "${name}" has ${spec.args.length} arguments; the control block holds ${MAX_ARGS}`);
    }
    const op: PoolOp<K, A> = { ...spec, name, family: this };
    this.ops.set(name, op as unknown as PoolOp<K, never>);
    return op;
  }
}

const families = new Map<string, KernelFamily<unknown>>();

function familyKey(url: string, name: string): string { return `${url}#${name}`; }

/** Registers a kernel family defined in the module at `url` (pass `import.meta.url`). */
export function defineKernelFamily<K>(url: string, name: string, bind: BindKernels<K>): KernelFamily<K> {
  const key = familyKey(url, name);
  if (families.has(key)) throw new Error(`kernel family "${name}" is defined twice in ${url}`);
  const family = new KernelFamily(url, name, bind);
  families.set(key, family as KernelFamily<unknown>);
  return family;
}

/** The op `opName` of family `familyName`, once the module at `url` has been imported on this
 *  thread (the worker side of pool.ts's family loading). */
export async function importPoolOp(url: string, familyName: string, opName: string): Promise<PoolOp<unknown, never>> {
  await import(url);
  const family = families.get(familyKey(url, familyName));
  if (family === undefined) throw new Error(`importing ${url} defined no kernel family "${familyName}"`);
  const op = family.ops.get(opName);
  if (op === undefined) {
    throw new Error(`kernel family "${familyName}" (${url}) has no op "${opName}" after import; ` +
      'define every op at the top level of the module that defines its family');
  }
  return op;
}
