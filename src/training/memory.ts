// Training memory: one Arena (one shared WebAssembly memory, so the wasm kernels and the thread pool
// run on it) split into two regions that grow towards each other inside a single block:
//   persistent  bottom-up: parameters, their gradients, AdamW moments — lives for the whole run;
//   step        top-down:  activations, temporaries, activation gradients — released by resetStep()
//                          after every optimizer step (or every eval forward).
// Both regions can be allocated in any order; they only collide when the block is full.
// The arena's own bump allocator never frees, which is why one big block is taken from it once.

import { Arena } from '../runtime/arena.js';
import type { Ptr } from '../kernels/types.js';
import type { KernelKind } from '../runtime/kernel-factory.js';

const ALIGN = 64;

/** The most one TrainMemory may hold: one WebAssembly memory addresses 4 GiB; the rest is headroom
 *  for the arena's own allocations. */
export const MAX_TRAIN_MEMORY_BYTES = 3.5 * 2 ** 30;

export interface TrainMemoryOptions {
  /** Usable bytes for both regions together. */
  bytes: number;
  /** 'wasm' (default) or 'reference' kernels bound to the arena. */
  kernels?: KernelKind;
  label?: string;
}

export class TrainMemory {
  readonly arena: Arena;
  private readonly base: Ptr;
  private readonly end: Ptr;
  private low: Ptr;
  private high: Ptr;
  /** Incremented by resetStep(); step tensors remember the generation they were made in. */
  stepGeneration = 0;

  constructor(opts: TrainMemoryOptions) {
    const bytes = Math.ceil(opts.bytes / ALIGN) * ALIGN;
    this.arena = Arena.create(bytes + ALIGN, { kernels: opts.kernels ?? 'wasm', label: opts.label ?? 'training' });
    this.base = this.arena.alloc(bytes, ALIGN);
    this.end = this.base + bytes;
    this.low = this.base;
    this.high = this.end;
  }

  get capacity(): number { return this.end - this.base; }
  get persistentBytes(): number { return this.low - this.base; }
  get stepBytes(): number { return this.end - this.high; }

  /** Bytes that lasts the whole run (zero-filled). */
  allocPersistent(bytes: number): Ptr {
    const ptr = this.low;
    const next = ptr + Math.ceil(bytes / ALIGN) * ALIGN;
    if (next > this.high) this.full('persistent', bytes);
    this.low = next;
    this.arena.u8(ptr, bytes).fill(0);
    return ptr;
  }

  /** Bytes released by the next resetStep(); zero-filled only when `zero` (outputs that every op
   *  overwrites need no clearing). */
  allocStep(bytes: number, zero = false): Ptr {
    const ptr = Math.floor((this.high - bytes) / ALIGN) * ALIGN;
    if (ptr < this.low) this.full('step', bytes);
    this.high = ptr;
    if (zero) this.arena.u8(ptr, bytes).fill(0);
    return ptr;
  }

  /** Releases every step allocation; step tensors made before this call must not be used again. */
  resetStep(): void {
    this.high = this.end;
    this.stepGeneration++;
  }

  f32(ptr: Ptr, length: number): Float32Array { return this.arena.f32(ptr, length); }

  private full(region: string, bytes: number): never {
    throw new Error(`TrainMemory "${this.arena.label}" is full: cannot allocate ${bytes} ${region} bytes ` +
      `(persistent ${this.persistentBytes}, step ${this.stepBytes} of ${this.capacity} bytes); ` +
      `create it with a larger \`bytes\` or use a smaller batch`);
  }
}
