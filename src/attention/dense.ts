// Dense attention: every key, exactly. K and V are stored by absolute position in two preallocated
// buffers of the layer's arena, so rollback (speculative decoding, prefix reuse) is free: rows past
// the cache length are simply overwritten later.

import type { CacheDType, Ptr } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { LayerAttention } from './types.js';

export interface DenseDims { heads: number; kvHeads: number; headDim: number; capacity: number; dtype: CacheDType }

export function denseCacheBytes(d: DenseDims): number {
  return 2 * d.capacity * d.kvHeads * d.headDim * (d.dtype === 'f16' ? 2 : 4);
}

export class DenseAttention implements LayerAttention {
  readonly bytesPerToken: number;
  private readonly k: Ptr;          // (capacity, Hkv, D) in dtype
  private readonly v: Ptr;          // (capacity, Hkv, D) in dtype
  private readonly rowBytes: number;
  private readonly kvDim: number;

  constructor(private readonly arena: Arena, private readonly pool: ThreadPool, private readonly d: DenseDims) {
    this.kvDim = d.kvHeads * d.headDim;
    this.rowBytes = this.kvDim * (d.dtype === 'f16' ? 2 : 4);
    this.k = arena.alloc(d.capacity * this.rowBytes);
    this.v = arena.alloc(d.capacity * this.rowBytes);
    this.bytesPerToken = 2 * this.rowBytes;
  }

  store(k: Ptr, v: Ptr, p0: number, n: number): void {
    if (p0 + n > this.d.capacity) {
      throw new RangeError(`DenseAttention.store: positions ${p0}..${p0 + n - 1} exceed the KV cache capacity of ${this.d.capacity} tokens`);
    }
    const kern = this.arena.kernels;
    kern.storeRows(this.d.dtype, k, this.k + p0 * this.rowBytes, n * this.kvDim);
    kern.storeRows(this.d.dtype, v, this.v + p0 * this.rowBytes, n * this.kvDim);
  }

  attend(q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number): void {
    const d = this.d;
    this.pool.attention(this.arena, q, qPos, this.k, this.v, out, d.dtype, n, length, d.heads, d.kvHeads, d.headDim, 1 / Math.sqrt(d.headDim));
  }

  truncate(_n: number): void { /* rows are indexed by position: nothing to free */ }
}
