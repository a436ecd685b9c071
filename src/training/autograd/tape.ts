// The tape: reverse-mode automatic differentiation by recording, for every op whose inputs need a
// gradient, a closure that adds the op's input gradients from its output gradient. backward(loss)
// seeds d loss = 1 and runs the closures newest-first. Gradients ACCUMULATE (+=) into `.grad`, so
// gradient accumulation over micro-batches is just several forward/backward passes before a step.
// Outputs of ops are step tensors; reset() (after the optimizer step) clears the records and releases
// the step region of the memory.

import type { Kernels } from '../../kernels/types.js';
import type { ThreadPool } from '../../runtime/pool.js';
import type { TrainMemory } from '../memory.js';
import { Tensor, shapeStr } from './tensor.js';

interface Record { out: Tensor; backward: () => void }

export class Tape {
  readonly mem: TrainMemory;
  /** Thread pool (registered with mem.arena) used by the heavy ops; undefined = main thread only. */
  readonly pool: ThreadPool | undefined;
  /** false = inference mode: ops record nothing and their outputs need no gradient. */
  gradEnabled = true;
  /** false = eval mode for ops like dropout. */
  training = true;
  private records: Record[] = [];

  constructor(mem: TrainMemory, pool?: ThreadPool) {
    this.mem = mem;
    this.pool = pool;
    if (pool) pool.register(mem.arena);
  }

  get kernels(): Kernels { return this.mem.arena.kernels; }
  get length(): number { return this.records.length; }

  /** A step tensor for an op output. */
  output(shape: readonly number[], requiresGrad: boolean, zero = false): Tensor {
    return Tensor.alloc(this.mem, shape, 'step', { requiresGrad: requiresGrad && this.gradEnabled, zero });
  }

  /** A step tensor holding `values` (inputs, constants; no gradient). */
  constant(shape: readonly number[], values?: ArrayLike<number>): Tensor {
    const t = Tensor.alloc(this.mem, shape, 'step', { zero: values === undefined });
    if (values) {
      if (values.length !== t.size) throw new Error(`Tape.constant: ${values.length} values for shape ${shapeStr(shape)} (${t.size})`);
      t.data.set(values);
    }
    return t;
  }

  /** Whether an op on `inputs` must record its backward. */
  needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
    if (!this.gradEnabled) return false;
    for (const t of inputs) if (t && t.requiresGrad) return true;
    return false;
  }

  /** Records `backward` for `out` (call only when out.requiresGrad). The closure reads out.grad and
   *  adds into the inputs' ensureGrad() for the inputs with requiresGrad. */
  record(out: Tensor, backward: () => void): void {
    if (!out.requiresGrad) return;
    this.records.push({ out, backward });
  }

  /** d loss / d every recorded tensor, accumulated into `.grad`. `loss` must be a one-element tensor
   *  produced on this tape. The records are consumed: a second backward needs a new forward. */
  backward(loss: Tensor, seed = 1): void {
    if (loss.size !== 1) throw new Error(`Tape.backward: loss must have one element, got shape ${shapeStr(loss.shape)}`);
    if (!loss.requiresGrad) throw new Error('Tape.backward: the loss does not depend on any tensor that requires a gradient');
    loss.checkLive('Tape.backward');
    loss.ensureGrad()[0] += seed;
    for (let i = this.records.length - 1; i >= 0; i--) {
      const r = this.records[i];
      if (r.out.grad !== null) r.backward();   // an output no loss path reached contributes nothing
    }
    this.records = [];
  }

  /** Forgets the records and releases every step tensor (activations, their gradients). */
  reset(): void {
    this.records = [];
    this.mem.resetStep();
  }

  /** Runs `fn` with recording off (evaluation), restoring the previous mode. */
  noGrad<T>(fn: () => T): T {
    const prev = this.gradEnabled;
    this.gradEnabled = false;
    try { return fn(); } finally { this.gradEnabled = prev; }
  }
}
