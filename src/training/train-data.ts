// Data for a training run: the tokenizer (trained on the corpus train split, or read from a file),
// the token streams of both splits, the training batch source the Trainer draws from (resumable
// cursor), and fixed held-out batches for evaluation. Synthetic tasks give masked batches: only the
// answer positions are scored (targets −100 elsewhere), and held-out sequences come from another seed.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCorpus, type CorpusDocument } from '../data/corpora.js';
import { trainBpe, toTokenizerJson, type BpeModel } from '../data/bpe-trainer.js';
import { BpeEncoder, bpeFromTokenizerJson } from '../data/bpe-encoder.js';
import { TokenBatcher, TaskBatcher, sequentialBatches, tokenizeCached, type BatchCursor, type TaskCursor } from '../data/batches.js';
import { associativeRecall, inductionCopy } from '../data/synthetic-recall.js';
import { deriveSeed } from '../data/rng.js';
import { CHAT_ASSISTANT, CHAT_END, CHAT_SPECIAL_TOKENS, CHAT_TEMPLATE, CHAT_USER, chatConversations, renderConversation } from '../data/chat-examples.js';
import type { Batch, BatchSource } from './batches.js';
import type { ChatData, CorpusData, TaskData, TrainConfig } from './train-config.js';
import { readTextFile } from '../formats/regular-file.js';
import { DEFAULT_MAX_TOKENIZER_FILE_BYTES } from '../tokenizer/hf-tokenizer.js';

export const EOT = '<|endoftext|>';
/** Id 0 pads task sequences (never a task token: tasks use ids from 1). */
export const TASK_PAD = 0;

export interface RunData {
  vocabSize: number;
  train: BatchSource;
  /** Fixed held-out batches (targets −100 where not scored). */
  evalBatches: Batch[];
  /** tokenizer.json + tokenizer_config.json for the exported model (null for synthetic tasks). */
  tokenizerJson: object | null;
  tokenizerConfig: object | null;
  /** generation_config.json for the exported model (chat runs: every id that ends a reply), or null. */
  generationConfig: object | null;
  eotId: number | null;
  /** Token counts (corpus runs). */
  trainTokens?: number;
  validationTokens?: number;
}

/** Trains (or reuses from a cache keyed by corpus text + size) a byte-level BPE on the train split. */
export function corpusTokenizer(corpus: CorpusData['corpus'], vocabSize: number, train: readonly CorpusDocument[], cacheDir = join(tmpdir(), 'tessera-bpe-cache')): BpeModel {
  const h = createHash('sha256').update(`${corpus}\0${vocabSize}\0`);
  for (const d of train) h.update(`${d.text.length}:`).update(d.text);
  const file = join(cacheDir, `${corpus}-${vocabSize}-${h.digest('hex').slice(0, 16)}.json`);
  if (existsSync(file)) {
    try { return bpeFromTokenizerJson(JSON.parse(readFileSync(file, 'utf8'))); } catch { /* damaged: retrain */ }
  }
  const model = trainBpe(train.map((d) => d.text), { vocabSize, specialTokens: [EOT] });
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(toTokenizerJson(model)));
  renameSync(tmp, file);
  return model;
}

/** tokenizer_config.json for a trained BPE: <|endoftext|> separates documents, so it is BOS (prepended to
 *  prompts: a prompt starts a document, as in training) and EOS (ends generation). */
export function tokenizerConfigFor(contextLength: number, chat = false): object {
  return { bos_token: EOT, eos_token: EOT, add_bos_token: true, add_eos_token: false, clean_up_tokenization_spaces: false,
    tokenizer_class: 'PreTrainedTokenizerFast', model_max_length: contextLength, ...(chat ? { chat_template: CHAT_TEMPLATE } : {}) };
}

/** Draws each batch's rows from two batchers: the plain corpus first, then the chat text. */
class MixedBatches implements BatchSource {
  constructor(private readonly text: TokenBatcher, private readonly chat: TokenBatcher) {}
  next(): Batch {
    const a = this.text.next(), b = this.chat.next();
    const join = (x: Int32Array, y: Int32Array) => { const o = new Int32Array(x.length + y.length); o.set(x); o.set(y, x.length); return o; };
    return { ids: join(a.input, b.input), targets: join(a.target, b.target), B: a.batchSize + b.batchSize, T: a.seqLen };
  }
  getState(): { text: BatchCursor; chat: BatchCursor } { return { text: this.text.cursor(), chat: this.chat.cursor() }; }
  setState(s: unknown): void {
    const st = s as { text?: BatchCursor; chat?: BatchCursor } | null;
    if (!st?.text || !st.chat) throw new Error(`a chat run's data cursor must be {text, chat}, got ${JSON.stringify(s)}`);
    this.text.restore(st.text);
    this.chat.restore(st.chat);
  }
}

/** Token ids of the chat conversations built from the train split (cached like the corpus tokens). */
function chatTokens(corpusName: string, train: readonly CorpusDocument[], chat: ChatData, seed: number, tokenizerJson: object, enc: BpeEncoder): Int32Array {
  const conversations = chatConversations(train.map((d) => d.text), { maxReplyTokens: chat.maxReplyTokens, countTokens: (s) => enc.encode(s).length, seed });
  const documents = conversations.map((c) => ({ text: renderConversation(c, EOT) }));
  return tokenizeCached({ corpusName: `${corpusName}-chat-train`, tokenizerJson, documents, encode: (s) => enc.encode(s) });
}

/** Adapts a data/ TokenBatcher to the Trainer's BatchSource. */
class CorpusBatches implements BatchSource {
  constructor(private readonly b: TokenBatcher) {}
  next(): Batch {
    const x = this.b.next();
    return { ids: x.input, targets: x.target, B: x.batchSize, T: x.seqLen };
  }
  getState(): BatchCursor { return this.b.cursor(); }
  setState(s: unknown): void { this.b.restore(s as BatchCursor); }
}

/** Adapts a TaskBatcher: targets outside the answer mask become −100. */
class TaskBatches implements BatchSource {
  constructor(private readonly b: TaskBatcher) {}
  next(): Batch { return maskedToBatch(this.b.next()); }
  getState(): TaskCursor { return this.b.cursor(); }
  setState(s: unknown): void { this.b.restore(s as TaskCursor); }
}

function maskedToBatch(x: { input: Int32Array; target: Int32Array; mask: Float32Array; batchSize: number; seqLen: number }): Batch {
  const targets = Int32Array.from(x.target, (t, i) => (x.mask[i] > 0 ? t : -100));
  return { ids: x.input, targets, B: x.batchSize, T: x.seqLen };
}

/** One example of a synthetic task (ids 1 … vocabSize−1; sequences of exactly `context` tokens). */
export function taskExample(d: TaskData, context: number, seed: number) {
  if (d.task === 'recall') {
    return associativeRecall({ seed, vocabSize: d.vocabSize, firstId: 1, length: context, numQueries: d.queries ?? 8 });
  }
  return inductionCopy({ seed, vocabSize: d.vocabSize, firstId: 1, length: context, segmentLength: d.segment });
}

function taskData(cfg: TrainConfig, d: TaskData): RunData {
  const make = (seed: number) => taskExample(d, cfg.context, seed);
  const opts = { batchSize: cfg.batch, seqLen: cfg.context, padId: TASK_PAD };
  const train = new TaskBatches(new TaskBatcher(make, { ...opts, seed: cfg.seed }));
  // Held-out sequences: a seed stream the training stream never uses.
  const held = new TaskBatcher(make, { ...opts, seed: deriveSeed(cfg.seed, 0x5eed, 1) });
  const evalBatches = Array.from({ length: cfg.evalBatches }, () => maskedToBatch(held.next()));
  return { vocabSize: d.vocabSize, train, evalBatches, tokenizerJson: null, tokenizerConfig: null, generationConfig: null, eotId: null };
}

/** Token ids of a corpus split with a tokenizer.json (cached on disk by tokenizer hash). */
export function corpusTokens(corpusName: string, split: string, docs: readonly CorpusDocument[], tokenizerJson: object, encode: (s: string) => number[], eotId: number): Int32Array {
  return tokenizeCached({ corpusName: `${corpusName}-${split}`, tokenizerJson, documents: docs, encode, eotId });
}

function corpusData(cfg: TrainConfig, d: CorpusData): RunData {
  const corpus = loadCorpus(d.corpus);
  let bpe: BpeModel;
  if (d.tokenizer) {
    try { bpe = bpeFromTokenizerJson(JSON.parse(readTextFile(d.tokenizer, DEFAULT_MAX_TOKENIZER_FILE_BYTES, 'data.tokenizer'))); } catch (e) {
      throw new Error(`data.tokenizer ${d.tokenizer}: ${(e as Error).message}`);
    }
  } else {
    bpe = corpusTokenizer(d.corpus, d.vocabSize ?? 2048, corpus.train);
  }
  if (d.chat) bpe = { ...bpe, specialTokens: [...bpe.specialTokens, ...CHAT_SPECIAL_TOKENS.filter((t) => !bpe.specialTokens.includes(t))] };
  const enc = new BpeEncoder(bpe);
  const eotId = enc.specialId(EOT);
  if (eotId === undefined) throw new Error(`the tokenizer has no ${EOT} token (documents are separated by it)`);
  const tokenizerJson = toTokenizerJson(bpe);
  const encode = (s: string) => enc.encode(s);
  const trainIds = corpusTokens(d.corpus, 'train', corpus.train, tokenizerJson, encode, eotId);
  const validIds = corpusTokens(d.corpus, 'validation', corpus.validation, tokenizerJson, encode, eotId);
  let train: BatchSource;
  let generationConfig: object | null = null;
  if (d.chat) {
    // At least one row of each kind per batch; the chat rows draw from their own seed stream.
    const chatRows = Math.min(cfg.batch - 1, Math.max(1, Math.round(cfg.batch * d.chat.fraction)));
    if (cfg.batch < 2) throw new Error(`data.chat needs batch ≥ 2 (one plain and one chat sequence per batch), got ${cfg.batch}`);
    const chatIds = chatTokens(d.corpus, corpus.train, d.chat, cfg.seed, tokenizerJson, enc);
    train = new MixedBatches(
      new TokenBatcher(trainIds, { batchSize: cfg.batch - chatRows, seqLen: cfg.context, seed: cfg.seed }),
      new TokenBatcher(chatIds, { batchSize: chatRows, seqLen: cfg.context, seed: deriveSeed(cfg.seed, 0xc4a7) }));
    // <|end|> ends a turn; a role token or <|endoftext|> in a reply means the turn is over too.
    generationConfig = { eos_token_id: [eotId, ...[CHAT_END, CHAT_USER, CHAT_ASSISTANT].map((t) => enc.specialId(t)!)] };
  } else {
    train = new CorpusBatches(new TokenBatcher(trainIds, { batchSize: cfg.batch, seqLen: cfg.context, seed: cfg.seed }));
  }
  const evalBatches: Batch[] = [];
  for (const b of sequentialBatches(validIds, cfg.batch, cfg.context)) {
    if (evalBatches.length >= cfg.evalBatches || b.batchSize < cfg.batch) break;
    evalBatches.push({ ids: b.input, targets: b.target, B: b.batchSize, T: b.seqLen });
  }
  if (evalBatches.length === 0) throw new Error(`the ${d.corpus} validation split (${validIds.length} tokens) holds no batch of ${cfg.batch} × ${cfg.context}`);
  return {
    vocabSize: enc.vocabSize, train, evalBatches, tokenizerJson, tokenizerConfig: tokenizerConfigFor(cfg.context, d.chat !== undefined), generationConfig, eotId,
    trainTokens: trainIds.length, validationTokens: validIds.length,
  };
}

/** Everything a run needs from its data spec. */
export function prepareData(cfg: TrainConfig): RunData {
  return 'task' in cfg.data ? taskData(cfg, cfg.data) : corpusData(cfg, cfg.data);
}

/** The whole validation split as token ids (for the final evaluation over more windows). */
export function validationTokens(cfg: TrainConfig, data: RunData): Int32Array | null {
  if ('task' in cfg.data || !data.tokenizerJson) return null;
  const corpus = loadCorpus(cfg.data.corpus);
  const enc = new BpeEncoder(bpeFromTokenizerJson(data.tokenizerJson));
  return corpusTokens(cfg.data.corpus, 'validation', corpus.validation, data.tokenizerJson, (s) => enc.encode(s), data.eotId!);
}
