// Training tensors: f32, row-major, contiguous, stored in a TrainMemory region so the wasm kernels
// can work on them by pointer. `data` is a Float32Array view of the same bytes. The gradient is
// allocated lazily (on first accumulation) in the same region as the tensor, zero-filled.
// A 'step' tensor (activation) is valid until the memory's next resetStep(); a 'persistent' one
// (parameter, optimizer state) for the whole run.

import type { Ptr } from '../../kernels/types.js';
import type { TrainMemory } from '../memory.js';

export type Region = 'persistent' | 'step';

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`numel: shape [${shape.join(', ')}] has a dimension that is not a non-negative integer`);
    n *= d;
  }
  return n;
}

export function shapeStr(shape: readonly number[]): string { return `[${shape.join(', ')}]`; }

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly ptr: Ptr;
  readonly data: Float32Array;
  readonly region: Region;
  readonly mem: TrainMemory;
  /** Step generation the tensor was made in (stale once the memory moves on). */
  readonly generation: number;
  requiresGrad: boolean;
  /** Parameter name (Hugging Face style for models) or a debugging label. */
  name: string;
  private gradView: Float32Array | null = null;
  private gradAt: Ptr = 0;

  constructor(mem: TrainMemory, shape: readonly number[], region: Region, ptr: Ptr, requiresGrad: boolean, name = '') {
    this.mem = mem;
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    this.region = region;
    this.ptr = ptr;
    this.data = mem.f32(ptr, this.size);
    this.requiresGrad = requiresGrad;
    this.generation = mem.stepGeneration;
    this.name = name;
  }

  /** A new tensor in `region` (persistent memory is zero-filled; step memory only when `zero`). */
  static alloc(mem: TrainMemory, shape: readonly number[], region: Region, opts: { requiresGrad?: boolean; zero?: boolean; name?: string } = {}): Tensor {
    const bytes = numel(shape) * 4;
    const ptr = region === 'persistent' ? mem.allocPersistent(bytes) : mem.allocStep(bytes, opts.zero ?? false);
    return new Tensor(mem, shape, region, ptr, opts.requiresGrad ?? false, opts.name ?? '');
  }

  get ndim(): number { return this.shape.length; }
  /** Size of the last dimension. */
  get lastDim(): number { return this.shape[this.shape.length - 1] ?? 1; }

  /** The gradient, or null while nothing has been accumulated into it. */
  get grad(): Float32Array | null { return this.gradView; }

  /** Pointer of the gradient (allocating it, zeroed, if needed). */
  get gradPtr(): Ptr { this.ensureGrad(); return this.gradAt; }

  /** The gradient, allocated zeroed in the tensor's region on first use. */
  ensureGrad(): Float32Array {
    if (this.gradView === null) {
      const bytes = this.size * 4;
      this.gradAt = this.region === 'persistent' ? this.mem.allocPersistent(bytes) : this.mem.allocStep(bytes, true);
      this.gradView = this.mem.f32(this.gradAt, this.size);
    }
    return this.gradView;
  }

  /** Zeroes the gradient (keeps its memory). */
  zeroGrad(): void { this.gradView?.fill(0); }

  /** Throws if this step tensor outlived its step (its bytes may now belong to another tensor). */
  checkLive(fn: string): void {
    if (this.region === 'step' && this.generation !== this.mem.stepGeneration) {
      throw new Error(`${fn}: tensor ${this.name || shapeStr(this.shape)} belongs to an earlier step (its memory was released by resetStep)`);
    }
  }

  /** A JS copy of the data (for tests, logging). */
  toArray(): Float32Array { return Float32Array.from(this.data); }
}
