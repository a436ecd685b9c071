// The prompt cache: the caches of recently finished generations and the tokens they hold, so a request
// that starts with the same tokens (the next turn of a chat re-sends its history; many clients send
// the same system prompt) starts from that prefix by reference and prefills only what is new.
//
// Bounded twice: at most `maxEntries` caches, least recently used evicted first; and an idle entry
// gives its sequence slot and KV pages back whenever the scheduler runs short of either (a kept cache
// must never make a live request wait). An entry a request is starting from is pinned until the
// request has forked it (or adopted it, or given it up; src/generation/scheduler.ts admit): one
// superseded or evicted meanwhile leaves the table at once but is released only when its last pin
// goes, so it is never released under the scheduler's fork.

import type { ModelCache } from '../models/types.js';

interface Entry { cache: ModelCache; tokens: number[]; pins: number; used: number; retired: boolean }

/** The longest common prefix of two token lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class PromptCache {
  private readonly entries: Entry[] = [];
  private clock = 0;

  constructor(readonly maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError(`promptCache must be an integer ≥ 0 (0 = off), got ${maxEntries}`);
  }

  get size(): number { return this.entries.length; }

  /** The entry sharing the longest prefix with `ids` (at most ids.length − 1 tokens: the last prompt
   *  token is always fed, its logits are needed), pinned; undefined when none shares a token.
   *  Call `release()` on the handle when the request no longer needs the entry. `adopt()` hands the
   *  entry's cache itself to the request (out of the table; the caller owns it and releases it) when
   *  this handle is its only pin — a request that finds no free sequence slot can then start in the
   *  slot the entry holds instead of waiting for a second one; undefined otherwise. */
  lookup(ids: readonly number[]): { cache: ModelCache; length: number; release: () => void; adopt: () => ModelCache | undefined } | undefined {
    let best: Entry | undefined, length = 0;
    for (const e of this.entries) {
      const n = Math.min(commonPrefix(e.tokens, ids), ids.length - 1);
      if (n > length) { best = e; length = n; }
    }
    if (best === undefined) return undefined;
    const e = best;
    e.pins++;
    e.used = ++this.clock;
    let done = false;
    return {
      cache: e.cache, length,
      release: () => {
        if (done) return;
        done = true;
        if (--e.pins === 0 && e.retired) e.cache.release();
      },
      adopt: () => {
        if (done || e.pins !== 1) return undefined;
        done = true;
        e.pins = 0;
        const i = this.entries.indexOf(e);
        if (i >= 0) this.entries.splice(i, 1);
        return e.cache;
      },
    };
  }

  /** Keeps a finished generation's cache (holding `tokens`, in order). An entry whose tokens this one
   *  extends is replaced; past maxEntries the least recently used entry goes. Takes ownership of `cache`. */
  keep(cache: ModelCache, tokens: number[]): void {
    if (this.maxEntries === 0) { cache.release(); return; }
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (commonPrefix(this.entries[i]!.tokens, tokens) === this.entries[i]!.tokens.length) this.drop(i);
    }
    this.entries.push({ cache, tokens, pins: 0, used: ++this.clock, retired: false });
    while (this.entries.length > this.maxEntries) {
      let lru = 0;
      this.entries.forEach((e, i) => { if (e.used < this.entries[lru]!.used) lru = i; });
      this.drop(lru);
    }
  }

  /** Releases the least recently used idle entry; false when none is idle. */
  evictOne(): boolean {
    let at = -1;
    this.entries.forEach((e, i) => { if (e.pins === 0 && (at < 0 || e.used < this.entries[at]!.used)) at = i; });
    if (at < 0) return false;
    this.drop(at);
    return true;
  }

  /** Drops every entry (pinned ones are released when their requests end). */
  clear(): void {
    while (this.entries.length > 0) this.drop(0);
  }

  /** Takes entry i out of the table; its cache is released now, or by its last pin's release. */
  private drop(i: number): void {
    const e = this.entries.splice(i, 1)[0]!;
    if (e.pins === 0) e.cache.release();
    else e.retired = true;
  }
}
