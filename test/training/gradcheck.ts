// Finite-difference gradient checking for training ops. Each check builds the op on the engine (f32,
// real kernels), and an independent float64 plain-TypeScript forward of the same math; it asserts
//   forward:  max|y − y_ref| ≤ fwdTol · (1 + max|y_ref|)
//   gradient: max|g − g_fd| ≤ gradTol · (1 + max|g_fd|)  per input,
// where L = Σ r ⊙ y for a fixed random r and g_fd is the central difference of the f64 forward
// (step h = 1e-6: f64 truncation error ~h² and rounding ~1e-16/h are both far below f32 noise).

import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Tensor } from '../../src/training/autograd/tensor.js';
import { mul, sum } from '../../src/training/autograd/ops-basic.js';
import { Rng } from '../../src/training/rng.js';

export interface CheckInput { shape: number[]; values?: ArrayLike<number>; grad?: boolean; scale?: number }

export interface CheckOptions {
  name: string;
  inputs: CheckInput[];
  build: (tape: Tape, xs: Tensor[]) => Tensor;
  ref: (xs: Float64Array[]) => ArrayLike<number>;
  kernels?: 'wasm' | 'reference';
  seed?: number;
  fwdTol?: number;
  gradTol?: number;
  mem?: TrainMemory;
}

let shared: { wasm?: TrainMemory; reference?: TrainMemory } = {};

export function testMemory(kind: 'wasm' | 'reference' = 'wasm'): TrainMemory {
  shared[kind] ??= new TrainMemory({ bytes: 64 << 20, kernels: kind, label: `test-${kind}` });
  return shared[kind]!;
}

function maxAbs(a: ArrayLike<number>): number { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i])); return m; }

export function gradcheck(o: CheckOptions): void {
  const mem = o.mem ?? testMemory(o.kernels);
  const rng = new Rng(o.seed ?? 1);
  const fwdTol = o.fwdTol ?? 1e-5, gradTol = o.gradTol ?? 2e-3;
  const values = o.inputs.map((inp) => {
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const v = new Float64Array(n);
    for (let i = 0; i < n; i++) v[i] = inp.values ? inp.values[i] : Math.fround(rng.normal() * (inp.scale ?? 1));
    return v;
  });
  const tape = new Tape(mem);
  try {
    const xs = o.inputs.map((inp, i) => {
      const t = Tensor.alloc(mem, inp.shape, 'step', { requiresGrad: inp.grad ?? true });
      t.data.set(values[i]);
      return t;
    });
    const y = o.build(tape, xs);
    const yRef = o.ref(values);
    assert.equal(y.size, yRef.length, `${o.name}: output size`);
    let fe = 0;
    for (let i = 0; i < y.size; i++) fe = Math.max(fe, Math.abs(y.data[i] - yRef[i]));
    assert.ok(fe <= fwdTol * (1 + maxAbs(yRef)), `${o.name}: forward differs by ${fe} (max |ref| ${maxAbs(yRef)})`);
    const r = new Float64Array(y.size);
    for (let i = 0; i < r.length; i++) r[i] = Math.fround(rng.normal());
    const rT = tape.constant(y.shape, r);
    tape.backward(sum(tape, mul(tape, y, rT)));
    const L = (vals: Float64Array[]) => { const out = o.ref(vals); let s = 0; for (let i = 0; i < out.length; i++) s += out[i] * r[i]; return s; };
    o.inputs.forEach((inp, k) => {
      if (inp.grad === false) return;
      const g = xs[k].grad;
      assert.ok(g, `${o.name}: input ${k} got no gradient`);
      const fd = new Float64Array(values[k].length);
      const h = 1e-6;
      for (let i = 0; i < fd.length; i++) {
        const x0 = values[k][i];
        values[k][i] = x0 + h; const lp = L(values);
        values[k][i] = x0 - h; const lm = L(values);
        values[k][i] = x0;
        fd[i] = (lp - lm) / (2 * h);
      }
      let ge = 0;
      for (let i = 0; i < fd.length; i++) ge = Math.max(ge, Math.abs(g[i] - fd[i]));
      assert.ok(ge <= gradTol * (1 + maxAbs(fd)), `${o.name}: gradient of input ${k} differs by ${ge} (max |fd| ${maxAbs(fd)})`);
    });
  } finally {
    tape.reset();
  }
}
