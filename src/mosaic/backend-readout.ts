// A Memory Mosaic's contextual memory read through one of Tessera's attention backends
// (src/attention/: dense, topk, quest, streaming, oracle-sampling, magicpig). The read-out
// y_t = Σ_{s<t} softmax_s(k_t·k_s) v_s is a kernel-weighted average over (key, value) pairs, which is
// what every backend answers for a query; so a backend can read the mosaic's memory unchanged:
//   - the mosaic's key is also its query; backends score q·k/√D, so the query passed is √hs · k_t;
//   - rows s ≤ t−1 only: the query at t attends with qPos = t−1 over `length` = t stored rows;
//   - a row is stored when its value completes (v_s needs x_{s+1}), i.e. row t−1 at step t, one
//     step after its key: the stored rows are exactly the ones the read-out may see.
// One layer's backend state (its K/V pages, hash tables, staging rows) lives in an arena of its own,
// registered with the pool the backend kernels run on.
// Shape legend: H heads (each head is its own KV head), hs head size, d = H·hs.

import type { AttentionBackend } from '../attention/create.js';
import { singleSequenceKV, singleSequenceKVBytes } from '../attention/kv-store.js';
import type { AttentionPhase, LayerAttention } from '../attention/types.js';
import type { Ptr } from '../kernels/types.js';
import { Arena, planArena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';

/** How a mosaic reads its contextual memory when not with its own exact kernel call. */
export interface MosaicAttention {
  backend: AttentionBackend;
  /** The pool the backend's kernels run on (its kernel kind must match the model's). */
  pool: ThreadPool;
}

export class BackendReadout {
  private readonly arena: Arena;
  private readonly att: LayerAttention;
  private readonly q: Ptr; private readonly k: Ptr; private readonly v: Ptr; private readonly out: Ptr; private readonly pos: Ptr;
  private readonly d: number;
  private readonly qScale: number;

  constructor(a: MosaicAttention, layer: number, layers: number, H: number, hs: number, capacity: number) {
    const dims = { layer, layers, heads: H, kvHeads: H, headDim: hs, capacity, dtype: 'f32' as const };
    this.d = H * hs;
    this.qScale = Math.sqrt(hs);
    const rows = [4 * this.d, 4 * this.d, 4 * this.d, 4 * this.d, 64];
    this.arena = Arena.create(singleSequenceKVBytes(dims) + planArena([a.backend.slotBytes(dims), ...rows]) + 4096,
      { kernels: a.pool.kernelKind, label: `memory mosaic layer ${layer} contextual memory` });
    a.pool.register(this.arena);
    this.att = a.backend.create(this.arena, a.pool, dims, singleSequenceKV(this.arena, dims));
    [this.q, this.k, this.v, this.out, this.pos] = rows.map((b) => this.arena.alloc(b));
  }

  /** Stores the completed row s: key k_s and value v_s (d each). */
  store(s: number, key: Float32Array, value: Float32Array): void {
    this.arena.f32(this.k, this.d).set(key);
    this.arena.f32(this.v, this.d).set(value);
    this.att.store(this.k, this.v, s, 1);
  }

  /** y (d) = the read-out of key k_t over the t stored rows s < t (zeros at t = 0). */
  read(t: number, key: Float32Array, y: Float32Array, phase: AttentionPhase): void {
    if (t === 0) { y.fill(0); return; }
    const q = this.arena.f32(this.q, this.d);
    for (let j = 0; j < this.d; j++) q[j] = key[j] * this.qScale;
    this.arena.i32(this.pos, 1)[0] = t - 1;
    this.att.attend(this.q, this.pos, this.out, 1, t, phase);
    y.set(this.arena.f32(this.out, this.d));
  }

  /** Forgets rows ≥ n (the cache was cut back). */
  truncate(n: number): void { this.att.truncate(n); }

  /** A new sequence starts (nothing stored). */
  reset(): void { this.att.reset(0); }
}
