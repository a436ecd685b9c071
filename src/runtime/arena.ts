// Arenas: one shared WebAssembly memory each, sized once, filled by a bump allocator.
// See docs/ARCHITECTURE.md, "Memory beyond 4 GiB": a 32-bit memory addresses at most 4 GiB, so a
// model is split into several arenas (embeddings/head, then one per layer), each with its own
// kernel instance. Every memory is `shared` so worker threads see the same bytes (src/runtime/pool.ts),
// and has initial = maximum pages, so its buffer never moves and typed-array views stay valid.
//
// Virtual memory (measured on Node 20 / V8 11.3, x86-64 Linux): every WebAssembly.Memory reserves
// about 10 GiB of *address space* whatever its size (V8's guard region, which lets compiled code
// skip bounds checks), but commits physical pages only when they are first touched. So 3 × 1.5 GiB
// arenas show VmSize ≈ 32 GB and RSS ≈ 40 MB until written; 2000 one-page memories reserve ~20 TB of
// address space and still work. Consequence: a `ulimit -v` below ~10 GiB × arenas makes
// `new WebAssembly.Memory` fail with "could not allocate memory" — run with an unlimited virtual
// memory limit. RAM actually used is what the model writes (weights, KV rows in use, scratch).

import type { Kernels, Ptr } from '../kernels/types.js';
import { createKernels, type KernelKind } from './kernel-factory.js';

export const PAGE_BYTES = 65536;
/** The first page of every arena belongs to the kernel module itself (its statics and data
 *  segments, written again by every instance); allocations start above it. */
export const RESERVED_BYTES = PAGE_BYTES;
/** Most pages a 32-bit memory can have (4 GiB). */
export const MAX_PAGES = 65536;
/** Largest capacity an arena can offer: 4 GiB minus the reserved page. */
export const MAX_ARENA_BYTES = MAX_PAGES * PAGE_BYTES - RESERVED_BYTES;

export interface ArenaOptions {
  /** Which implementation of the kernel contract the main thread binds to this memory. */
  kernels: KernelKind;
  /** Name used in error messages ("layer 3", "embeddings"). */
  label?: string;
}

let nextArenaId = 1;

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

function checkAlign(fn: string, align: number): void {
  if (!Number.isInteger(align) || align < 1 || align > PAGE_BYTES || (align & (align - 1)) !== 0) {
    throw new Error(`${fn}: alignment must be a power of two between 1 and ${PAGE_BYTES}, got ${align}`);
  }
}

function checkBytes(fn: string, bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new Error(`${fn}: size must be a non-negative integer number of bytes, got ${bytes}`);
  }
}

/** Bytes an arena needs to hold buffers of `sizes` bytes allocated in this order with `align`
 *  (the same arithmetic as Arena.alloc), so a loader can size an arena exactly before creating it. */
export function planArena(sizes: readonly number[], align = 64): number {
  checkAlign('planArena', align);
  let top = RESERVED_BYTES;
  for (const bytes of sizes) {
    checkBytes('planArena', bytes);
    top = alignUp(top, align) + bytes;
  }
  return top - RESERVED_BYTES;
}

export class Arena {
  /** Unique within the process; the thread pool names arenas by it. */
  readonly id: number;
  readonly label: string;
  readonly memory: WebAssembly.Memory;
  /** Kernels bound to this memory, for the main thread (workers bind their own). */
  readonly kernels: Kernels;
  readonly kernelKind: KernelKind;
  /** Usable bytes (excludes the reserved first page). */
  readonly capacity: number;
  private readonly buffer: SharedArrayBuffer;
  private top = RESERVED_BYTES;

  private constructor(memory: WebAssembly.Memory, kernelKind: KernelKind, label: string) {
    this.id = nextArenaId++;
    this.label = label;
    this.memory = memory;
    this.kernelKind = kernelKind;
    this.buffer = memory.buffer as unknown as SharedArrayBuffer;
    this.capacity = this.buffer.byteLength - RESERVED_BYTES;
    this.kernels = createKernels(kernelKind, memory);
  }

  /** A shared memory of exactly the pages needed for `capacityBytes` usable bytes (≤ MAX_ARENA_BYTES). */
  static create(capacityBytes: number, opts: ArenaOptions): Arena {
    const label = opts.label ?? `arena ${nextArenaId}`;
    checkBytes(`Arena.create("${label}")`, capacityBytes);
    if (capacityBytes > MAX_ARENA_BYTES) {
      throw new Error(`Arena.create("${label}"): ${capacityBytes} bytes exceed the ${MAX_ARENA_BYTES} bytes ` +
        `one 32-bit memory can offer; split this data over more arenas`);
    }
    const pages = Math.ceil((RESERVED_BYTES + capacityBytes) / PAGE_BYTES);
    let memory: WebAssembly.Memory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    } catch (err) {
      throw new Error(`Arena.create("${label}"): cannot create a shared memory of ${pages} pages ` +
        `(${pages * PAGE_BYTES} bytes): ${(err as Error).message}. Each memory reserves ~10 GiB of ` +
        `address space; check \`ulimit -v\` and free RAM`, { cause: err });
    }
    return new Arena(memory, opts.kernels, label);
  }

  /** Bytes allocated so far (including alignment padding). */
  get used(): number { return this.top - RESERVED_BYTES; }
  get remaining(): number { return this.capacity - this.used; }

  /** Reserves `bytes` at an offset that is a multiple of `align`. Memory is zero on creation and
   *  never reused, so a fresh allocation reads as zeros. */
  alloc(bytes: number, align = 64): Ptr {
    checkAlign(`Arena("${this.label}").alloc`, align);
    checkBytes(`Arena("${this.label}").alloc`, bytes);
    const ptr = alignUp(this.top, align);
    if (ptr + bytes > RESERVED_BYTES + this.capacity) {
      throw new Error(`Arena "${this.label}" is full: cannot allocate ${bytes} bytes (align ${align}); ` +
        `${this.remaining} of ${this.capacity} bytes remain. Size it with planArena() over every buffer it holds`);
    }
    this.top = ptr + bytes;
    return ptr;
  }

  /** (length) f32 view at ptr (ptr % 4 == 0). */
  f32(ptr: Ptr, length: number): Float32Array { return new Float32Array(this.buffer, ptr, length); }
  /** (length) i32 view at ptr (ptr % 4 == 0). */
  i32(ptr: Ptr, length: number): Int32Array { return new Int32Array(this.buffer, ptr, length); }
  /** (length) u16 view at ptr (ptr % 2 == 0), e.g. f16/bf16 bits. */
  u16(ptr: Ptr, length: number): Uint16Array { return new Uint16Array(this.buffer, ptr, length); }
  /** (length) byte view at ptr. */
  u8(ptr: Ptr, length: number): Uint8Array { return new Uint8Array(this.buffer, ptr, length); }
}
