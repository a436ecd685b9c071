// Shared fixtures for the attention-backend tests: one layer's backend in its own arena, keys with
// real-model-like structure, and a float64 dense reference computed here.
import { Arena, planArena } from '../../src/runtime/arena.js';
import type { ThreadPool } from '../../src/runtime/pool.js';
import type { CacheDType } from '../../src/kernels/types.js';
import { attentionBackend, type LayerAttentionDims } from '../../src/attention/create.js';
import { parseAttentionSpec } from '../../src/attention/spec.js';
import { singleSequenceKV, singleSequenceKVBytes } from '../../src/attention/kv-store.js';
import type { LayerAttention } from '../../src/attention/types.js';
import { f16ToF32, f32ToF16 } from '../../src/kernels/reference.js';
import { gaussian, rng } from '../../src/attention/lsh-math.js';

export interface Layer {
  arena: Arena; att: LayerAttention; d: LayerAttentionDims;
  q: number; k: number; v: number; out: number; pos: number; chunk: number;
  /** Stored K and V (f32, as the cache holds them: rounded to f16 for an f16 cache). */
  keys: Float32Array[]; values: Float32Array[];
}

export function makeLayer(pool: ThreadPool, spec: string, dims: Partial<LayerAttentionDims> & { kernels?: 'wasm' | 'reference' }, chunk = 256): Layer {
  const d: LayerAttentionDims = { layer: 3, layers: 4, heads: 4, kvHeads: 2, headDim: 16, capacity: 1024, dtype: 'f32', ...dims };
  const backend = attentionBackend(parseAttentionSpec(spec));
  const kvDim = d.kvHeads * d.headDim, qDim = d.heads * d.headDim;
  const bytes = singleSequenceKVBytes(d) + planArena([backend.slotBytes(d), chunk * qDim * 4, chunk * kvDim * 4, chunk * kvDim * 4, chunk * qDim * 4, chunk * 4]) + 4096;
  const arena = Arena.create(bytes, { kernels: dims.kernels ?? pool.kernelKind, label: 'attention test' });
  pool.register(arena);
  const att = backend.create(arena, pool, d, singleSequenceKV(arena, d));
  return {
    arena, att, d, chunk, keys: [], values: [],
    q: arena.alloc(chunk * qDim * 4), k: arena.alloc(chunk * kvDim * 4), v: arena.alloc(chunk * kvDim * 4),
    out: arena.alloc(chunk * qDim * 4), pos: arena.alloc(chunk * 4),
  };
}

const roundTo = (dtype: CacheDType, x: number) => (dtype === 'f16' ? f16ToF32(f32ToF16(x)) : Math.fround(x));

/** Appends rows (each kvDim) to the layer as positions length … length+n−1. */
export function storeRows(L: Layer, krows: Float32Array[], vrows: Float32Array[]): void {
  const kvDim = L.d.kvHeads * L.d.headDim;
  for (let s = 0; s < krows.length; s += L.chunk) {
    const n = Math.min(L.chunk, krows.length - s), p0 = L.keys.length;
    for (let i = 0; i < n; i++) {
      L.arena.f32(L.k + i * kvDim * 4, kvDim).set(krows[s + i]!);
      L.arena.f32(L.v + i * kvDim * 4, kvDim).set(vrows[s + i]!);
      L.keys.push(krows[s + i]!.map((x) => roundTo(L.d.dtype, x)));
      L.values.push(vrows[s + i]!.map((x) => roundTo(L.d.dtype, x)));
    }
    L.att.store(L.k, L.v, p0, n);
  }
}

/** Decode step: out (H·D) for query q (H·D) at position length − 1 (the newest stored row). */
export function decode(L: Layer, q: Float32Array): Float32Array {
  const length = L.keys.length, qDim = L.d.heads * L.d.headDim;
  L.arena.f32(L.q, qDim).set(q);
  L.arena.i32(L.pos, 1)[0] = length - 1;
  L.att.attend(L.q, L.pos, L.out, 1, length);
  return L.arena.f32(L.out, qDim).slice();
}

/** float64 dense attention of q over the stored rows [0, length) (optionally only `ids`). */
export function denseRef(L: Layer, q: Float32Array, ids?: (h: number) => number[]): Float64Array {
  const { heads: H, kvHeads: G, headDim: D } = L.d, out = new Float64Array(H * D);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / G)), list = ids ? ids(h) : [...L.keys.keys()];
    const s = list.map((i) => { let a = 0; for (let d = 0; d < D; d++) a += q[h * D + d]! * L.keys[i]![g * D + d]!; return a / Math.sqrt(D); });
    const m = Math.max(...s);
    let sum = 0;
    list.forEach((i, j) => { const e = Math.exp(s[j]! - m); sum += e; for (let d = 0; d < D; d++) out[h * D + d] += e * L.values[i]![g * D + d]!; });
    for (let d = 0; d < D; d++) out[h * D + d] /= sum;
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function relError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i]! - ref[i]!) ** 2; den += ref[i]! ** 2; }
  return Math.sqrt(num / den);
}

/** Keys like a real model's: a large shared offset (so centering matters), a few clusters, noise;
 *  queries near some clusters. Returns n rows of kvDim. */
export function realisticKV(seed: number, n: number, kvHeads: number, D: number) {
  const g = gaussian(rng(seed));
  const kvDim = kvHeads * D;
  const offset = Float32Array.from({ length: kvDim }, () => 3 * g());
  const centers = Array.from({ length: 8 }, () => Float32Array.from({ length: kvDim }, () => 1.5 * g()));
  const keys: Float32Array[] = [], values: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const c = centers[Math.floor((i * 7 + seed) % 8)]!;
    keys.push(Float32Array.from({ length: kvDim }, (_, j) => offset[j]! + c[j]! + 0.7 * g()));
    values.push(Float32Array.from({ length: kvDim }, () => g()));
  }
  const query = (H: number) => Float32Array.from({ length: H * D }, (_, j) => {
    const h = Math.floor(j / D), c = centers[h % 8]!;
    return 1.2 * c[Math.floor(h / (H / kvHeads)) * D + (j % D)]! + 0.5 * g();
  });
  return { keys, values, query };
}
