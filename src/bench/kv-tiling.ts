// Cheap long KV caches for the long-context benchmark: a backend wrapper that keeps the K/V rows a
// real prefill stored, and a filler that repeats them (RoPE phases included) up to the context
// length through the backend's own store(), so every backend sees a cache it could have built itself.

import type { AttentionBackend, LayerAttentionDims } from '../attention/create.js';
import type { LayerAttention } from '../attention/types.js';
import type { Arena } from '../runtime/arena.js';
import { planArena } from '../runtime/arena.js';

export interface Recorded { att: LayerAttention; arena: Arena; d: LayerAttentionDims; k: number; v: number; rowsK: Float32Array; rowsV: Float32Array }

/** Wraps a backend so the first `prefill` positions' K/V rows are kept (for tiling) and the layers
 *  are reachable through `out`. */
export function recording(inner: AttentionBackend, prefill: number, out: Recorded[]): AttentionBackend {
  const scratch = (d: LayerAttentionDims) => prefill * d.kvHeads * d.headDim * 4;
  return {
    slotBytes: (d) => inner.slotBytes(d) + planArena([scratch(d), scratch(d)]) + 128,
    create: (arena, pool, d, kv) => {
      const att = inner.create(arena, pool, d, kv), kvDim = d.kvHeads * d.headDim;
      const r: Recorded = { att, arena, d, k: arena.alloc(scratch(d)), v: arena.alloc(scratch(d)),
        rowsK: new Float32Array(prefill * kvDim), rowsV: new Float32Array(prefill * kvDim) };     // (prefill, Hkv·D)
      out.push(r);
      return {
        store(k, v, p0, n) {
          const m = Math.min(n, prefill - p0);
          if (m > 0) { r.rowsK.set(arena.f32(k, m * kvDim), p0 * kvDim); r.rowsV.set(arena.f32(v, m * kvDim), p0 * kvDim); }
          att.store(k, v, p0, n);
        },
        attend: (q, qPos, o, n, length, phase) => att.attend(q, qPos, o, n, length, phase),
        // passed through, so a wrapped dense layer still joins the batched attention job and a draft still observes
        denseStore: att.denseStore?.bind(att),
        observe: att.observe?.bind(att),
        truncate: (n) => att.truncate(n),
        reset: (n) => att.reset(n),
        get bytesPerToken() { return att.bytesPerToken; },
      };
    },
  };
}

/** Fills positions [from, to) of every layer with the recorded prefill rows repeated. */
export function tile(layers: Recorded[], prefill: number, from: number, to: number): void {
  for (const r of layers) {
    const kvDim = r.d.kvHeads * r.d.headDim;
    r.arena.f32(r.k, prefill * kvDim).set(r.rowsK);
    r.arena.f32(r.v, prefill * kvDim).set(r.rowsV);
    for (let p = from; p < to;) {
      const src = p % prefill, n = Math.min(prefill - src, to - p);
      r.att.store(r.k + src * kvDim * 4, r.v + src * kvDim * 4, p, n);
      p += n;
    }
  }
}
