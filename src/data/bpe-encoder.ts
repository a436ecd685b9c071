// The reference encoder for a trained byte-level BPE (bpe-trainer.ts): each pre-token is turned
// into its bytes, then the adjacent pair of lowest merge rank is merged (every occurrence, left to
// right) until no pair has a rank. This is the textbook definition, independent of the
// @huggingface/tokenizers implementation it is tested against; it is also fast enough (a per-word
// cache) to tokenise training corpora.

import { CHAR_TO_BYTE, preTokenize, splitOnSpecials } from './byte-level.js';
import type { BpeModel } from './bpe-trainer.js';

const PAIR_BASE = 1 << 21;

export class BpeEncoder {
  readonly vocabSize: number;
  private readonly ranks = new Map<number, number>();   // pair key → rank
  private readonly results = new Map<number, number>(); // pair key → merged id
  private readonly specialIds = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  constructor(readonly model: BpeModel) {
    model.merges.forEach(([a, b, c], rank) => {
      const k = a * PAIR_BASE + b;
      if (!this.ranks.has(k)) { this.ranks.set(k, rank); this.results.set(k, c); }
    });
    model.specialTokens.forEach((s, i) => this.specialIds.set(s, model.tokens.length + i));
    this.vocabSize = model.tokens.length + model.specialTokens.length;
  }

  /** Id of a special token, or undefined. */
  specialId(token: string): number | undefined {
    return this.specialIds.get(token);
  }

  /** Encodes text; special tokens written in the text become their ids. */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const part of splitOnSpecials(text, this.model.specialTokens)) {
      if (part.special) { out.push(this.specialIds.get(part.text)!); continue; }
      for (const w of preTokenize(part.text)) for (const id of this.encodeWord(w)) out.push(id);
    }
    return out;
  }

  /** The BPE of one pre-token. */
  encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit !== undefined) return hit;
    let s = Array.from(this.utf8.encode(word));
    for (;;) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.ranks.get(s[i] * PAIR_BASE + s[i + 1]);
        if (r !== undefined && r < bestRank) { bestRank = r; best = s[i] * PAIR_BASE + s[i + 1]; }
      }
      if (best < 0) break;
      const a = Math.floor(best / PAIR_BASE), b = best % PAIR_BASE, c = this.results.get(best)!;
      const next: number[] = [];
      for (let i = 0; i < s.length;) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) { next.push(c); i += 2; } else next.push(s[i++]);
      }
      s = next;
    }
    if (this.cache.size < 1 << 18) this.cache.set(word, s);
    return s;
  }

  /** Decodes ids to text (invalid UTF-8 from a partial sequence becomes U+FFFD). */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    let text = '';
    const dec = new TextDecoder('utf-8', { ignoreBOM: true }); // a text may start with U+FEFF: keep it
    const flush = () => { if (bytes.length) { text += dec.decode(Uint8Array.from(bytes)); bytes.length = 0; } };
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`BpeEncoder.decode: token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
      if (id < this.model.tokens.length) for (const b of this.model.tokens[id]) bytes.push(b);
      else { flush(); text += this.model.specialTokens[id - this.model.tokens.length]; }
    }
    flush();
    return text;
  }
}

/**
 * Reads back a tokenizer.json written by toTokenizerJson (ids 0..n-1 for the byte-level
 * vocabulary, special tokens right after). Throws naming the field for any other layout.
 */
export function bpeFromTokenizerJson(json: unknown): BpeModel {
  const fail = (what: string): never => { throw new Error(`bpeFromTokenizerJson: ${what} (only files written by toTokenizerJson are supported)`); };
  const j = json as { model?: { type?: string; vocab?: Record<string, number>; merges?: unknown[] }; added_tokens?: { id: number; content: string }[] };
  if (j?.model?.type !== 'BPE' || typeof j.model.vocab !== 'object' || !Array.isArray(j.model.merges)) fail('model must be BPE with vocab and merges');
  const vocab = j.model!.vocab!;
  const n = Object.keys(vocab).length;
  const tokens: Uint8Array[] = new Array(n);
  for (const [s, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= n || tokens[id] !== undefined) fail(`vocab id ${id} of ${JSON.stringify(s)} is not a distinct id in [0, ${n})`);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const code = s.charCodeAt(i);
      const b = code < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[code] : -1;
      if (b < 0) fail(`vocab token ${JSON.stringify(s)} has a character outside the byte-level alphabet`);
      bytes[i] = b;
    }
    tokens[id] = bytes;
  }
  const merges: [number, number, number][] = j.model!.merges!.map((m, i) => {
    const [l, r] = typeof m === 'string' ? m.split(' ') : (m as string[]);
    const a = vocab[l], b = vocab[r], c = vocab[l + r];
    if (a === undefined || b === undefined || c === undefined) fail(`merges[${i}] names tokens missing from vocab`);
    return [a, b, c];
  });
  const added = [...(j.added_tokens ?? [])].sort((x, y) => x.id - y.id);
  added.forEach((t, i) => { if (t.id !== n + i) fail(`added token ${JSON.stringify(t.content)} has id ${t.id}, expected ${n + i}`); });
  return { tokens, merges, specialTokens: added.map((t) => t.content) };
}
