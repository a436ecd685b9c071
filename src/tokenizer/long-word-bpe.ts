// BPE for long words (hundreds of thousands of characters: a run of spaces, a line of '=' …).
//
// @huggingface/tokenizers' BPE is O(n log n) in a word's length but costs ~10 µs per character
// (object spreads and a JSON key per node), so a 1 MB run of one character took 10–26 s with the
// Llama 3 vocabulary. This is the same algorithm — repeatedly merge the lowest-ranked adjacent
// pair, leftmost first among equal ranks — over typed-array linked lists and one binary heap of
// numeric keys (rank · n + position), 5–10× faster. It reads the library's own rank table, so
// the pairs and their ranks are the library's by construction; tests compare the two outputs.

/** The library's BPE model, as far as we touch it. */
export interface BpeModelInternals {
  bpe(token: string): string[];
  /** JSON.stringify([left, right]) → rank. */
  bpe_ranks: Map<string, number>;
  end_of_word_suffix?: string | null;
  continuing_subword_suffix?: string | null;
}

/** Words at least this long (in UTF-16 units) take the fast path; shorter ones are cached by the library. */
export const LONG_WORD = 256;

/** A min-heap of numbers. */
class NumberHeap {
  private readonly a: number[] = [];

  get size(): number {
    return this.a.length;
  }

  push(k: number): void {
    const a = this.a;
    let i = a.length;
    a.push(k);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p] <= k) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = k;
  }

  pop(): number {
    const a = this.a;
    const top = a[0];
    const last = a.pop() as number;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && a[c + 1] < a[c]) c++;
        if (a[c] >= last) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** The BPE pieces of `word` (characters merged by `ranks`), identical to the library's bpe(). */
export function bpeLongWord(word: string, ranks: ReadonlyMap<string, number>): string[] {
  const parts: (string | null)[] = Array.from(word); // code points, as the library splits
  const n = parts.length;
  const next = new Int32Array(n); // next live piece, -1 at the end
  const prev = new Int32Array(n); // previous live piece, -1 at the start
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const rankAt = (i: number): number | undefined => {
    const j = next[i];
    return j < 0 ? undefined : ranks.get(JSON.stringify([parts[i], parts[j]]));
  };
  const heap = new NumberHeap();
  const push = (i: number) => {
    const r = rankAt(i);
    if (r !== undefined) heap.push(r * n + i); // lowest rank first, then leftmost
  };
  for (let i = 0; i + 1 < n; i++) push(i);
  while (heap.size > 0) {
    const key = heap.pop();
    const i = key % n;
    // Stale entries (a neighbour merged since) no longer name the pair now at i: skip them.
    if (parts[i] === null || rankAt(i) !== (key - i) / n) continue;
    const j = next[i];
    parts[i] = (parts[i] as string) + (parts[j] as string);
    parts[j] = null;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) push(prev[i]);
    push(i);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(parts[i] as string);
  return out;
}

/** Routes a BPE model's long words to bpeLongWord (models with word suffixes keep the library's). */
export function installLongWordBpe(model: BpeModelInternals): void {
  if (typeof model.bpe !== 'function' || !(model.bpe_ranks instanceof Map)) return;
  if (model.end_of_word_suffix || model.continuing_subword_suffix) return;
  const short = model.bpe.bind(model);
  const ranks = model.bpe_ranks;
  model.bpe = (token: string) => (token.length >= LONG_WORD ? bpeLongWord(token, ranks) : short(token));
}
