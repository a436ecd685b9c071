// Word pools for the aggregation tasks: the real words of src/data (nouns, then adjectives) in a
// seeded order, extended with pronounceable pseudo-words ("bakemo") when a long context needs more
// distinct words than the lists hold, and RULER's random lower-case "coded" words.

import type { Rng } from '../data/rng.js';
import { ADJECTIVES, NOUNS } from '../data/synthetic-words.js';

const CONSONANTS = 'bdfgklmnprstvz';
const VOWELS = 'aeiou';

/** `n` distinct lower-case words: shuffled real words first, then seeded pseudo-words of 3 syllables. */
export function wordPool(rng: Rng, n: number): string[] {
  const real = rng.shuffle([...NOUNS, ...ADJECTIVES.filter((a) => !NOUNS.includes(a))]);
  const out = real.slice(0, n);
  const seen = new Set(out);
  const syllable = () => CONSONANTS[rng.int(CONSONANTS.length)] + VOWELS[rng.int(VOWELS.length)];
  let tries = 0;
  while (out.length < n) {
    const w = syllable() + syllable() + syllable();
    if (!seen.has(w)) { seen.add(w); out.push(w); }
    if (++tries > 50 * n + 1000) throw new RangeError(`wordPool: cannot draw ${n} distinct words`);
  }
  return out;
}

/** `n` distinct random words of `letters` lower-case letters (RULER's coded words). */
export function codedWords(rng: Rng, n: number, letters: number): string[] {
  if (26 ** letters < 2 * n) throw new RangeError(`codedWords: ${n} words of ${letters} letters are too many; use longer words`);
  const seen = new Set<string>();
  const out: string[] = [];
  while (out.length < n) {
    let w = '';
    for (let i = 0; i < letters; i++) w += String.fromCharCode(97 + rng.int(26));
    if (!seen.has(w)) { seen.add(w); out.push(w); }
  }
  return out;
}
