// A tiny, deterministic byte-level BPE tokenizer for test checkpoints with random weights.
//
// Built like Llama 3's: 256 byte tokens (GPT-2's byte→char map), merges learned greedily from a
// built-in English corpus, then special tokens; the pre-tokenizer is Llama 3's regex and
// ignore_merges is on, exactly what llama.cpp does for tokenizer.ggml.pre = 'llama-bpe', so the
// same vocabulary written to GGUF ('gpt2' model) tokenizes identically in llama.cpp and here.

/** Llama 3's pre-tokenizer regex in JS syntax (llama.cpp's spelling without the inline (?i:)). */
const LLAMA3_SPLIT = /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
const LLAMA3_SPLIT_SOURCE =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const TINY_SPECIAL_TOKENS: readonly string[] = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|reserved_special_token_0|>',
];

/** Llama 3's chat format (the Meta-Llama-3-Instruct template). */
export const TINY_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}" +
  "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}" +
  "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** The built-in training text: plain English with digits, punctuation, newlines and indentation. */
export const TINY_CORPUS = `The quick brown fox jumps over the lazy dog. Once upon a time, in a small town near the sea,
there lived an old fisherman and his daughter. Every morning they went out on the water, and every
evening they came back with stories about the fish that got away. "It was this big," the old man
would say, holding his hands apart, and the children of the town would laugh and ask for more.

In the year 1987 the town built a new harbour. It had 12 piers, 340 moorings and a lighthouse that
could be seen from 25 kilometres away. The people were proud of it; they said it was the finest
harbour on the whole coast. But the fisherman did not like it. "The sea does not care for stone,"
he said. "It will take back what we give it, one wave at a time."

She learned to read the weather from the colour of the sky, to mend the nets, and to count the
days until the herring came. When she was older she went to the city to study, and she wrote
letters home every week: about the trains, the libraries, the people who talked too fast and the
food that tasted of nothing. Her father kept every letter in a wooden box under his bed.

    def count_words(text):
        return len(text.split())

Years later, when the harbour walls had cracked and the lighthouse was a museum, she came back.
The boat was still there, painted blue and white, and the nets were still folded in the shed.
She took the boat out on a calm morning in spring, and the water was exactly as he had described it.
`;

/** GPT-2's reversible byte → printable character map (bytes_to_unicode). */
export function bytesToUnicode(): string[] {
  const map = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return map;
}

/** Learns `nMerges` merges greedily: most frequent adjacent pair first, ties by the pair's text. */
function learnMerges(corpus: string, maxNewTokens: number, byteChars: string[]): { merges: [string, string][]; newTokens: string[] } {
  const enc = new TextEncoder();
  const wordCounts = new Map<string, number>();
  for (const w of corpus.match(LLAMA3_SPLIT) ?? []) {
    const mapped = Array.from(enc.encode(w), (b) => byteChars[b]).join('');
    wordCounts.set(mapped, (wordCounts.get(mapped) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([w, count]) => ({ parts: Array.from(w), count }));
  const known = new Set(byteChars);
  const merges: [string, string][] = [];
  const newTokens: string[] = [];
  while (newTokens.length < maxNewTokens) {
    const pairCounts = new Map<string, number>();
    for (const { parts, count } of words) {
      for (let i = 0; i + 1 < parts.length; i++) {
        const key = parts[i] + '\u0000' + parts[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestCount = 0;
    for (const [key, c] of pairCounts) {
      if (c > bestCount || (c === bestCount && best !== null && key < best)) {
        best = key;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    if (!known.has(a + b)) {
      known.add(a + b);
      newTokens.push(a + b);
    }
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          out.push(a + b);
          i++;
        } else {
          out.push(w.parts[i]);
        }
      }
      w.parts = out;
    }
  }
  return { merges, newTokens };
}

/**
 * A tokenizer.json object (Hugging Face format) for a byte-level BPE with `vocabSize` tokens in
 * all (default 512): 256 bytes, learned merges, then TINY_SPECIAL_TOKENS. Deterministic.
 */
export function buildTinyTokenizerJson(opts: { vocabSize?: number; corpus?: string } = {}): Record<string, unknown> {
  const vocabSize = opts.vocabSize ?? 512;
  const nSpecial = TINY_SPECIAL_TOKENS.length;
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + nSpecial) {
    throw new RangeError(`buildTinyTokenizerJson: vocabSize must be an integer ≥ ${256 + nSpecial}, got ${vocabSize}`);
  }
  const byteChars = bytesToUnicode();
  const { merges, newTokens } = learnMerges(opts.corpus ?? TINY_CORPUS, vocabSize - 256 - nSpecial, byteChars);
  if (newTokens.length < vocabSize - 256 - nSpecial) {
    throw new RangeError(`buildTinyTokenizerJson: the corpus yields only ${256 + newTokens.length + nSpecial} tokens, fewer than vocabSize ${vocabSize}; use a longer corpus`);
  }
  const vocab: Record<string, number> = Object.create(null);
  byteChars.forEach((c, b) => { vocab[c] = b; });
  newTokens.forEach((t, i) => { vocab[t] = 256 + i; });
  const firstSpecial = 256 + newTokens.length;
  const added = TINY_SPECIAL_TOKENS.map((content, i) => ({
    id: firstSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  // As Llama 3.x's tokenizer.json: BOS added by a TemplateProcessing post-processor.
  const bos = TINY_SPECIAL_TOKENS[0];
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT_SOURCE }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { [bos]: { id: bos, ids: [firstSpecial], tokens: [bos] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** tokenizer_config.json for the tiny tokenizer (Llama 3 chat format, eos = <|eot_id|>). */
export function tinyTokenizerConfig(): Record<string, unknown> {
  return { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', chat_template: TINY_CHAT_TEMPLATE, clean_up_tokenization_spaces: false };
}

export interface TinyGgufVocab {
  model: 'gpt2';
  pre: string;
  tokens: string[];
  tokenTypes: number[];
  merges: string[];
  bosId: number;
  eosId: number;
}

/** The GGUF tokenizer.ggml.* arrays of a tokenizer.json built by buildTinyTokenizerJson. */
export function tinyTokenizerGgufVocab(json: Record<string, unknown>): TinyGgufVocab {
  const model = json.model as { vocab: Record<string, number>; merges: string[] };
  const added = json.added_tokens as { id: number; content: string; special: boolean }[];
  const n = Math.max(...Object.values(model.vocab), ...added.map((t) => t.id)) + 1;
  const tokens = new Array<string>(n);
  const tokenTypes = new Array<number>(n).fill(1); // normal
  for (const [t, id] of Object.entries(model.vocab)) tokens[id] = t;
  for (const t of added) {
    tokens[t.id] = t.content;
    tokenTypes[t.id] = t.special ? 3 : 4; // control / user-defined
  }
  for (let i = 0; i < n; i++) if (tokens[i] === undefined) throw new Error(`tinyTokenizerGgufVocab: id ${i} has no token`);
  const idOf = (s: string) => {
    const t = added.find((a) => a.content === s);
    if (t === undefined) throw new Error(`tinyTokenizerGgufVocab: ${s} is not an added token`);
    return t.id;
  };
  return { model: 'gpt2', pre: 'llama-bpe', tokens, tokenTypes, merges: [...model.merges], bosId: idOf('<|begin_of_text|>'), eosId: idOf('<|eot_id|>') };
}

/** The GGUF metadata entries of the tiny vocabulary, as a GGUF reader would return them. */
export function tinyTokenizerGgufMetadata(json: Record<string, unknown>): Map<string, unknown> {
  const v = tinyTokenizerGgufVocab(json);
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', v.model],
    ['tokenizer.ggml.pre', v.pre],
    ['tokenizer.ggml.tokens', v.tokens],
    ['tokenizer.ggml.token_type', v.tokenTypes],
    ['tokenizer.ggml.merges', v.merges],
    ['tokenizer.ggml.bos_token_id', v.bosId],
    ['tokenizer.ggml.eos_token_id', v.eosId],
    ['tokenizer.ggml.add_bos_token', true],
    ['tokenizer.chat_template', TINY_CHAT_TEMPLATE],
  ]);
}
