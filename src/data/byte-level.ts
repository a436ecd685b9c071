// Byte-level pre-tokenisation shared by the BPE trainer and its reference encoder.
//
// GPT-2's byte-to-unicode table maps every byte to a printable character so that tokens are
// strings with no spaces or control characters (space → 'Ġ', newline → 'Ċ'); tokenizer.json's
// vocabulary and merges are written in that alphabet. The split regex is Llama-3's (digits in
// groups of at most 3, case-insensitive contractions), so numbers never merge into long tokens.

/** Llama-3's pre-tokenizer pattern, exactly as it appears in tokenizer.json (Rust regex syntax). */
export const SPLIT_PATTERN_HF =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The same pattern in JavaScript syntax: `(?i:…)` is not available in Node 20, so the
 *  contractions spell out both cases. */
export const SPLIT_PATTERN_JS =
  /'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the other 68 to U+0100 onwards. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
})();

/** Inverse of BYTE_TO_CHAR (char code → byte, -1 for characters outside the alphabet). */
export const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(256 + 68).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => { out[c.charCodeAt(0)] = b; });
  return out;
})();

/** Splits text into pre-tokens (the "words" BPE merges within, never across). */
export function preTokenize(text: string): string[] {
  return text.match(SPLIT_PATTERN_JS) ?? [];
}

/** A byte string written in the byte-level alphabet (the form tokenizer.json stores). */
export function bytesToTokenString(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/** Splits `text` around occurrences of the special tokens (longest first), keeping them as parts. */
export function splitOnSpecials(text: string, specials: readonly string[]): { text: string; special: boolean }[] {
  if (specials.length === 0) return [{ text, special: false }];
  const escaped = [...specials].sort((a, b) => b.length - a.length).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const re = new RegExp(escaped.join('|'), 'g');
  const parts: { text: string; special: boolean }[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index! > last) parts.push({ text: text.slice(last, m.index), special: false });
    parts.push({ text: m[0], special: true });
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push({ text: text.slice(last), special: false });
  return parts;
}
