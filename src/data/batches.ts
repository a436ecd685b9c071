// Deterministic batches for training and evaluation.
//
// TokenBatcher cuts a token array into windows of seqLen + 1 tokens (input = first seqLen, target
// = last seqLen) and serves them as [B, T] batches in a shuffled order. Epoch e shifts all windows by
// an offset in [0, T) and shuffles them, both drawn from (seed, e), so every epoch sees the text cut
// differently; the last incomplete batch of an epoch is dropped. The cursor (seed, epoch, step and
// the shape it was made for) is plain JSON: a resumed run restores it and gets the very same
// batches. TaskBatcher does the same for synthetic IdTasks (example i of the stream is made from
// deriveSeed(seed, i)), with a loss mask on answer positions.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deriveSeed, Rng } from './rng.js';
import type { IdTask } from './synthetic-task.js';

export interface Batch {
  batchSize: number;
  seqLen: number;
  input: Int32Array;  // (B, T)
  target: Int32Array; // (B, T)  target[b, t] = the token after input[b, t]
}

export interface MaskedBatch extends Batch {
  /** 1 where target[b, t] is an answer to score, else 0.  (B, T) */
  mask: Float32Array;
}

export interface BatcherOptions {
  batchSize: number;
  seqLen: number;
  seed: number;
}

/** Where a TokenBatcher is; JSON-serialisable. */
export interface BatchCursor {
  version: 1;
  seed: number;
  epoch: number;
  /** Batches already served in this epoch. */
  step: number;
  batchSize: number;
  seqLen: number;
  numTokens: number;
}

function checkShape(where: string, opts: BatcherOptions): void {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`${where}: batchSize ${opts.batchSize} must be a positive integer`);
  if (!Number.isInteger(opts.seqLen) || opts.seqLen < 1) throw new RangeError(`${where}: seqLen ${opts.seqLen} must be a positive integer`);
  if (!Number.isInteger(opts.seed)) throw new RangeError(`${where}: seed ${opts.seed} must be an integer`);
}

export class TokenBatcher {
  private epoch = 0;
  private step = 0;
  private offset = 0;
  private order = new Int32Array(0); // window indices of the current epoch, shuffled

  constructor(private readonly tokens: Int32Array, private readonly opts: BatcherOptions) {
    checkShape('TokenBatcher', opts);
    const { batchSize: B, seqLen: T } = opts;
    // The worst epoch (offset T - 1) must still hold one batch.
    if (Math.floor((tokens.length - T) / T) < B) {
      throw new RangeError(`TokenBatcher: ${tokens.length} tokens hold fewer than batchSize = ${B} windows of seqLen + 1 = ${T + 1} tokens; use fewer or shorter sequences`);
    }
    this.startEpoch(0);
  }

  private startEpoch(epoch: number): void {
    const T = this.opts.seqLen;
    this.epoch = epoch;
    this.offset = new Rng(deriveSeed(this.opts.seed, epoch, 0)).int(T);
    const windows = Math.floor((this.tokens.length - 1 - this.offset) / T);
    this.order = new Rng(deriveSeed(this.opts.seed, epoch, 1)).shuffle(Int32Array.from({ length: windows }, (_, i) => i));
  }

  /** Batches in the current epoch. */
  get batchesPerEpoch(): number {
    return Math.floor(this.order.length / this.opts.batchSize);
  }

  /** The next batch; moves the cursor. */
  next(): Batch {
    if (this.step >= this.batchesPerEpoch) { this.startEpoch(this.epoch + 1); this.step = 0; }
    const { batchSize: B, seqLen: T } = this.opts;
    const input = new Int32Array(B * T);  // (B, T)
    const target = new Int32Array(B * T); // (B, T)
    for (let b = 0; b < B; b++) {
      const start = this.offset + this.order[this.step * B + b] * T;
      input.set(this.tokens.subarray(start, start + T), b * T);
      target.set(this.tokens.subarray(start + 1, start + T + 1), b * T);
    }
    this.step++;
    return { batchSize: B, seqLen: T, input, target };
  }

  cursor(): BatchCursor {
    const { batchSize, seqLen, seed } = this.opts;
    return { version: 1, seed, epoch: this.epoch, step: this.step, batchSize, seqLen, numTokens: this.tokens.length };
  }

  /** Continues from a saved cursor; refuses one made for other data or another shape. */
  restore(c: BatchCursor): void {
    const { batchSize, seqLen, seed } = this.opts;
    if (c?.version !== 1 || c.seed !== seed || c.batchSize !== batchSize || c.seqLen !== seqLen || c.numTokens !== this.tokens.length) {
      throw new Error(`TokenBatcher.restore: cursor ${JSON.stringify(c)} was made for other data or options (seed ${seed}, batchSize ${batchSize}, seqLen ${seqLen}, ${this.tokens.length} tokens)`);
    }
    if (!Number.isInteger(c.epoch) || c.epoch < 0 || !Number.isInteger(c.step) || c.step < 0) throw new Error(`TokenBatcher.restore: bad epoch/step in ${JSON.stringify(c)}`);
    this.startEpoch(c.epoch);
    this.step = c.step;
  }
}

/** Evaluation batches: consecutive windows in order, no shuffle; the last batch may have fewer rows. */
export function* sequentialBatches(tokens: Int32Array, batchSize: number, seqLen: number): Generator<Batch> {
  checkShape('sequentialBatches', { batchSize, seqLen, seed: 0 });
  const windows = Math.floor((tokens.length - 1) / seqLen);
  for (let w = 0; w < windows; w += batchSize) {
    const B = Math.min(batchSize, windows - w);
    const input = new Int32Array(B * seqLen);  // (B, T)
    const target = new Int32Array(B * seqLen); // (B, T)
    for (let b = 0; b < B; b++) {
      const start = (w + b) * seqLen;
      input.set(tokens.subarray(start, start + seqLen), b * seqLen);
      target.set(tokens.subarray(start + 1, start + seqLen + 1), b * seqLen);
    }
    yield { batchSize: B, seqLen, input, target };
  }
}

/** Where a TaskBatcher is; JSON-serialisable. */
export interface TaskCursor { version: 1; seed: number; step: number; batchSize: number; seqLen: number }

export class TaskBatcher {
  private step = 0;

  /** `make(seed)` builds one example; its tokens must fit in seqLen + 1. Short ones are padded
   *  with padId (masked out). */
  constructor(private readonly make: (seed: number) => IdTask, private readonly opts: BatcherOptions & { padId: number }) {
    checkShape('TaskBatcher', opts);
  }

  /** Example i of the stream (the same for every batch size). */
  example(i: number): IdTask {
    return this.make(deriveSeed(this.opts.seed, i));
  }

  next(): MaskedBatch {
    const { batchSize: B, seqLen: T, padId } = this.opts;
    const input = new Int32Array(B * T).fill(padId);  // (B, T)
    const target = new Int32Array(B * T).fill(padId); // (B, T)
    const mask = new Float32Array(B * T);              // (B, T)
    for (let b = 0; b < B; b++) {
      const task = this.example(this.step * B + b);
      const n = task.tokens.length;
      if (n > T + 1) throw new RangeError(`TaskBatcher: an example has ${n} tokens, more than seqLen + 1 = ${T + 1}`);
      input.set(task.tokens.subarray(0, Math.min(n, T)), b * T);
      target.set(task.tokens.subarray(1), b * T);
      for (const p of task.answerPositions) if (p >= 1) mask[b * T + p - 1] = 1;
    }
    this.step++;
    return { batchSize: B, seqLen: T, input, target, mask };
  }

  cursor(): TaskCursor {
    const { batchSize, seqLen, seed } = this.opts;
    return { version: 1, seed, step: this.step, batchSize, seqLen };
  }

  restore(c: TaskCursor): void {
    const { batchSize, seqLen, seed } = this.opts;
    if (c?.version !== 1 || c.seed !== seed || c.batchSize !== batchSize || c.seqLen !== seqLen || !Number.isInteger(c.step) || c.step < 0) {
      throw new Error(`TaskBatcher.restore: cursor ${JSON.stringify(c)} does not match (seed ${seed}, batchSize ${batchSize}, seqLen ${seqLen})`);
    }
    this.step = c.step;
  }
}

/** Token ids of documents, each followed by `eotId` when given. */
export function tokenizeDocuments(docs: readonly { text: string }[], encode: (text: string) => number[], eotId?: number): Int32Array {
  const parts: number[][] = docs.map((d) => (eotId === undefined ? encode(d.text) : [...encode(d.text), eotId]));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export interface TokenizeCachedOptions {
  /** Names the cache file (e.g. 'moby-dick-train'). */
  corpusName: string;
  /** The tokenizer.json (object or text); its hash keys the cache. */
  tokenizerJson: object | string;
  documents: readonly { text: string }[];
  encode: (text: string) => number[];
  eotId?: number;
  /** Default: <os tmpdir>/tessera-token-cache. */
  cacheDir?: string;
}

const MAGIC = Buffer.from('TSRTOK01');

/**
 * tokenizeDocuments with a file cache keyed by the tokenizer's hash, the corpus name, the text and
 * eotId. Files are written atomically (temp file, then rename); a damaged file is recomputed.
 */
export function tokenizeCached(opts: TokenizeCachedOptions): Int32Array {
  const h = createHash('sha256');
  h.update(typeof opts.tokenizerJson === 'string' ? opts.tokenizerJson : JSON.stringify(opts.tokenizerJson));
  h.update(`\0${opts.corpusName}\0${opts.eotId ?? ''}\0`);
  for (const d of opts.documents) h.update(`${d.text.length}:`).update(d.text);
  const dir = opts.cacheDir ?? join(tmpdir(), 'tessera-token-cache');
  const file = join(dir, `${opts.corpusName.replace(/[^A-Za-z0-9._-]/g, '_')}-${h.digest('hex').slice(0, 24)}.tokens`);
  try {
    const size = statSync(file).size;
    const buf = readFileSync(file);
    if (size >= 12 && buf.subarray(0, 8).equals(MAGIC) && size === 12 + 4 * buf.readUInt32LE(8)) {
      const out = new Int32Array((size - 12) / 4);
      for (let i = 0; i < out.length; i++) out[i] = buf.readInt32LE(12 + 4 * i);
      return out;
    }
  } catch { /* no cache yet */ }
  const ids = tokenizeDocuments(opts.documents, opts.encode, opts.eotId);
  const buf = Buffer.alloc(12 + 4 * ids.length);
  MAGIC.copy(buf, 0);
  buf.writeUInt32LE(ids.length, 8);
  for (let i = 0; i < ids.length; i++) buf.writeInt32LE(ids[i], 12 + 4 * i);
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, buf);
  renameSync(tmp, file);
  return ids;
}
