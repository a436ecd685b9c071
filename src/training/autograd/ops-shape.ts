// Ops that move data: embedding lookup, permute/transpose, concat and split along an axis.
// Axis arithmetic: a tensor is viewed as (outer, axisLen, inner) around the chosen axis.

import type { Tape } from './tape.js';
import { Tensor, numel, shapeStr } from './tensor.js';

/** y (…shape, d) = W[ids] for W (V, d); `shape` (default [ids.length]) gives the leading dims.
 *  Backward scatters rows into dW, so a weight shared with the output head (tied embeddings)
 *  gets both gradients. */
export function embedding(tape: Tape, w: Tensor, ids: ArrayLike<number>, shape?: readonly number[]): Tensor {
  if (w.ndim !== 2) throw new Error(`embedding: weight must be (vocab, dim), got ${shapeStr(w.shape)}`);
  const [V, d] = w.shape;
  const lead = shape ?? [ids.length];
  if (numel(lead) !== ids.length) throw new Error(`embedding: shape ${shapeStr(lead)} does not hold ${ids.length} ids`);
  for (let i = 0; i < ids.length; i++) {
    const t = ids[i];
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`embedding: id ${t} at index ${i} is outside [0, ${V})`);
  }
  const y = tape.output([...lead, d], tape.needsGrad(w));                   // (…, d)
  for (let i = 0; i < ids.length; i++) y.data.set(w.data.subarray(ids[i] * d, ids[i] * d + d), i * d);
  tape.record(y, () => {
    const g = y.grad!, gw = w.ensureGrad();
    for (let i = 0; i < ids.length; i++) {
      const o = ids[i] * d;
      for (let j = 0; j < d; j++) gw[o + j] += g[i * d + j];
    }
  });
  return y;
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** y = x with axes reordered: y.shape[i] = x.shape[perm[i]]. */
export function permute(tape: Tape, x: Tensor, perm: readonly number[]): Tensor {
  const nd = x.ndim;
  if (perm.length !== nd || [...perm].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`permute: ${JSON.stringify(perm)} is not a permutation of the ${nd} axes of ${shapeStr(x.shape)}`);
  }
  const yShape = perm.map((p) => x.shape[p]);
  const y = tape.output(yShape, tape.needsGrad(x));
  const xs = strides(x.shape);
  const src = new Int32Array(x.size);                  // src[i] = x index of y element i
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < y.size; i++) {
    let o = 0;
    for (let a = 0; a < nd; a++) o += idx[a] * xs[perm[a]];
    src[i] = o;
    for (let a = nd - 1; a >= 0; a--) { if (++idx[a] < yShape[a]) break; idx[a] = 0; }
  }
  const X = x.data, Y = y.data;
  for (let i = 0; i < y.size; i++) Y[i] = X[src[i]];
  tape.record(y, () => {
    const g = y.grad!, gx = x.ensureGrad();
    for (let i = 0; i < y.size; i++) gx[src[i]] += g[i];
  });
  return y;
}

/** Swaps axes a and b. */
export function transpose(tape: Tape, x: Tensor, a: number, b: number): Tensor {
  const perm = x.shape.map((_, i) => i);
  const na = a < 0 ? a + x.ndim : a, nb = b < 0 ? b + x.ndim : b;
  perm[na] = nb; perm[nb] = na;
  return permute(tape, x, perm);
}

function around(shape: readonly number[], axis: number): [number, number] {
  return [numel(shape.slice(0, axis)), numel(shape.slice(axis + 1))];
}

/** Joins tensors along `axis` (other dims equal). */
export function concat(tape: Tape, xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: no tensors');
  const nd = xs[0].ndim, ax = axis < 0 ? axis + nd : axis;
  for (const t of xs) {
    if (t.ndim !== nd || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat: ${xs.map((u) => shapeStr(u.shape)).join(', ')} differ outside axis ${ax}`);
    }
  }
  const total = xs.reduce((s, t) => s + t.shape[ax], 0);
  const yShape = [...xs[0].shape]; yShape[ax] = total;
  const [outer, inner] = around(yShape, ax);
  const y = tape.output(yShape, tape.needsGrad(...xs));
  let off = 0;
  for (const t of xs) {
    const len = t.shape[ax] * inner;
    for (let o = 0; o < outer; o++) y.data.set(t.data.subarray(o * len, o * len + len), o * total * inner + off);
    off += len;
  }
  tape.record(y, () => {
    const g = y.grad!;
    let off2 = 0;
    for (const t of xs) {
      const len = t.shape[ax] * inner;
      if (t.requiresGrad) {
        const gt = t.ensureGrad();
        for (let o = 0; o < outer; o++) for (let j = 0; j < len; j++) gt[o * len + j] += g[o * total * inner + off2 + j];
      }
      off2 += len;
    }
  });
  return y;
}

/** Splits `x` along `axis` into pieces of the given sizes (summing to the axis length). */
export function split(tape: Tape, x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const ax = axis < 0 ? axis + x.ndim : axis;
  const total = x.shape[ax];
  if (sizes.reduce((s, v) => s + v, 0) !== total) throw new Error(`split: sizes ${JSON.stringify(sizes)} do not sum to ${total} (axis ${ax} of ${shapeStr(x.shape)})`);
  const [outer, inner] = around(x.shape, ax);
  const outs: Tensor[] = [];
  let off = 0;
  for (const s of sizes) {
    const shape = [...x.shape]; shape[ax] = s;
    const y = tape.output(shape, tape.needsGrad(x));
    const len = s * inner, start = off;
    for (let o = 0; o < outer; o++) y.data.set(x.data.subarray(o * total * inner + start, o * total * inner + start + len), o * len);
    tape.record(y, () => {
      const g = y.grad!, gx = x.ensureGrad();
      for (let o = 0; o < outer; o++) for (let j = 0; j < len; j++) gx[o * total * inner + start + j] += g[o * len + j];
    });
    outs.push(y);
    off += len;
  }
  return outs;
}
