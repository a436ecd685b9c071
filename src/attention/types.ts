// The attention-backend contract. A LayerAttention is one sequence's attention in one layer: it
// reads the sequence's K/V rows through its KVStore (paged, ./kv-pages.ts) and keeps whatever else
// the backend needs per sequence (hash tables, page bounds, a sampling stream) inside the layer's
// arena, and answers attention for new queries. The model never looks inside: it stores the new
// tokens' post-RoPE K/V rows, then asks for the attention output. Dense is the reference every other backend is tested against.
//
// Shapes: n = new tokens, H = query heads, Hkv = KV heads, D = head dim, kvDim = Hkv·D.

import type { Ptr } from '../kernels/types.js';
import type { KVStore } from './kv-store.js';

export type AttentionPhase = 'prefill' | 'decode';

export interface LayerAttention {
  /** Stores K and V rows (n, kvDim) f32 of positions p0 … p0+n−1 (post-RoPE keys). */
  store(k: Ptr, v: Ptr, p0: number, n: number): void;
  /** out (n, H, D) = causal attention of q (n, H, D) at positions qPos (n, i32) over every stored
   *  position ≤ qPos[i]; `length` = number of positions stored so far (p0 + n after store).
   *  `phase` says whether these queries are prompt tokens ('prefill': sparse backends answer them
   *  exactly, as the papers do) or generated tokens ('decode'). When omitted: n > 1 is prefill. */
  attend(q: Ptr, qPos: Ptr, out: Ptr, n: number, length: number, phase?: AttentionPhase): void;
  /** The store whose exact dense attention (KVStore.attendDense) attend() would compute for one
   *  query in `phase`, with nothing else to do; undefined when it would do more (sparse backends).
   *  The model then runs that query in one job with the other sequences' (attendDenseBatch).
   *  Optional: leaving it out keeps every call on attend(). */
  denseStore?(phase: AttentionPhase): KVStore | undefined;
  /** Sees the queries of prompt rows that another attention of the same sequence answered (the
   *  target's prefill, when this one is a self-speculation draft): SnapKV selects its keys from the
   *  last prompt queries. Optional: backends that choose keys without them leave it out. */
  observe?(q: Ptr, qPos: Ptr, n: number, length: number): void;
  /** Forgets positions ≥ n. */
  truncate(n: number): void;
  /** Starts over for a sequence whose first n positions are already stored (a sequence started
   *  from another's prefix, or a slot taken by a new sequence): per-sequence state is rebuilt from
   *  the stored rows where the backend keeps any. */
  reset(n: number): void;
  /** Bytes this layer's state occupies per stored token. */
  readonly bytesPerToken: number;
}
