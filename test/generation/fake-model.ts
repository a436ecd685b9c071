// Deterministic stand-ins for a LanguageModel and a Tokenizer, so generation, API and CLI tests run
// without a checkpoint.
//   FakeModel: logits of position i are a function of the whole context tokens[0..i] (a running hash),
//     so chunked vs one-shot prefill and cache truncation are really exercised. A `script` forces the
//     argmax to spell out given token ids after the prompt (for stop/eos tests). Records every call.
//     A `draftScript` gives it a draft attention: draft rows (self-speculation) follow that script
//     instead, so a test decides where a draft agrees with the target.
//   ByteTokenizer: ids 0..255 are bytes (UTF-8), 256 = BOS, 257 = EOS; decode uses a non-fatal
//     TextDecoder, so a split multi-byte character decodes to U+FFFD like a real byte-level BPE.

import type { BatchItem, ForwardOptions, LanguageModel, ModelCache } from '../../src/models/types.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';

export const BOS = 256;
export const EOS = 257;

export class FakeCache implements ModelCache {
  tokens: number[] = [];
  released = false;
  constructor(readonly capacity: number, readonly owner?: FakeModel) {}
  get length(): number { return this.tokens.length; }
  truncate(n: number): void { this.tokens.length = Math.min(n, this.tokens.length); }
  fork(n = this.length): FakeCache {
    const c = this.owner ? this.owner.createCache(this.capacity) : new FakeCache(this.capacity);
    c.tokens = this.tokens.slice(0, n);
    return c;
  }
  release(): void { if (!this.released) { this.released = true; this.owner?.live.delete(this); } }
}

/** FNV-1a style hash of a context, then a splitmix-like mix per vocabulary entry. */
function hashContext(tokens: readonly number[], end: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < end; i++) h = Math.imul(h ^ (tokens[i] + 1), 0x01000193);
  return h >>> 0;
}

export interface FakeModelOptions {
  vocabSize?: number;
  contextLength?: number;
  /** After the prompt, the generated token at step j is forced to script[j] (greedy); beyond the script
   *  the hash logits decide. Position-based: step j = position − promptLength. */
  script?: readonly number[];
  promptLength?: number;
  /** Busy-wait this many ms per forward call (for abort tests). */
  delayMs?: number;
  /** Never let these ids win (e.g. keep EOS out of random tests). */
  suppress?: readonly number[];
  /** Most live caches (default 64). */
  parallel?: number;
  /** Makes the model accept draft rows (`BatchItem.draft`), whose argmax follows this script (as
   *  `script` does for the target) — the stand-in of a sparse draft attention. */
  draftScript?: readonly number[];
  /** Several draft attentions (draft budgets): draft rows through attention i follow draftScripts[i]
   *  (instead of draftScript). */
  draftScripts?: readonly (readonly number[])[];
}

export class FakeModel implements LanguageModel {
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly parallel: number;
  /** Every forward call: the chunk it got, the cache length before, the logits mode. */
  calls: { tokens: number[]; start: number; logits: 'last' | 'all' }[] = [];
  /** Every forwardBatch call: the items' token counts (one entry per step). */
  steps: number[][] = [];
  /** Caches created and not yet released. */
  readonly live = new Set<FakeCache>();
  private out: Float32Array;
  constructor(readonly opts: FakeModelOptions = {}) {
    this.vocabSize = opts.vocabSize ?? 258;
    this.contextLength = opts.contextLength ?? 512;
    this.out = new Float32Array(this.vocabSize);
    this.parallel = opts.parallel ?? 64;
  }
  get draftAttentions(): string[] {
    const scripts = this.opts.draftScripts ?? (this.opts.draftScript ? [this.opts.draftScript] : []);
    return scripts.map((_, i) => `fake draft ${i}`);
  }
  /** Batch items through each draft attention so far (index: the attention). */
  readonly draftRows: number[] = [];

  createCache(capacity?: number): FakeCache {
    if (this.live.size >= this.parallel) throw new RangeError(`FakeModel: all ${this.parallel} sequence slots are in use`);
    const c = new FakeCache(capacity ?? this.contextLength, this);
    this.live.add(c);
    return c;
  }

  forwardBatch(batch: readonly BatchItem[]): Float32Array[] {
    this.steps.push(batch.map((b) => b.tokens.length));
    return batch.map((b) => {
      const d = b.draft === undefined || b.draft === false ? -1 : b.draft === true ? 0 : b.draft;
      if (d >= this.draftAttentions.length) throw new Error(`FakeModel: no draft attention ${d}`);
      if (d >= 0) this.draftRows[d] = (this.draftRows[d] ?? 0) + 1;
      const out = this.forward(b.tokens, b.cache, { logits: b.logits === 'all' ? 'all' : 'last' }, d);
      return b.logits === 'none' ? new Float32Array(0) : out.slice();
    });
  }

  /** Logits (V) after the context tokens[0..end) — the independent definition tests compare against. */
  logitsAt(tokens: readonly number[], end: number, out: Float32Array = new Float32Array(this.vocabSize), draft = -1): Float32Array {
    let h = hashContext(tokens, end);
    for (let v = 0; v < this.vocabSize; v++) {
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
      h = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
      out[v] = ((h >>> 8) / 2 ** 24) * 8 - 4; // uniform in [−4, 4)
    }
    for (const s of this.opts.suppress ?? []) out[s] = -30;
    const { promptLength } = this.opts;
    const script = draft < 0 ? this.opts.script : (this.opts.draftScripts ?? [this.opts.draftScript!])[draft];
    if (script && promptLength !== undefined) {
      const step = end - promptLength;
      if (step >= 0 && step < script.length) out[script[step]] = 20;
    }
    return out;
  }

  forward(tokens: ArrayLike<number>, cache: ModelCache, opts: ForwardOptions = {}, draft = -1): Float32Array {
    const c = cache as FakeCache;
    if (c.released) throw new Error('FakeModel: cache released');
    const mode = opts.logits ?? 'last';
    const chunk = Array.from(tokens);
    if (c.length + chunk.length > c.capacity) throw new RangeError('FakeModel: cache full');
    this.calls.push({ tokens: chunk, start: c.length, logits: mode });
    if (this.opts.delayMs) { const until = Date.now() + this.opts.delayMs; while (Date.now() < until) { /* spin */ } }
    c.tokens.push(...chunk);
    if (mode === 'last') return this.logitsAt(c.tokens, c.tokens.length, this.out, draft); // reused buffer, like the real model
    const all = new Float32Array(chunk.length * this.vocabSize); // (n, V)
    for (let i = 0; i < chunk.length; i++) all.set(this.logitsAt(c.tokens, c.length - chunk.length + i + 1, undefined, draft), i * this.vocabSize);
    return all;
  }
  dispose(): void { /* nothing held */ }
}

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 258;
  readonly bosTokenId = BOS;
  readonly eosTokenIds = [EOS];
  readonly addBosToken = true;
  chatTemplate: string | null = null;
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    const bytes = [...new TextEncoder().encode(text)];
    return (opts.addSpecialTokens ?? true) ? [BOS, ...bytes] : bytes;
  }
  decode(ids: readonly number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    const bytes = ids.filter((t) => t < 256);
    const special = opts.skipSpecialTokens ? '' : ids.filter((t) => t >= 256).map((t) => (t === BOS ? '<s>' : '</s>')).join('');
    return special + new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes));
  }
  idToToken(id: number): string | undefined {
    if (id === BOS) return '<s>';
    if (id === EOS) return '</s>';
    return id >= 0 && id < 256 ? String.fromCharCode(id) : undefined;
  }
}

/** Byte ids of a string (no BOS): the script that makes FakeModel "say" it. */
export function bytesOf(text: string): number[] {
  return [...new TextEncoder().encode(text)];
}
