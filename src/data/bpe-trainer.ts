// Byte-level BPE training (GPT-2 / Llama-3 style) and its tokenizer.json form.
//
// Training: the corpus is cut around special tokens, split into pre-tokens by Llama-3's regex
// (byte-level.ts) and counted, so BPE works on word *types* with frequencies, never on the raw
// text. Every type starts as its UTF-8 bytes (ids 0..255 = byte values). Each step merges the most
// frequent adjacent pair; ties go to the smaller (left id, right id), so training is deterministic.
// Pair counts are updated incrementally: only the word types that contain the merged pair are
// rescanned (an index pair → types), and a lazy max-heap holds (count, pair) entries, stale ones
// being skipped when popped. A merge whose string already is a token reuses that id (as Hugging
// Face's trainer does), so ids and token strings are one-to-one.
//
// Ids: 0..255 bytes, 256.. learned tokens in merge order, then the special tokens.

import { BYTE_TO_CHAR, bytesToTokenString, preTokenize, SPLIT_PATTERN_HF, splitOnSpecials } from './byte-level.js';

/** A trained byte-level BPE vocabulary. */
export interface BpeModel {
  /** id → the bytes of the token, for ids below `tokens.length` (the non-special vocabulary). */
  tokens: Uint8Array[];
  /** [left id, right id, result id] in rank order (rank = index). */
  merges: [number, number, number][];
  /** Special tokens; the i-th has id tokens.length + i. */
  specialTokens: string[];
}

export interface TrainBpeOptions {
  /** Total vocabulary size wanted (256 bytes + learned tokens + special tokens). */
  vocabSize: number;
  /** Special tokens, kept whole and never merged (default ['<|endoftext|>']). */
  specialTokens?: string[];
  /** Pairs seen fewer times than this are never merged (default 2). */
  minFrequency?: number;
}

const PAIR_BASE = 1 << 21; // pair key = left * PAIR_BASE + right; exact in a double up to 2^42
const MAX_VOCAB = PAIR_BASE;

/** Max-heap of (count, pair key); higher count first, then smaller key (smaller (left, right)). */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number { return this.counts.length; }
  private above(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    const c = this.counts[i]; this.counts[i] = this.counts[j]; this.counts[j] = c;
    const k = this.keys[i]; this.keys[i] = this.keys[j]; this.keys[j] = k;
  }
  push(count: number, key: number): void {
    this.counts.push(count); this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p); i = p;
    }
  }
  topCount(): number { return this.counts[0]; }
  topKey(): number { return this.keys[0]; }
  pop(): void {
    const last = this.counts.length - 1;
    this.swap(0, last); this.counts.pop(); this.keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < last && this.above(l, m)) m = l;
      if (r < last && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m); i = m;
    }
  }
}

/** Counts the pre-tokens of the corpus (special tokens removed). */
export function countWords(corpus: string | readonly string[], specialTokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const doc of typeof corpus === 'string' ? [corpus] : corpus) {
    for (const part of splitOnSpecials(doc, specialTokens)) {
      if (part.special) continue;
      for (const w of preTokenize(part.text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Learns merges on a corpus (one string or a list of documents) until the vocabulary reaches
 * `vocabSize` or no pair occurs `minFrequency` times.
 */
export function trainBpe(corpus: string | readonly string[], opts: TrainBpeOptions): BpeModel {
  const specialTokens = opts.specialTokens ?? ['<|endoftext|>'];
  const minFrequency = opts.minFrequency ?? 2;
  const target = opts.vocabSize - specialTokens.length;
  if (!Number.isInteger(opts.vocabSize) || target < 256 || opts.vocabSize > MAX_VOCAB) {
    throw new RangeError(`trainBpe: vocabSize ${opts.vocabSize} must be an integer in [${256 + specialTokens.length}, ${MAX_VOCAB}] (256 bytes + ${specialTokens.length} special tokens at least)`);
  }
  if (new Set(specialTokens).size !== specialTokens.length || specialTokens.some((s) => s.length === 0)) {
    throw new RangeError('trainBpe: special tokens must be distinct non-empty strings');
  }

  const tokens: Uint8Array[] = [];
  const idOf = new Map<string, number>(); // byte-level token string → id
  for (let b = 0; b < 256; b++) { tokens.push(Uint8Array.of(b)); idOf.set(BYTE_TO_CHAR[b], b); }

  // Word types: symbols (ids) and frequency.
  const enc = new TextEncoder();
  const syms: number[][] = [];
  const freq: number[] = [];
  for (const [w, f] of countWords(corpus, specialTokens)) { syms.push(Array.from(enc.encode(w))); freq.push(f); }

  const counts = new Map<number, number>();   // pair key → occurrences in the corpus
  const where = new Map<number, number[]>();  // pair key → word types that (may) contain it
  for (let w = 0; w < syms.length; w++) {
    const s = syms[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const k = s[i] * PAIR_BASE + s[i + 1];
      counts.set(k, (counts.get(k) ?? 0) + freq[w]);
      const list = where.get(k);
      if (list === undefined) where.set(k, [w]); else if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [k, c] of counts) heap.push(c, k);

  const merges: [number, number, number][] = [];
  const stamp = new Int32Array(syms.length).fill(-1); // last merge step that visited a word type
  const delta = new Map<number, number>();
  while (tokens.length < target && heap.size > 0) {
    const k = heap.topKey(), c = heap.topCount();
    if (counts.get(k) !== c) { heap.pop(); continue; } // stale entry
    if (c < minFrequency) break;
    heap.pop();
    const a = Math.floor(k / PAIR_BASE), b = k % PAIR_BASE;
    const bytes = new Uint8Array(tokens[a].length + tokens[b].length);
    bytes.set(tokens[a]); bytes.set(tokens[b], tokens[a].length);
    const str = bytesToTokenString(bytes);
    let id = idOf.get(str);
    if (id === undefined) { id = tokens.length; tokens.push(bytes); idOf.set(str, id); }
    const step = merges.length;
    merges.push([a, b, id]);

    delta.clear();
    for (const w of where.get(k) ?? []) {
      if (stamp[w] === step) continue;
      stamp[w] = step;
      const s = syms[w], f = freq[w];
      const out: number[] = [];
      let found = false;
      for (let i = 0; i < s.length;) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { out.push(id); i += 2; found = true; } else out.push(s[i++]);
      }
      if (!found) continue; // the index is lazy: this type lost the pair to an earlier merge
      for (let i = 0; i + 1 < s.length; i++) { const p = s[i] * PAIR_BASE + s[i + 1]; delta.set(p, (delta.get(p) ?? 0) - f); }
      for (let i = 0; i + 1 < out.length; i++) {
        const p = out[i] * PAIR_BASE + out[i + 1];
        delta.set(p, (delta.get(p) ?? 0) + f);
        if (out[i] === id || out[i + 1] === id) {
          const list = where.get(p);
          if (list === undefined) where.set(p, [w]); else if (list[list.length - 1] !== w) list.push(w);
        }
      }
      syms[w] = out;
    }
    where.delete(k);
    for (const [p, d] of delta) {
      if (d === 0) continue;
      const n = (counts.get(p) ?? 0) + d;
      if (n > 0) { counts.set(p, n); heap.push(n, p); } else counts.delete(p);
    }
  }
  return { tokens, merges, specialTokens: [...specialTokens] };
}

/** Vocabulary size of a model: learned tokens plus special tokens. */
export function bpeVocabSize(model: BpeModel): number {
  return model.tokens.length + model.specialTokens.length;
}

/**
 * The model as a Hugging Face tokenizer.json object: BPE with byte-level alphabet, Llama-3 split
 * regex then ByteLevel (no regex of its own), ByteLevel decoder, special tokens as added tokens.
 * No post-processor: nothing is added around encoded text.
 */
export function toTokenizerJson(model: BpeModel): object {
  const vocab: Record<string, number> = {};
  model.tokens.forEach((t, id) => { vocab[bytesToTokenString(t)] = id; });
  const str = (id: number) => bytesToTokenString(model.tokens[id]);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.specialTokens.map((content, i) => ({
      id: model.tokens.length + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: SPLIT_PATTERN_HF }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false,
      vocab,
      merges: model.merges.map(([a, b]) => [str(a), str(b)]),
    },
  };
}
