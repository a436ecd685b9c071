// Builds the attention backend of a spec. A backend says how many arena bytes one sequence's state
// needs in a layer, besides the sequence's K/V pages (the loader sizes every layer arena for
// `parallel` such slots before creating it), and then creates that state inside the arena.

import type { CacheDType } from '../kernels/types.js';
import type { Arena } from '../runtime/arena.js';
import type { ThreadPool } from '../runtime/pool.js';
import { DenseAttention } from './dense.js';
import type { KVStore } from './kv-store.js';
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
  /** Most tokens one sequence holds (the context length). */
  capacity: number;
  dtype: CacheDType;
}

export interface AttentionBackend {
  /** Arena bytes of one sequence's state in one layer, besides its K/V pages (0 for dense). */
  slotBytes(d: LayerAttentionDims): number;
  /** One sequence's attention in one layer, reading its rows through `kv`; allocates slotBytes(d)
   *  bytes at most in `arena`. */
  create(arena: Arena, pool: ThreadPool, d: LayerAttentionDims, kv: KVStore): LayerAttention;
}

const dense: AttentionBackend = {
  slotBytes: () => 0,
  create: (_arena, pool, _d, kv) => new DenseAttention(kv, pool),
};

export function attentionBackend(spec: AttentionSpec): AttentionBackend {
  switch (spec.kind) {
    case 'dense':
      if (Object.keys(spec.params).length) throw new RangeError(`attention: dense takes no parameters, got ${Object.keys(spec.params).join(', ')}`);
      return dense;
    case 'magicpig':
      return magicpigBackend(spec.params);
    case 'topk': case 'quest': case 'streaming': case 'oracle-sampling': case 'snapkv':
      return selectiveBackend(spec.kind, spec.params);
    default: {
      const never: never = spec.kind;
      throw new RangeError(`attention: unknown backend ${String(never)}`);
    }
  }
}
