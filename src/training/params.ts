// Named trainable parameters of a model, in creation order (the order of checkpoints and of the
// optimizer state). Each parameter is a persistent tensor with requiresGrad; its gradient is
// allocated on first use. Initialisers draw from a stream derived from (seed, name), so a parameter's
// initial value does not depend on which other parameters exist.

import type { TrainMemory } from './memory.js';
import { Rng } from './rng.js';
import { Tensor, shapeStr } from './autograd/tensor.js';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'constant'; value: number }
  | { kind: 'normal'; std: number; mean?: number }
  | { kind: 'uniform'; low: number; high: number };

export class Params {
  readonly mem: TrainMemory;
  readonly seed: number;
  private readonly byName = new Map<string, Tensor>();

  constructor(mem: TrainMemory, seed: number) {
    this.mem = mem;
    this.seed = seed;
  }

  /** A new parameter `name` of `shape`, initialised by `init`. */
  create(name: string, shape: readonly number[], init: Init): Tensor {
    if (this.byName.has(name)) throw new Error(`Params.create: a parameter named ${JSON.stringify(name)} already exists`);
    const t = Tensor.alloc(this.mem, shape, 'persistent', { requiresGrad: true, name });
    fillInit(t.data, init, Rng.derive(this.seed, name));
    this.byName.set(name, t);
    return t;
  }

  get(name: string): Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`Params.get: no parameter named ${JSON.stringify(name)}`);
    return t;
  }

  has(name: string): boolean { return this.byName.has(name); }
  /** Parameters in creation order. */
  list(): Tensor[] { return [...this.byName.values()]; }
  names(): string[] { return [...this.byName.keys()]; }
  /** Total number of scalars. */
  count(): number { let n = 0; for (const t of this.byName.values()) n += t.size; return n; }
  zeroGrad(): void { for (const t of this.byName.values()) t.zeroGrad(); }

  /** Overwrites every parameter from `values` (name → data); all names must match exactly. */
  load(values: Map<string, Float32Array>): void {
    for (const [name, t] of this.byName) {
      const v = values.get(name);
      if (!v) throw new Error(`Params.load: missing parameter ${JSON.stringify(name)}`);
      if (v.length !== t.size) throw new Error(`Params.load: ${name} has ${v.length} values, expected ${t.size} for shape ${shapeStr(t.shape)}`);
      t.data.set(v);
    }
    for (const name of values.keys()) if (!this.byName.has(name)) throw new Error(`Params.load: unexpected parameter ${JSON.stringify(name)}`);
  }
}

export function fillInit(out: Float32Array, init: Init, rng: Rng): void {
  switch (init.kind) {
    case 'zeros': out.fill(0); return;
    case 'ones': out.fill(1); return;
    case 'constant': out.fill(init.value); return;
    case 'normal': { const m = init.mean ?? 0; for (let i = 0; i < out.length; i++) out[i] = m + init.std * rng.normal(); return; }
    case 'uniform': for (let i = 0; i < out.length; i++) out[i] = init.low + (init.high - init.low) * rng.next(); return;
    default: { const never: never = init; throw new Error(`fillInit: unknown init ${JSON.stringify(never)}`); }
  }
}
