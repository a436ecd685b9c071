// The K/V rows every sparse backend keeps: like DenseAttention, two preallocated buffers indexed by
// absolute position (f32 or f16), so truncation is free and a gathered kernel can read any row.
// Also the small pieces the sparse backends share: dense-layer sets, parameter checks, f16 decoding.

import type { CacheDType, Ptr } from '../kernels/types.js';
import { f16ToF32 } from '../kernels/reference.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { LayerAttentionDims } from './create.js';

export class KVStore {
  readonly k: Ptr;          // (capacity, Hkv, D) in dtype
  readonly v: Ptr;          // (capacity, Hkv, D) in dtype
  readonly rowBytes: number;
  readonly f16: boolean;
  private readonly kvDim: number;

  constructor(private readonly arena: Arena, private readonly d: LayerAttentionDims) {
    this.kvDim = d.kvHeads * d.headDim;
    this.f16 = d.dtype === 'f16';
    this.rowBytes = this.kvDim * (this.f16 ? 2 : 4);
    this.k = arena.alloc(d.capacity * this.rowBytes);
    this.v = arena.alloc(d.capacity * this.rowBytes);
  }

  static bytes(d: LayerAttentionDims): number[] {
    const row = d.kvHeads * d.headDim * (d.dtype === 'f16' ? 2 : 4);
    return [d.capacity * row, d.capacity * row];
  }

  store(k: Ptr, v: Ptr, p0: number, n: number): void {
    if (p0 + n > this.d.capacity) {
      throw new RangeError(`attention store: positions ${p0}..${p0 + n - 1} exceed the KV cache capacity of ${this.d.capacity} tokens`);
    }
    const kern = this.arena.kernels;
    kern.storeRows(this.d.dtype, k, this.k + p0 * this.rowBytes, n * this.kvDim);
    kern.storeRows(this.d.dtype, v, this.v + p0 * this.rowBytes, n * this.kvDim);
  }

  /** Exact causal attention over every stored row (prefill, dense layers). */
  attendDense(pool: ThreadPool, q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number): void {
    const d = this.d;
    pool.attention(this.arena, q, qPos, this.k, this.v, out, d.dtype, n, length, d.heads, d.kvHeads, d.headDim, 1 / Math.sqrt(d.headDim));
  }

  /** Key row of token s, KV head g, as f32 (into dst). */
  readKey(s: number, g: number, dst: Float32Array): Float32Array {
    const D = this.d.headDim, p = this.k + s * this.rowBytes + g * D * (this.f16 ? 2 : 4);
    if (this.f16) { const h = this.arena.u16(p, D); for (let i = 0; i < D; i++) dst[i] = F16[h[i]!]!; }
    else dst.set(this.arena.f32(p, D));
    return dst;
  }
}

/** f16 bits → f32 value for all 65536 patterns. */
const F16 = (() => { const t = new Float32Array(65536); for (let i = 0; i < 65536; i++) t[i] = f16ToF32(i); return t; })();

/** Dense layers from a parameter: a number, "0+16", or "none"; `fallback` when absent. */
export function denseLayers(value: number | string | undefined, layers: number, fallback: number[]): Set<number> {
  if (value === undefined) return new Set(fallback.filter((l) => l < layers));
  if (value === 'none') return new Set();
  const list = typeof value === 'number' ? [value] : value.split('+').map(Number);
  for (const l of list) {
    if (!Number.isInteger(l) || l < 0) throw new RangeError(`attention: dense layers must be layer indices like dense=0+16 (or dense=none), got "${value}"`);
  }
  return new Set(list);
}

/** Rejects parameters a backend does not know (a typo would otherwise silently use the default). */
export function checkParams(kind: string, params: Readonly<Record<string, number | string>>, known: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!known.includes(key)) throw new RangeError(`attention: ${kind} has no parameter "${key}"; known: ${known.join(', ')}`);
  }
}

/** A numeric parameter within [min, max] (integers only when `integer`). */
export function numParam(kind: string, params: Readonly<Record<string, number | string>>, key: string, fallback: number,
                         min: number, max: number, integer = true): number {
  const v = params[key] ?? fallback;
  if (typeof v !== 'number' || !(v >= min && v <= max) || (integer && !Number.isInteger(v))) {
    throw new RangeError(`attention: ${kind} parameter ${key} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${v}`);
  }
  return v;
}
