// A separate small draft model (PAPERS.md §2, "small draft model"): another loaded Tessera model that
// shares the target's tokenizer, with a cache of its own per sequence (its own attention backend:
// load it with a sparse one, e.g. streaming, to keep its reads flat in the context length; the rows stay stored).
//
// Each propose() first brings every sequence's draft cache in step with its context: the positions
// the target rejected last step are truncated away (the longest common prefix of what the cache holds
// and `seq.context` is kept), and the rest is fed — the prompt of a new sequence in chunks, after a
// verification the accepted tokens and the correction or bonus token. Then γ batched draft steps over
// all sequences draw the draft tokens, each from q, the sequence's own processed distribution (its
// temperature, top-k/top-p/min-p and penalties) applied to the draft's logits, with the sequence's
// seeded uniform stream; verification needs exactly that q to stay lossless. Greedy (temperature 0)
// makes q one-hot at the draft's argmax.
//
// The draft's KV memory and sequence slots are its own budget. A sequence drafts in a step only if
// the draft's free pages hold all it feeds and drafts then, and a new sequence only if a slot is
// free; the others decode that step without a draft (speculation is an optimisation: plain decoding
// is what lossless verification would have produced anyway) and try again the next step. Should a
// forward still run out (another user of the draft model took the pages), the sequences of that
// forward stop drafting for good, their draft caches released. Only OutOfKVMemoryError is absorbed;
// anything else is a broken drafter and fails the requests it drafts for (the scheduler does that).
//
// Shape legend: γ = draft length, V = vocabulary size, L = context length.

import { KV_PAGE_TOKENS, OutOfKVMemoryError } from '../attention/kv-pages.js';
import type { BatchItem, LanguageModel, ModelCache } from '../models/types.js';
import type { Draft, DraftRequest, Drafter } from './drafter.js';
import type { SequenceState } from './sequence.js';
import { draw } from './speculative.js';

export interface DraftModelOptions {
  /** Names the drafter in errors and tables (default 'draft model'). */
  name?: string;
  /** Most prompt tokens one sequence feeds per catch-up step (default 256). */
  prefillChunk?: number;
}

interface Tracked {
  cache: ModelCache;
  /** The tokens the cache holds, in order. */
  fed: number[];
}

interface Drafting {
  req: DraftRequest;
  t: Tracked;
  /** Tokens to feed in the next draft step. */
  feed: number[];
  phase: 'prefill' | 'decode';
  tokens: number[];
  q: Float64Array[];
  gamma: number;
}

/** KV pages that hold n positions. */
const pagesFor = (n: number) => Math.ceil(n / KV_PAGE_TOKENS);

/** Draws a draft token from the sequence's processed distribution of the draft's `logits` (V) after
 *  `drafted` (the tokens drafted before it this step): the token and q, the distribution it came
 *  from. Uses the sequence's seeded uniform stream. */
export function drawDraftToken(seq: SequenceState, logits: Float32Array, drafted: readonly number[]): { token: number; q: Float64Array } {
  const q = seq.distribution(logits, drafted);
  return { token: draw(q, 1, seq.sampler.uniform()), q };
}

export class DraftModel implements Drafter {
  readonly name: string;
  readonly vocabSize: number;
  private readonly prefillChunk: number;
  private readonly tracked = new Map<SequenceState, Tracked>();
  /** Sequences that ran out of the draft's KV memory: they decode without drafts. */
  private readonly starved = new WeakSet<SequenceState>();

  constructor(readonly model: LanguageModel, opts: DraftModelOptions = {}) {
    this.name = opts.name ?? 'draft model';
    this.vocabSize = model.vocabSize;
    this.prefillChunk = opts.prefillChunk ?? 256;
    if (!Number.isInteger(this.prefillChunk) || this.prefillChunk < 1) throw new RangeError(`DraftModel: prefillChunk must be an integer ≥ 1, got ${opts.prefillChunk}`);
  }

  /** Sequences whose draft cache is alive (for tests and memory accounting). */
  get sequences(): number { return this.tracked.size; }

  propose(requests: readonly DraftRequest[]): Draft[] {
    const drafts: Draft[] = requests.map(() => ({ tokens: [] }));
    let work: Drafting[] = [];
    // admission: a sequence drafts this step only if the draft's free KV pages hold everything it
    // feeds and drafts now (the others wait for pages to free; a new one gives its slot back)
    let free = this.model.kvPages === undefined ? Infinity : this.model.kvPages.pages - this.model.kvPages.used;
    requests.forEach((req, i) => {
      const d = this.sync(req);
      if (d === undefined) return;
      const held = d.t.cache.length, need = pagesFor(held + d.feed.length + d.gamma - 1) - pagesFor(held);
      if (need > free) {
        if (d.t.fed.length === 0) this.forget(req.seq);
        return;
      }
      free -= need;
      work.push(d);
      drafts[i] = { tokens: d.tokens, q: d.q };
    });
    // catch-up: long feeds (a new sequence's prompt) go in chunks, logits of the last chunk only
    for (;;) {
      const long = work.filter((d) => d.feed.length > this.prefillChunk);
      if (long.length === 0) break;
      if (!this.run(long, () => {
        this.model.forwardBatch(long.map((d) => ({ cache: d.t.cache, tokens: d.feed.slice(0, this.prefillChunk), logits: 'none', phase: d.phase })));
        for (const d of long) d.t.fed.push(...d.feed.splice(0, this.prefillChunk));
      })) work = work.filter((d) => !this.starved.has(d.req.seq));
    }
    // γ draft steps; a sequence leaves the batch once it has its γ tokens (or its draft memory ran
    // out: it keeps the tokens drawn before)
    let live = work;
    while (live.length > 0) {
      const batch: BatchItem[] = live.map((d) => ({ cache: d.t.cache, tokens: d.feed, logits: 'last', phase: d.phase }));
      this.run(live, () => {
        const logits = this.model.forwardBatch(batch);                   // (V) per row, reused by the next call
        live.forEach((d, i) => {
          d.t.fed.push(...d.feed);
          const { token, q } = drawDraftToken(d.req.seq, logits[i]!, d.tokens);
          d.tokens.push(token);
          d.q.push(q);
          d.feed = [token];
          d.phase = 'decode';
        });
      });
      live = live.filter((d) => d.tokens.length < d.gamma && !this.starved.has(d.req.seq));
    }
    return drafts;
  }

  /** Runs one forward over `work`; when the draft's KV memory runs out, every sequence of it stops
   *  drafting (its cache released: a chunked forward may have advanced it past what `fed` records).
   *  False when that happened. */
  private run(work: readonly Drafting[], forward: () => void): boolean {
    try {
      forward();
      return true;
    } catch (e) {
      if (!(e instanceof OutOfKVMemoryError)) throw e;
      for (const d of work) { this.forget(d.req.seq); this.starved.add(d.req.seq); }
      return false;
    }
  }

  /** Truncates the sequence's draft cache to what still matches its context and plans the feed (at
   *  least the context's last token, whose logits give the first draft token); undefined when the
   *  draft cache cannot hold the context and one draft token. */
  private sync(req: DraftRequest): Drafting | undefined {
    if (this.starved.has(req.seq)) return undefined;
    const ctx = req.seq.context, L = ctx.length;
    let t = this.tracked.get(req.seq);
    if (t === undefined) {
      const capacity = Math.min(this.model.contextLength, req.cache.capacity);
      if (capacity < L) return undefined;
      if (this.tracked.size >= this.model.parallel) return undefined;    // every draft slot busy: no draft until one frees
      t = { cache: this.model.createCache(capacity), fed: [] };
      this.tracked.set(req.seq, t);
    }
    const gamma = Math.min(req.gamma, t.cache.capacity - L + 1);
    if (gamma < 1) return undefined;
    let keep = 0;
    const most = Math.min(t.fed.length, L - 1);
    while (keep < most && t.fed[keep] === ctx[keep]) keep++;
    if (keep < t.fed.length) { t.cache.truncate(keep); t.fed.length = keep; }
    const promptEnd = L - req.seq.tokens.length;                          // context positions before the first generated token
    return { req, t, feed: ctx.slice(keep) as number[], phase: keep < promptEnd - 1 ? 'prefill' : 'decode', tokens: [], q: [], gamma };
  }

  /** Starts `seq`'s draft cache from `cache`, a cache of the draft model that holds `tokens` (e.g. a
   *  fork of a prompt prefilled once for many sequences, as the target's own prefix caches are), so
   *  the first propose() feeds only the context past them. The drafter owns `cache` from here and
   *  releases it in forget(). Tokens that turn out not to match `seq.context` are truncated away by
   *  the usual sync, so a wrong prefix costs a refill, never a wrong draft. */
  adopt(seq: SequenceState, cache: ModelCache, tokens: readonly number[]): void {
    if (cache.length !== tokens.length) throw new RangeError(`DraftModel.adopt: the cache holds ${cache.length} positions but ${tokens.length} tokens were given`);
    this.forget(seq);
    this.tracked.set(seq, { cache, fed: [...tokens] });
  }

  forget(seq: SequenceState): void {
    const t = this.tracked.get(seq);
    if (t === undefined) return;
    this.tracked.delete(seq);
    t.cache.release();
  }

  /** Releases every draft cache (the draft model itself belongs to the caller). */
  dispose(): void {
    for (const seq of [...this.tracked.keys()]) this.forget(seq);
  }
}
