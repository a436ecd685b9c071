// Finite-difference gradient checks for ops and models on the training tape. The loss is
// L = Σ y ⊙ R for a fixed random R (summed in float64), so every output element's gradient path is
// exercised. Inputs are persistent tensors: tape.reset() between evaluations keeps them and their
// analytic gradients. Central differences in f32 need a loose tolerance; `check` reports the worst
// element so a failure says where.

import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Tensor } from '../../src/training/autograd/tensor.js';
import { Rng } from '../../src/training/rng.js';

export function makeTape(kernels: 'wasm' | 'reference' = 'wasm', bytes = 64 << 20): Tape {
  return new Tape(new TrainMemory({ bytes, kernels }));
}

/** A persistent tensor that needs a gradient, filled from `values` or N(0, std). */
export function leaf(tape: Tape, shape: number[], rng: Rng, std = 1, values?: ArrayLike<number>): Tensor {
  const t = Tensor.alloc(tape.mem, shape, 'persistent', { requiresGrad: true });
  if (values) t.data.set(values);
  else for (let i = 0; i < t.size; i++) t.data[i] = std * rng.normal();
  return t;
}

export interface GradCheckOptions {
  eps?: number;
  rtol?: number;
  /** Absolute tolerance as a fraction of the largest analytic gradient of the tensor. */
  atolFrac?: number;
  /** Elements checked per input (spread evenly; all when the tensor is smaller). */
  samples?: number;
}

/** Checks d(Σ build()·R)/d input against central differences for every input. */
export function gradCheck(tape: Tape, build: (tape: Tape) => Tensor, inputs: Tensor[], opts: GradCheckOptions = {}): void {
  const eps = opts.eps ?? 1e-3, rtol = opts.rtol ?? 3e-2, atolFrac = opts.atolFrac ?? 5e-3, samples = opts.samples ?? 24;
  const rng = new Rng(99);
  tape.reset();
  for (const t of inputs) t.zeroGrad();
  const y0 = build(tape);
  const R = Float64Array.from({ length: y0.size }, () => rng.normal());
  const weights = tape.constant(y0.shape, R);
  // L = Σ y·R as an op so backward seeds dL/dy = R.
  const loss = tape.output([1], true);
  let l0 = 0;
  for (let i = 0; i < y0.size; i++) l0 += y0.data[i] * R[i];
  loss.data[0] = l0;
  tape.record(loss, () => {
    const g = loss.grad![0], gy = y0.ensureGrad();
    for (let i = 0; i < y0.size; i++) gy[i] += g * weights.data[i];
  });
  tape.backward(loss);
  const analytic = inputs.map((t) => Float64Array.from(t.ensureGrad()));
  const evalLoss = (): number => {
    tape.reset();
    return tape.noGrad(() => {
      const y = build(tape);
      let s = 0;
      for (let i = 0; i < y.size; i++) s += y.data[i] * R[i];
      return s;
    });
  };
  inputs.forEach((t, which) => {
    const g = analytic[which];
    const maxG = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const step = Math.max(1, Math.floor(t.size / samples));
    let worst = { i: -1, fd: 0, an: 0, excess: -Infinity };
    for (let i = 0; i < t.size; i += step) {
      const orig = t.data[i];
      t.data[i] = orig + eps; const lp = evalLoss();
      t.data[i] = orig - eps; const lm = evalLoss();
      t.data[i] = orig;
      const fd = (lp - lm) / (2 * eps);
      const excess = Math.abs(fd - g[i]) - (atolFrac * maxG + rtol * Math.max(Math.abs(fd), Math.abs(g[i])));
      if (excess > worst.excess) worst = { i, fd, an: g[i], excess };
    }
    assert.ok(worst.excess <= 0, `input ${which} ${t.name} [${t.shape.join(', ')}]: element ${worst.i} analytic ${worst.an} vs finite difference ${worst.fd} (max |g| ${maxG})`);
    assert.ok(maxG > 0, `input ${which} has an all-zero gradient: the check would be vacuous`);
  });
  tape.reset();
}
