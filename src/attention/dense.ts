// Dense attention: every key, exactly — the reference every other backend is tested against. It
// keeps no state of its own: the rows are the sequence's K/V pages (./kv-store.ts), so rollback
// (speculative decoding, prefix reuse) is a truncation of the page list.

import type { Ptr } from '../kernels/types.js';
import type { ThreadPool } from '../runtime/pool.js';
import type { KVStore } from './kv-store.js';
import type { LayerAttention } from './types.js';

export class DenseAttention implements LayerAttention {
  readonly bytesPerToken: number;

  constructor(readonly kv: KVStore, private readonly pool: ThreadPool) {
    this.bytesPerToken = 2 * kv.rowBytes;
  }

  store(k: Ptr, v: Ptr, p0: number, n: number): void { this.kv.store(k, v, p0, n); }

  attend(q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number): void {
    this.kv.attendDense(this.pool, q, qPos, out, n, length);
  }

  denseStore(): KVStore { return this.kv; }

  truncate(_n: number): void { /* rows are indexed by position: nothing to forget */ }
  reset(_n: number): void { /* no state beyond the rows */ }
}
