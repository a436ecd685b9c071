// Measures the fraction of keys each decode step touches, per backend, by wrapping the backend the
// model is loaded with: every layer's LayerAttention is passed through (with the phase it was asked
// for), and after each decode attend (one token, not a prompt token) the keys that layer read are
// counted:
//   magicpig   the keys it sampled (its `lastSampled`, mean over query heads) + its dense part
//              (sinks, and everything past the hashed range: window and generated tokens)
//   topk, quest, streaming, oracle-sampling   the keys the layer reports reading (`lastTouched`,
//              src/attention/selective.ts: quest's page min/max rows included, oracle sampling's
//              distinct draws)
//   dense layers (DenseAttention), dense                                  every key
// Two means: over decode steps × sparse layers (`fraction`), and over decode steps × every layer,
// a dense layer counting all its keys (`allLayersFraction`: what the whole model reads). The same
// decode attends are timed (`attendMicros`: the sum over layers of each layer's median call, so a
// one-off cost such as MagicPIG building its tables in its first decode step does not count): keys
// read say what a draft costs in memory, the time what it costs on this machine.

import type { AttentionBackend } from '../attention/create.js';
import { DenseAttention } from '../attention/dense.js';
import type { AttentionSpec } from '../attention/spec.js';
import type { LayerAttention } from '../attention/types.js';

export interface KeysStats {
  /** Mean over (decode step, sparse layer) of keys touched / keys in the context; NaN if none. */
  fraction: number;
  /** Mean over (decode step, layer) of the same, every layer counted (a dense one reads every key); NaN if no decode step. */
  allLayersFraction: number;
  /** Decode steps × sparse layers counted. */
  steps: number;
  /** Layers that ran fully dense. */
  denseLayers: number;
  /** Microseconds of one decode step's attention, every layer: the sum of each layer's median decode
   *  attend (wall clock, the backend's thread pool included); NaN if no decode step. */
  attendMicros: number;
}

interface MagicPigLike { lastSampled: number; p: { sinks: number }; tables: { hashedEnd: number } }
const isMagicPig = (a: unknown): a is MagicPigLike => typeof (a as MagicPigLike).lastSampled === 'number' && typeof (a as MagicPigLike).tables?.hashedEnd === 'number';

export class KeysMeter {
  private sum = 0;
  private count = 0;
  private allSum = 0;
  private allCount = 0;
  private dense = new Set<number>();
  private readonly micros = new Map<number, number[]>(); // layer → its decode attends' µs

  constructor(readonly spec: AttentionSpec) {}

  /** The backend to load the model with: `inner`'s layers, counted. */
  wrap(inner: AttentionBackend): AttentionBackend {
    return {
      slotBytes: (d) => inner.slotBytes(d),
      create: (arena, pool, d, kv) => {
        const layer = inner.create(arena, pool, d, kv);
        const observe = layer.observe?.bind(layer);                     // SnapKV learns from the target's prefill
        const isDense = layer instanceof DenseAttention;
        if (isDense) this.dense.add(d.layer);
        const meter = this;
        const wrapped: LayerAttention = {
          get bytesPerToken() { return layer.bytesPerToken; },
          store: (k, v, p0, n) => layer.store(k, v, p0, n),
          truncate: (n) => layer.truncate(n),
          ...(observe ? { observe } : {}),
          reset: (n) => layer.reset(n),
          attend(q, qPos, out, n, length, phase) {
            // what the backends answer sparsely: one token that is not a prompt token
            if (n !== 1 || phase === 'prefill') { layer.attend(q, qPos, out, n, length, phase); return; }
            const t0 = performance.now();
            layer.attend(q, qPos, out, n, length, phase);
            meter.time(d.layer, (performance.now() - t0) * 1000);
            meter.record(layer, length, isDense);
          },
        };
        return wrapped;
      },
    };
  }

  private record(layer: LayerAttention, length: number, isDense: boolean): void {
    if (isDense) { this.allSum += 1; this.allCount++; return; }
    let keys: number;
    const reported = (layer as { lastTouched?: unknown }).lastTouched;
    if (typeof reported === 'number') keys = reported;
    else if (isMagicPig(layer)) {
      const sinks = Math.min(layer.p.sinks, length), end = layer.tables.hashedEnd;
      keys = layer.lastSampled + (end > 0 ? sinks + Math.max(0, length - Math.max(end, sinks)) : length);
    } else throw new Error(`keys meter: the ${this.spec.kind} layer reports no keys touched`);
    this.sum += keys / length;
    this.count++;
    this.allSum += keys / length;
    this.allCount++;
  }

  private time(layer: number, us: number): void {
    let list = this.micros.get(layer);
    if (!list) this.micros.set(layer, list = []);
    list.push(us);
  }

  stats(): KeysStats {
    let attendMicros = this.micros.size > 0 ? 0 : NaN;
    for (const list of this.micros.values()) {
      const sorted = [...list].sort((a, b) => a - b), m = sorted.length >> 1;
      attendMicros += sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
    }
    return {
      fraction: this.count > 0 ? this.sum / this.count : NaN,
      allLayersFraction: this.allCount > 0 ? this.allSum / this.allCount : NaN,
      steps: this.count, denseLayers: this.dense.size, attendMicros,
    };
  }

  reset(): void { this.sum = 0; this.count = 0; this.allSum = 0; this.allCount = 0; this.micros.clear(); }
}
