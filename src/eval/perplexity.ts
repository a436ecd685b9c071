// Perplexity of a model through the inference engine (loadModel → LanguageModel, either family) on a
// corpus split or on the user's own text file: the text is tokenised with the model's own tokenizer
// (corpus documents separated by its end-of-sequence token, as in training; a file as one document),
// cut into consecutive windows of ctx tokens, and each window is run from an empty cache with logits
// for every position. (llama-perplexity -f scores only the second half of each window, so its
// numbers are lower for the same text.) Loss at position t predicts token
// t+1 from tokens 0..t, so the per-position curve shows how much a model gains from more context.

import { existsSync, readFileSync } from 'node:fs';
import { readTextFile } from '../formats/regular-file.js';
import { join } from 'node:path';
import { loadModel } from '../models/load.js';
import { loadCorpus, type CorpusName } from '../data/corpora.js';
import { tokenizeCached } from '../data/batches.js';

/** Text files larger than this are refused (tokenising them would take minutes; 64 windows of 1024
 *  tokens need only ~250 KB). */
export const MAX_TEXT_FILE_BYTES = 32 * 2 ** 20;

export interface PerplexityOptions {
  /** A corpus split to score, or */
  corpus?: CorpusName;
  split?: 'train' | 'validation';
  /** a UTF-8 text file to score (one of corpus/file). */
  file?: string;
  /** Window length (default: the model's training context from config.json, capped at 1024). */
  ctx?: number;
  /** Most windows to score (default 64). */
  maxWindows?: number;
  threads?: number;
  kernels?: 'wasm' | 'reference';
}

export interface PerplexityResult {
  model: string;
  /** The corpus name and split, or the file and 'file'. */
  corpus: string;
  split: string;
  ctx: number;
  windows: number;
  tokens: number;
  /** Mean next-token loss (nats) and its exponential. */
  loss: number;
  perplexity: number;
  /** Bits per byte of UTF-8 text scored (comparable across tokenizers), approximate: windows cover
   *  tokens·(bytes/token of the split). */
  bitsPerByte: number;
  /** Mean loss at each position of the window.  (ctx − 1 … ctx entries) */
  perPosition: number[];
  seconds: number;
}

function trainingContext(dir: string): number | undefined {
  try {
    const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const v = c.training_context ?? c.block_size ?? c.max_position_embeddings;
    return typeof v === 'number' ? v : undefined;
  } catch { return undefined; }
}

export async function evalPerplexity(modelPath: string, o: PerplexityOptions): Promise<PerplexityResult> {
  const t0 = performance.now();
  if ((o.corpus === undefined) === (o.file === undefined)) throw new RangeError('evalPerplexity: give exactly one of corpus or file');
  // read before the model loads: a bad file is reported at once (not a regular file, too large, not UTF-8)
  const text = o.file === undefined ? undefined : readTextFile(o.file, MAX_TEXT_FILE_BYTES, 'text to score');
  const split = o.split ?? 'validation';
  const ctx = o.ctx ?? Math.min(1024, trainingContext(modelPath) ?? 512);
  const maxWindows = o.maxWindows ?? 64;
  // f32 K/V rows (not the loader's f16): the published perplexities were measured so
  const loaded = await loadModel(modelPath, { contextLength: ctx, threads: o.threads, kernels: o.kernels, cacheDType: 'f32' });
  const { model, tokenizer } = loaded;
  try {
    const sep = tokenizer.eosTokenIds[0];
    let tokens: Int32Array, bytes: number;
    if (text !== undefined) {
      tokens = Int32Array.from(tokenizer.encode(text, { addSpecialTokens: true }));
      bytes = Buffer.byteLength(text);
    } else {
      const docs = loadCorpus(o.corpus!)[split];
      const tokJsonPath = join(modelPath, 'tokenizer.json');
      tokens = tokenizeCached({
        corpusName: `${o.corpus}-${split}`, tokenizerJson: existsSync(tokJsonPath) ? readFileSync(tokJsonPath, 'utf8') : modelPath,
        documents: docs, encode: (s) => tokenizer.encode(s, { addSpecialTokens: false }), eotId: sep,
      });
      bytes = docs.reduce((n, d) => n + Buffer.byteLength(d.text), 0);
    }
    const bytesPerToken = bytes / tokens.length;
    const windows = Math.min(maxWindows, Math.floor((tokens.length - 1) / ctx));
    if (windows < 1) throw new RangeError(`evalPerplexity: the text is ${tokens.length} tokens, too short for one window of ${ctx} + 1; give more text or a smaller ctx`);
    const V = model.vocabSize;
    const sum = new Float64Array(ctx), cnt = new Float64Array(ctx);
    const cache = model.createCache(ctx);
    let total = 0, n = 0;
    for (let w = 0; w < windows; w++) {
      cache.truncate(0);
      const s = w * ctx;
      const logits = model.forward(tokens.subarray(s, s + ctx), cache, { logits: 'all' });   // (ctx, V)
      for (let t = 0; t < ctx; t++) {
        const o2 = t * V, target = tokens[s + t + 1];
        let max = -Infinity;
        for (let j = 0; j < V; j++) if (logits[o2 + j] > max) max = logits[o2 + j];
        let z = 0;
        for (let j = 0; j < V; j++) z += Math.exp(logits[o2 + j] - max);
        const l = Math.log(z) + max - logits[o2 + target];
        sum[t] += l; cnt[t]++; total += l; n++;
      }
    }
    const loss = total / n;
    return {
      model: modelPath, corpus: o.file ?? o.corpus!, split: o.file !== undefined ? 'file' : split, ctx, windows, tokens: n, loss, perplexity: Math.exp(loss),
      bitsPerByte: loss / Math.LN2 / bytesPerToken,
      perPosition: Array.from(sum, (x, i) => x / cnt[i]), seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    model.dispose();
  }
}
