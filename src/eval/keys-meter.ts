// Measures the fraction of keys each decode step touches, per backend, by wrapping the backend the
// model is loaded with: every layer's LayerAttention is passed through, and after each decode
// attend (n = 1) the keys that layer read are counted.
//   magicpig   the keys it sampled (its `lastSampled`, mean over query heads) + its dense part
//              (sinks, and everything past the hashed range: window and generated tokens)
//   topk, quest, streaming, oracle-sampling   the count their selection rule gives for this length
//              and these parameters (src/attention/selective.ts), unless the layer reports
//              `lastTouched` itself
//   dense layers (DenseAttention), dense                                  every key
// The fraction is averaged over decode steps and over the layers that are not dense.

import type { AttentionBackend } from '../attention/create.js';
import { DenseAttention } from '../attention/dense.js';
import type { AttentionSpec } from '../attention/spec.js';
import type { LayerAttention } from '../attention/types.js';

export interface KeysStats {
  /** Mean over (decode step, sparse layer) of keys touched / keys in the context; NaN if none. */
  fraction: number;
  /** Decode steps × sparse layers counted. */
  steps: number;
  /** Layers that ran fully dense. */
  denseLayers: number;
}

const num = (p: AttentionSpec['params'], k: string, fallback: number) => (typeof p[k] === 'number' ? (p[k] as number) : fallback);

/** Keys a selective backend reads for one query head at context `length` (its rule, in closed form). */
export function ruleKeys(spec: AttentionSpec, length: number): number {
  const p = spec.params;
  switch (spec.kind) {
    case 'dense': return length;
    case 'streaming': {
      const sinks = Math.min(num(p, 'sinks', 4), length);
      return sinks + Math.max(0, length - Math.max(sinks, length - num(p, 'window', 256)));
    }
    case 'topk': {
      const sinks = Math.min(num(p, 'sinks', 4), length), window = num(p, 'window', 64);
      const hi = Math.max(sinks, length - window), mid = hi - sinks;
      const want = Math.min(mid, p.k !== undefined ? num(p, 'k', 0) : Math.ceil(num(p, 'fraction', 0.02) * length));
      return sinks + (length - hi) + want;
    }
    case 'quest': {
      const pages = Math.ceil(length / 16), keep = Math.min(pages, Math.max(1, Math.ceil((num(p, 'budget', 0.04) * length) / 16)));
      return Math.min(length, keep * 16);
    }
    case 'oracle-sampling':
      return Math.min(length, p.samples !== undefined ? num(p, 'samples', 1) : Math.max(1, Math.ceil(num(p, 'budget', 0.02) * length)));
    case 'magicpig': return NaN; // measured, see below
  }
}

interface MagicPigLike { lastSampled: number; p: { sinks: number }; tables: { hashedEnd: number } }
const isMagicPig = (a: unknown): a is MagicPigLike => typeof (a as MagicPigLike).lastSampled === 'number' && typeof (a as MagicPigLike).tables?.hashedEnd === 'number';

export class KeysMeter {
  private sum = 0;
  private count = 0;
  private dense = new Set<number>();

  constructor(readonly spec: AttentionSpec) {}

  /** The backend to load the model with: `inner`'s layers, counted. */
  wrap(inner: AttentionBackend): AttentionBackend {
    return {
      slotBytes: (d) => inner.slotBytes(d),
      create: (arena, pool, d, kv) => {
        const layer = inner.create(arena, pool, d, kv);
        if (layer instanceof DenseAttention) { this.dense.add(d.layer); return layer; }
        const meter = this;
        const wrapped: LayerAttention = {
          get bytesPerToken() { return layer.bytesPerToken; },
          store: (k, v, p0, n) => layer.store(k, v, p0, n),
          truncate: (n) => layer.truncate(n),
          reset: (n) => layer.reset(n),
          attend(q, qPos, out, n, length) {
            layer.attend(q, qPos, out, n, length);
            if (n === 1) meter.record(layer, length);
          },
        };
        return wrapped;
      },
    };
  }

  private record(layer: LayerAttention, length: number): void {
    let keys: number;
    const reported = (layer as { lastTouched?: unknown }).lastTouched;
    if (typeof reported === 'number') keys = reported;
    else if (isMagicPig(layer)) {
      const sinks = Math.min(layer.p.sinks, length), end = layer.tables.hashedEnd;
      keys = layer.lastSampled + (end > 0 ? sinks + Math.max(0, length - Math.max(end, sinks)) : length);
    } else keys = ruleKeys(this.spec, length);
    this.sum += keys / length;
    this.count++;
  }

  stats(): KeysStats {
    return { fraction: this.count > 0 ? this.sum / this.count : NaN, steps: this.count, denseLayers: this.dense.size };
  }

  reset(): void { this.sum = 0; this.count = 0; }
}
