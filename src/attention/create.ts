// Builds one layer's attention backend from a spec. Each backend says how many arena bytes it needs
// for a given KV capacity (the loader sizes every layer arena before creating it) and then creates
// its per-layer state inside that arena.

import type { CacheDType } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import { DenseAttention, denseCacheBytes } from './dense.js';
import { magicpigBackend } from './magicpig.js';
import { selectiveBackend } from './selective.js';
import type { AttentionSpec } from './spec.js';
import type { LayerAttention } from './types.js';

export interface LayerAttentionDims {
  layer: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** KV capacity in tokens. */
  capacity: number;
  dtype: CacheDType;
}

export interface AttentionBackend {
  arenaBytes(d: LayerAttentionDims): number;
  create(arena: Arena, pool: ThreadPool, d: LayerAttentionDims): LayerAttention;
}

const dense: AttentionBackend = {
  arenaBytes: (d) => denseCacheBytes(d) + 128,
  create: (arena, pool, d) => new DenseAttention(arena, pool, d),
};

export function attentionBackend(spec: AttentionSpec): AttentionBackend {
  switch (spec.kind) {
    case 'dense':
      if (Object.keys(spec.params).length) throw new RangeError(`attention: dense takes no parameters, got ${Object.keys(spec.params).join(', ')}`);
      return dense;
    case 'magicpig':
      return magicpigBackend(spec.params);
    case 'topk': case 'quest': case 'streaming': case 'oracle-sampling':
      return selectiveBackend(spec.kind, spec.params);
    default: {
      const never: never = spec.kind;
      throw new RangeError(`attention: unknown backend ${String(never)}`);
    }
  }
}
