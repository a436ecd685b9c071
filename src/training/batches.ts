// Deterministic batches of next-token training windows from one token stream. The order depends only
// on the seed and how many batches were drawn; getState()/setState() capture exactly that (RNG state
// + cursor), so a resumed run sees the same batches as an uninterrupted one.

import { Rng, type RngState } from './rng.js';

export interface Batch {
  /** (B·T) input ids, sequence after sequence. */
  ids: Int32Array;
  /** (B·T) next-token targets (−100 = ignored). */
  targets: Int32Array;
  B: number;
  T: number;
}

export interface BatchSource {
  next(): Batch;
  getState(): unknown;
  setState(state: unknown): void;
}

/** B random windows of T + 1 tokens per batch (inputs = first T, targets = last T). */
export class WindowBatches implements BatchSource {
  private rng: Rng;
  /** Batches drawn so far. */
  cursor = 0;

  constructor(readonly tokens: ArrayLike<number>, readonly B: number, readonly T: number, seed: number) {
    if (tokens.length < T + 2) throw new Error(`WindowBatches: ${tokens.length} tokens cannot fill a window of ${T} + 1`);
    this.rng = new Rng(seed);
  }

  next(): Batch {
    const { B, T } = this;
    const ids = new Int32Array(B * T), targets = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const start = this.rng.int(this.tokens.length - T - 1);
      for (let t = 0; t < T; t++) { ids[b * T + t] = this.tokens[start + t]; targets[b * T + t] = this.tokens[start + t + 1]; }
    }
    this.cursor++;
    return { ids, targets, B, T };
  }

  getState(): { rng: RngState; cursor: number } { return { rng: this.rng.getState(), cursor: this.cursor }; }
  setState(state: unknown): void {
    const s = state as { rng: RngState; cursor: number };
    this.rng.setState(s.rng);
    this.cursor = s.cursor;
  }
}
