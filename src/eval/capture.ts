// Recording the post-RoPE queries, keys and values of a real forward pass: an attention backend
// that is the dense backend plus a copy of what the model hands it. Keys and values are kept for
// every position of the chosen layers; queries only for positions ≥ `queryFrom` (the "decode"
// queries the operator-level measurement evaluates), so a long prompt costs O(N·kvDim) memory.

import type { AttentionBackend } from '../attention/create.js';
import { DenseAttention } from '../attention/dense.js';
import type { LayerAttention } from '../attention/types.js';

export interface CapturedLayer {
  layer: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Positions stored. */
  length: number;
  k: Float32Array;        // (capacity, Hkv·D) post-RoPE keys by position
  v: Float32Array;        // (capacity, Hkv·D)
  q: Float32Array;        // (capacity − queryFrom, H·D) post-RoPE queries of positions queryFrom …
  queryFrom: number;
}

export class QkvRecorder {
  readonly layers = new Map<number, CapturedLayer>();

  /** `layers`: which layers to record (undefined: all); queries of positions ≥ queryFrom. */
  constructor(private readonly wanted: ReadonlySet<number> | undefined, private readonly queryFrom: number) {}

  backend(): AttentionBackend {
    return {
      slotBytes: () => 0,
      create: (arena, pool, d, kv) => {
        const dense = new DenseAttention(kv, pool);
        if (this.wanted && !this.wanted.has(d.layer)) return dense;
        const kvDim = d.kvHeads * d.headDim, qDim = d.heads * d.headDim, from = Math.min(this.queryFrom, d.capacity);
        const rec: CapturedLayer = {
          layer: d.layer, heads: d.heads, kvHeads: d.kvHeads, headDim: d.headDim, length: 0, queryFrom: from,
          k: new Float32Array(d.capacity * kvDim), v: new Float32Array(d.capacity * kvDim), q: new Float32Array((d.capacity - from) * qDim),
        };
        this.layers.set(d.layer, rec);
        const layer: LayerAttention = {
          bytesPerToken: dense.bytesPerToken,
          store(k, v, p0, n) {
            dense.store(k, v, p0, n);
            rec.k.set(arena.f32(k, n * kvDim), p0 * kvDim);
            rec.v.set(arena.f32(v, n * kvDim), p0 * kvDim);
            rec.length = Math.max(rec.length, p0 + n);
          },
          attend(q, qPos, out, n, length) {
            dense.attend(q, qPos, out, n, length);
            const pos = arena.i32(qPos, n), rows = arena.f32(q, n * qDim);
            for (let i = 0; i < n; i++) {
              if (pos[i] >= from) rec.q.set(rows.subarray(i * qDim, (i + 1) * qDim), (pos[i] - from) * qDim);
            }
          },
          truncate(n) { dense.truncate(n); rec.length = Math.min(rec.length, n); },
          reset(n) { dense.reset(n); rec.length = Math.min(rec.length, n); },
        };
        return layer;
      },
    };
  }
}
