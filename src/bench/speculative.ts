// Speculative decoding speed table (PAPERS.md §2, MagicDec): decode throughput of B sequences of
// context S with speculation, next to plain decoding of the same sequences in the same run, and next
// to the cost model's prediction from step times measured here (T_D/T_T and T_V(γ)/T_T, printed, so a
// loss is explained by the numbers that cause it).
//
//   node dist/src/bench/speculative.js --shape smollm2-135m --dtype q8_0 --alpha 0.8 …   random weights, imposed α
//   node dist/src/bench/speculative.js --model models/long-context --draft-model PATH …  a trained model, real α
//
// Each prompt is prefilled once (untimed), by the target and by the draft model; every run starts
// from forks of those caches (the draft model's through DraftModel.adopt), so plain and speculative
// runs decode the same sequences and no run pays a prefill. Greedy, `--new-tokens` per sequence, eos
// ignored. Throughput is timed from the step after each sequence's first verification (γ 'auto''s
// calibration happens before it and is left out, for plain runs too) to the last token.
// Every batch also decodes plainly a second time: the row "plain again" is that run over the first,
// the noise of the speedups in the same table. With --baseline bracket (the default) a plain run
// follows every speculative one, and each speculative run is divided by the mean of the plain runs
// just before and just after it: a slow or fast minute on the machine then moves both sides of the
// ratio, where one plain run measured first would stand for the whole cell (--baseline first).
// With --shape and llama.cpp installed (tools/reference/), llama.cpp's own speculative decoding runs on
// the same GGUF files, threads, context, batch and γ (tools/reference/bench-llamacpp-speculative.mjs:
// node-llama-cpp's InputLookupTokenPredictor and DraftSequenceTokenPredictor), with real acceptance.
// Imposed α (random weights, where a draft never agrees): the drafter really runs (its cost is
// paid), then each of its γ tokens is replaced by the target's own next token (from the plain run)
// with probability α, else by another token — a labelled setting that makes acceptance a parameter
// while draft and verification costs stay real.
// Tiled caches (--tile-from P, with --shape and --shared-prompt): the first P prompt positions are
// prefilled for real, in the target and in the draft model, and their K/V rows repeated up to the context (kv-tiling.ts, as the long-context
// bench does), and the prompt's ids repeat with the same period, so 16K–64K caches cost seconds
// instead of a prefill of tens of minutes; a labelled setting for speed (random weights, imposed α),
// where what the cache holds changes no cost.

import { loadModel } from '../models/load.js';
import type { LanguageModel, ModelCache } from '../models/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { Scheduler } from '../generation/scheduler.js';
import { SequenceState, type GenerationResult } from '../generation/sequence.js';
import { PROMPT_LOOKUP, type Draft, type DraftRequest, type Drafter } from '../generation/drafter.js';
import { DraftModel } from '../generation/draft-model.js';
import { selfDrafter } from '../generation/self-draft.js';
import { combineSpeculativeStats, type SpeculativeStats } from '../generation/speculative.js';
import { GAMMA_CANDIDATES, GammaTuner, bestDraft, costRatio, type StepTimes } from '../generation/speculation-cost.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';
import { attentionBackend } from '../attention/create.js';
import { parseAttentionSpec } from '../attention/spec.js';
import type { LlamaModel } from '../models/llama.js';
import { recording, tile, type Recorded } from './kv-tiling.js';
import { NOISE_SENTENCES } from '../data/synthetic-needle.js';
import { Rng, uniform01 } from '../data/rng.js';
import { NAMES } from '../data/synthetic-words.js';
import { randomIds } from '../testing/random-model.js';
import { presetConfig, writeRandomGguf, type PresetName } from '../testing/checkpoints.js';
import { benchFile, benchDir } from './bench-files.js';
import { llamaCppScript, runLlamaCppSpeculative, type LlamaCppSpeculativeRow } from './llamacpp-child.js';
import { UsageError, type FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadavg } from 'node:os';

/** Draft proposals of `inner` (run for their cost), then each token replaced by the target's own
 *  with probability α, else by another id; always γ tokens, deterministic (greedy runs only). */
class ImposedAcceptance implements Drafter {
  readonly name: string;
  readonly vocabSize?: number;
  readonly reference = new Map<SequenceState, readonly number[]>();
  private readonly rand: () => number;
  constructor(private readonly inner: Drafter, private readonly alpha: number, private readonly V: number, seed = 7) {
    this.name = `${inner.name}, imposed α=${alpha}`;
    this.vocabSize = inner.vocabSize;
    this.rand = uniform01(seed);
  }
  propose(requests: readonly DraftRequest[]): Draft[] {
    this.inner.propose(requests);
    return requests.map((r) => {
      const ref = this.reference.get(r.seq) ?? [];
      const done = r.seq.tokens.length, tokens: number[] = [];
      for (let j = 0; j < r.gamma; j++) {
        const own = ref[done + j] ?? 0;
        tokens.push(this.rand() < this.alpha ? own : (own + 1) % this.V);
      }
      return { tokens };
    });
  }
  forget(seq: SequenceState): void { this.inner.forget(seq); this.reference.delete(seq); }
}

/** This process's CPU time in ms (all threads): on a shared, oversubscribed machine, wall time
 *  mostly measures the other jobs; CPU time measures the work (plus the pool's brief spin-waits). */
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

/** Gives row i's new sequence what a drafter keeps for it (the draft model: a fork of its prompt cache). */
type Seed = (seq: SequenceState, i: number) => void;

interface RunResult { tps: number; cpuTps: number; stats?: SpeculativeStats; tokens: number[][] }

/** B sequences decoded together from forks of `prefixes`. Throughput counts the tokens emitted after
 *  the step in which the last sequence got its second chunk (its first verification), over the time
 *  from that step to the last. */
async function decodeRun(model: LanguageModel, tokenizer: Tokenizer, prompts: readonly number[][], prefixes: readonly ModelCache[],
                         newTokens: number, speculate?: { draft: Drafter; gamma: number | 'auto' }, imposed?: ImposedAcceptance,
                         reference?: readonly number[][], tuner?: GammaTuner, seed?: Seed): Promise<RunResult> {
  const scheduler = new Scheduler(model, { stepTokens: 4096, ...(tuner ? { tuner } : {}) });
  const events: { step: number; n: number }[] = [], stepTime = new Map<number, [number, number]>(), second: number[] = [];
  const seqs = prompts.map((p) => new SequenceState(tokenizer, p.slice(-1), { temperature: 0, maxTokens: newTokens, ignoreEos: true, context: p.slice(0, -1) }, model.vocabSize));
  if (imposed && reference) seqs.forEach((s, i) => imposed.reference.set(s, reference[i]!));
  if (seed) seqs.forEach(seed);
  const results = await Promise.all(seqs.map(async (seq, i): Promise<GenerationResult> => {
    const it = scheduler.submit(seq, { prefix: { cache: prefixes[i]!, length: prompts[i]!.length - 1 }, speculate });
    let chunks = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      const step = scheduler.stats.steps;                         // chunks of one step are read before the next runs
      if (!stepTime.has(step)) stepTime.set(step, [performance.now(), cpuMs()]);
      events.push({ step, n: r.value.tokens.length });
      if (++chunks === 2) second.push(step);
    }
  }));
  const s0 = Math.max(...second), last = Math.max(...events.map((e) => e.step));
  const counted = events.filter((e) => e.step > s0).reduce((a, e) => a + e.n, 0);
  const [w1, c1] = stepTime.get(last)!, [w0, c0] = stepTime.get(s0)!;
  const stats = speculate ? combineSpeculativeStats(results.map((r) => r.speculative!)) : undefined;
  return { tps: counted / ((w1 - w0) / 1000), cpuTps: counted / ((c1 - c0) / 1000), stats, tokens: results.map((r) => r.tokens) };
}

/** The cache of prompt `p` (all but its last token) in `model`, prefilled once and kept in `done`.
 *  With `tiling` (the model loaded through `recording`), the first `from` positions are prefilled
 *  for real and their K/V rows repeated up to the prompt's end. */
function prefillOnce(model: LanguageModel, done: Map<string, ModelCache>, p: readonly number[], tiling?: { recorded: Recorded[]; from: number }): ModelCache {
  const key = p.join();
  let c = done.get(key);
  if (c !== undefined) return c;
  const before = tiling?.recorded.length ?? 0;
  c = model.createCache();
  const real = tiling ? tiling.from : p.length - 1;
  for (let i = 0; i < real; i += 256) model.forward(p.slice(i, Math.min(i + 256, real)), c, { phase: 'prefill' });
  if (tiling) {
    // this cache's layers are the ones its slot's creation recorded (the first cache of this model)
    const layers = tiling.recorded.slice(before);
    if (layers.length === 0) throw new Error('bench: tiling needs a fresh sequence slot for the prefill');
    (model as LlamaModel).reserveRows(c, p.length - 1);
    tile(layers, tiling.from, tiling.from, p.length - 1);
  }
  done.set(key, c);
  return c;
}

/** Step times of this batch on forks of the prefilled caches (the scheduler's own calibration), one
 *  per draft budget of the drafter. */
function measureTimes(model: LanguageModel, tokenizer: Tokenizer, prompts: readonly number[][], prefixes: readonly ModelCache[], drafter: Drafter, tuner: GammaTuner, seed?: Seed): StepTimes[] {
  const forks = prefixes.map((c, i) => c.fork(prompts[i]!.length - 1));
  const seqs = prompts.map((p) => {
    const seq = new SequenceState(tokenizer, p.slice(-1), { temperature: 0, maxTokens: 8, context: p.slice(0, -1) }, model.vocabSize);
    seq.fitContext(p.length - 1, model.contextLength);
    return seq;
  });
  if (seed) seqs.forEach(seed);
  try {
    const rows = forks.map((cache, i) => ({ cache, next: prompts[i]!.at(-1)!, ask: { seq: seqs[i]!, cache, gamma: 1 } }));
    return Array.from({ length: drafter.budgets?.length ?? 1 }, (_, b) => {
      const t = tuner.times(drafter, rows, b);
      if (t === undefined) throw new Error('bench: no KV memory left to calibrate');
      return t;
    });
  } finally {
    for (const s of seqs) drafter.forget(s);
    for (const f of forks) f.release();
  }
}

/** Table rows of llama.cpp's runs: each predictor next to llama.cpp's plain decoding of the same
 *  sequences (the cost-model columns are Tessera's and stay empty). */
function llamaCppLines(rows: readonly LlamaCppSpeculativeRow[], file: string): string[] {
  const name = `llama.cpp: ${basename(file)} (random)`;
  const names = { lookup: 'prompt lookup (InputLookupTokenPredictor)', draft: 'model (DraftSequenceTokenPredictor)' };
  return rows.filter((r) => r.predictor !== 'plain').map((r) => {
    const plain = rows.find((p) => p.predictor === 'plain' && p.ctx === r.ctx && p.parallel === r.parallel)!;
    if (r.predictor === 'costs') {
      // llama.cpp's own verification cost, measured like Tessera's T_V(γ)/T_T column (fastest of 3, wall
      // time): a token sampled at every position, and in brackets the forward pass alone
      const at = (xs: number[], g: number) => { const i = r.gammas!.indexOf(g); return i < 0 ? '–' : xs[i]!.toFixed(2); };
      const tv = GAMMA_CANDIDATES.map((g) => `${at(r.verifyOverTarget!, g)} (${at(r.forwardOverTarget!, g)})`).join(' / ');
      return `| ${name} | ${r.ctx} | ${r.parallel} | none: llama.cpp's verification cost (T_T = ${r.targetMs!.toFixed(1)} ms wall; in brackets its forward pass alone) | – | – | ${plain.decodeTokensPerCpuSecond.toFixed(2)} | – | – | – | – | – | – | – | – | ${tv} | – |`;
    }
    const rate = r.acceptanceRate === undefined ? '– (nothing drafted)' : r.acceptanceRate.toFixed(2);
    return `| ${name} | ${r.ctx} | ${r.parallel} | ${names[r.predictor as 'lookup' | 'draft']} | ${r.gamma} | real: ${rate} | ${plain.decodeTokensPerCpuSecond.toFixed(2)} | `
      + `${r.decodeTokensPerCpuSecond.toFixed(2)} | ${(r.decodeTokensPerCpuSecond / plain.decodeTokensPerCpuSecond).toFixed(2)} | – | ${(r.decodeTokensPerSecond / plain.decodeTokensPerSecond).toFixed(2)} | `
      + `${rate} (${r.validated} validated, ${r.refuted} refuted) | – | – | – | – | ${r.sameAsPlain ?? '–'}/${r.parallel} |`;
  });
}

/** α of the i.i.d. model from a run: accepted / (accepted + drafts with a rejection). */
const alphaOf = (s: SpeculativeStats) => (s.accepted + s.rejected > 0 ? s.accepted / (s.accepted + s.rejected) : 0);

/** Prompts of `ctx` tokens: random ids (random weights; with `shared`, the same ids in every row); RULER's noise haystack from a different
 *  sentence for each sequence ('haystack': a trained model continues it, copy-like text); or the
 *  most-frequent task's list of first names, 10 distinct ones in random order ('names': the next
 *  name is a guess for target and draft alike). */
function makePrompts(tokenizer: Tokenizer, V: number, ctx: number, batch: number, text: string, shared: boolean, period = ctx): number[][] {
  return Array.from({ length: batch }, (_, i) => {
    if (text === 'random') { const ids = randomIds(1000 + (shared ? 0 : i), period, V); return Array.from({ length: ctx }, (_, p) => ids[p % period]!); }
    const rng = new Rng(77 + i), parts: string[] = [];
    const names = rng.distinct(10, NAMES.length).map((k) => NAMES[k]!);
    for (let k = i; parts.join(' ').length < ctx * 8; k++) parts.push(text === 'names' ? names[rng.int(10)]! : NOISE_SENTENCES[k % NOISE_SENTENCES.length]!);
    return tokenizer.encode((text === 'names' ? 'Here is a list of words:\n' : '') + parts.join(' ')).slice(0, ctx);
  });
}

const FLAGS: FlagSpecs = {
  shape: { type: 'string', placeholder: 'PRESET', description: 'random-weight target of this shape (smollm2-135m), acceptance imposed' },
  model: { type: 'string', placeholder: 'PATH', description: 'a trained target model (real acceptance)' },
  dtype: { type: 'string', default: 'q8_0', placeholder: 'TYPE', description: 'bench file type with --shape' },
  'draft-model': { type: 'string', placeholder: 'PATH', description: 'draft model (default with --shape: a random 4-layer d=256 model of its vocabulary)' },
  contexts: { type: 'string', default: '1024,4096', placeholder: 'LIST', description: 'context lengths' },
  batches: { type: 'string', default: '1,4', placeholder: 'LIST', description: 'batch sizes' },
  gammas: { type: 'string', default: '4,auto', placeholder: 'LIST', description: 'draft lengths (auto: the cost model)' },
  drafts: { type: 'string', default: 'prompt-lookup,model', placeholder: 'LIST', description: 'draft kinds: prompt-lookup, model, self (one per --self-attention spec), self-budgets (all of them, the budget chosen by gamma auto)' },
  'draft-attention': { type: 'string', placeholder: 'SPEC', description: 'attention of the draft model (e.g. streaming:sinks=4,window=128)' },
  'self-attention': { type: 'string', default: 'streaming:sinks=16,window=256', placeholder: 'SPEC[;SPEC…]', description: 'draft attentions of the self drafts, ";"-separated: each one a draft kind of its own row (the model holds them all)' },
  texts: { type: 'string', default: 'haystack,names', placeholder: 'LIST', description: 'prompt texts with --model: haystack, names' },
  alpha: { type: 'number', default: 0.8, min: 0, max: 1, placeholder: 'A', description: 'imposed acceptance with --shape' },
  'new-tokens': { type: 'integer', default: 32, min: 4, placeholder: 'N', description: 'tokens generated per sequence' },
  threads: { type: 'integer', default: 2, min: 1, placeholder: 'N', description: 'threads' },
  kv: { type: 'string', default: 'f16', placeholder: 'f16|f32', description: 'KV cache type (both engines; f16 is the default of both)' },
  llamacpp: { type: 'string', default: 'auto', placeholder: 'auto|off|PATH', description: "llama.cpp's speculative rows with --shape (auto: when tools/reference is installed)" },
  'tile-from': { type: 'integer', min: 64, placeholder: 'P', description: 'with --shape and --shared-prompt: prefill P tokens for real and tile their K/V rows up to each context (speed only)' },
  'shared-prompt': { type: 'boolean', description: 'with --shape: every sequence of a batch gets the same random prompt (one prefill, forked: long contexts in less time)' },
  baseline: { type: 'string', default: 'bracket', placeholder: 'bracket|first', description: 'plain rate of each speedup: the mean of plain runs just before and after it (bracket), or the cell\'s first plain run (first; half the runs)' },
  out: { type: 'string', placeholder: 'PATH', description: 'write the table (markdown) here too' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Speculative decoding speed (MagicDec): B sequences of context S decoded with speculation and plainly\n' +
    'in one run, next to the cost model\'s prediction from step times measured here.');
  if (!v) return 0;
  const list = (x: unknown) => String(x).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const contexts = list(v.contexts).map(Number), batches = list(v.batches).map(Number);
  const gammas = list(v.gammas).map((g) => (g === 'auto' ? 'auto' as const : Number(g)));
  const kinds = list(v.drafts), newTokens = v['new-tokens'] as number, threads = v.threads as number, alpha = v.alpha as number;
  const shape = v.shape as string | undefined, random = shape !== undefined;
  if (random === (v.model !== undefined)) throw new UsageError('give one of --shape PRESET (random weights) or --model PATH');
  const targetPath = random ? benchFile(shape!, v.dtype as string, (f) => process.stderr.write(`writing ${f}…\n`)) : v.model as string;
  let draftPath = v['draft-model'] as string | undefined;
  if (draftPath === undefined && random) {
    const c = presetConfig(shape as PresetName);
    draftPath = join(benchDir(), shape!, `draft-d256-l4-${v.dtype as string}.gguf`);
    if (!existsSync(draftPath)) {
      writeRandomGguf(draftPath, { ...c, hidden_size: 256, intermediate_size: 640, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64 },
        v.dtype as 'q8_0', 2, `${shape}-draft`);
    }
  }
  if (kinds.includes('model') && draftPath === undefined) throw new UsageError('--drafts model needs --draft-model PATH');
  const baseline = v.baseline as string;
  if (baseline !== 'bracket' && baseline !== 'first') throw new UsageError(`--baseline ${baseline}: choose bracket or first`);
  const kv = v.kv as string, shared = v['shared-prompt'] === true, tileFrom = v['tile-from'] as number | undefined;
  if (tileFrom !== undefined && !(random && shared)) throw new UsageError('--tile-from needs --shape and --shared-prompt (one prompt per batch, prefilled once, tiled)');
  if (kv !== 'f16' && kv !== 'f32') throw new UsageError(`--kv ${kv}: choose f16 or f32`);
  const llama = random ? llamaCppScript(v.llamacpp as string, 'bench-llamacpp-speculative.mjs') : { note: "llama.cpp rows need --shape (a GGUF file)" };
  const B = Math.max(...batches), load0 = loadavg()[0]!;
  const draftAttention = v['draft-attention'] as string | undefined;
  const selfSpecs = String(v['self-attention']).split(';').map((x) => x.trim()).filter((x) => x.length > 0);
  const selfKinds = kinds.includes('self') || kinds.includes('self-budgets');
  if (selfKinds && selfSpecs.length === 0) throw new UsageError('--drafts self needs --self-attention SPEC[;SPEC…]');
  const unknown = kinds.find((k) => !['prompt-lookup', 'model', 'self', 'self-budgets'].includes(k));
  if (unknown !== undefined) throw new UsageError(`--drafts: unknown draft kind ${unknown}; choose among prompt-lookup, model, self, self-budgets`);
  const lines = [
    `| target | ctx | batch | draft | γ | α | plain tok/CPU-s | speculative tok/CPU-s | speedup (CPU) | predicted | speedup (wall) | acceptance rate | mean acc. length | per-position acceptance (j = 1, 2, …) | T_D/T_T | T_V(γ)/T_T (γ=1,2,3,4,6,8) | output = plain |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const started = new Date().toISOString();
  const texts = random ? ['random'] : list(v.texts);
  const targetName = (text: string) => (random ? `${shape} ${v.dtype as string} (random)` : `${targetPath}, ${text}`);
  for (const ctx of contexts) {
    const per = ctx + newTokens + 16;
    const pages = Math.ceil(per / KV_PAGE_TOKENS) + 2;
    // KV pages and sequence slots: the prompts prefilled once and kept for the whole context (one per
    // row and text, or with --shared-prompt one), every row's own pages past its prompt (a copied
    // partial page, the new tokens, a calibration's γ + 1), and the runs' and calibrations' forks
    const growth = Math.ceil((newTokens + 32) / KV_PAGE_TOKENS) + 2;
    const kept = shared ? 1 : texts.length * B;
    const kvPages = kept * pages + 3 * B * growth;
    const opts = { threads, contextLength: per, parallel: kept + 2 * B + 2, kvBudget: kvPages * KV_PAGE_TOKENS, cacheDType: kv as 'f16' | 'f32' };
    const tiled = tileFrom !== undefined && ctx - 1 > tileFrom, recorded: Recorded[] = [];
    const { model, tokenizer } = await loadModel(targetPath, { ...opts, ...(selfKinds ? { draftAttention: selfSpecs } : {}),
      ...(tiled ? { attention: recording(attentionBackend(parseAttentionSpec('dense')), tileFrom, recorded) } : {}) });
    const tiling = tiled ? { recorded, from: tileFrom } : undefined;
    const prefilled = new Map<string, ModelCache>(), draftPrefilled = new Map<string, ModelCache>();   // one prefill per distinct prompt of this context
    // the draft model's caches are planned as the target's: prefilled prompts (tiled alike), forks of them
    const draftRecorded: Recorded[] = [], draftTiling = tiled ? { recorded: draftRecorded, from: tileFrom } : undefined;
    const draftBackend = attentionBackend(parseAttentionSpec(draftAttention ?? 'dense'));
    const draft = kinds.includes('model')
      ? await loadModel(draftPath!, { ...opts, attention: draftTiling ? recording(draftBackend, tileFrom!, draftRecorded) : draftBackend })
      : undefined;
    try {
      for (const [b, text] of batches.flatMap((b) => texts.map((t) => [b, t] as const))) {
        process.stderr.write(`bench: ctx ${ctx} batch ${b} ${text}: prefill…\n`);
        const prompts = makePrompts(tokenizer, model.vocabSize, ctx, b, text, shared, tiled ? tileFrom : ctx);
        const prefixes = prompts.map((p) => prefillOnce(model, prefilled, p, tiling));
        // the draft model's prompt caches likewise, once per distinct prompt: every run's draft cache
        // starts from a fork of them (DraftModel.adopt), so no run pays the draft's prefill
        const draftPrefixes = draft ? prompts.map((p) => prefillOnce(draft.model, draftPrefilled, p, draftTiling)) : [];
        {
          await decodeRun(model, tokenizer, prompts, prefixes, Math.min(8, newTokens));        // warm-up, untimed
          const plain = await decodeRun(model, tokenizer, prompts, prefixes, newTokens);
          process.stderr.write(`bench: ctx ${ctx} batch ${b}: plain ${plain.tps.toFixed(2)} tok/s, ${plain.cpuTps.toFixed(2)} tok/CPU-s\n`);
          const again = await decodeRun(model, tokenizer, prompts, prefixes, newTokens);
          const same = again.tokens.filter((t, i) => t.join() === plain.tokens[i]!.join()).length;
          process.stderr.write(`bench: ctx ${ctx} batch ${b}: plain again ${again.cpuTps.toFixed(2)} tok/CPU-s (${(again.cpuTps / plain.cpuTps).toFixed(2)}× the first)\n`);
          const noiseRow = lines.push('') - 1;   // filled in at the end of the cell, with the spread of all its plain runs
          const plains = [plain, again];
          let plainSame = same;
          // one tuner for the calibrations shown and the auto runs of every draft kind, as one scheduler
          // keeps it: T_T and T_V(γ) are the target's, measured once per batch and context; T_D per drafter. CPU clock.
          const tuner = new GammaTuner(model, 3, cpuMs);
          // each self-draft attention is a draft kind of its own (a fixed budget); 'self-budgets' drafts
          // through all of them, the cost model choosing the budget with γ (gamma auto only)
          const drafters = kinds.flatMap((kind) => kind === 'self'
            ? selfSpecs.map((spec, i) => ({ kind: `self (${spec})`, inner: selfDrafter(model, [i]) }))
            : kind === 'self-budgets' ? [{ kind: 'self, budget chosen by the cost model', inner: selfDrafter(model) }]
              : [{ kind, inner: kind === 'prompt-lookup' ? PROMPT_LOOKUP : new DraftModel(draft!.model, { name: 'draft model' }) as Drafter }]);
          for (const { kind, inner } of drafters) {
            const drafter = random ? new ImposedAcceptance(inner, alpha, model.vocabSize) : inner;
            const seed = inner instanceof DraftModel ? (seq: SequenceState, i: number) => inner.adopt(seq, draftPrefixes[i]!.fork(), prompts[i]!.slice(0, -1)) : undefined;
            const perBudget = measureTimes(model, tokenizer, prompts, prefixes, drafter, tuner, seed), times = perBudget[0]!;
            const tv = GAMMA_CANDIDATES.map((g) => { const t = times.verify.get(g); return t === undefined ? '–' : (t / times.target).toFixed(2); }).join(' / ');
            for (const gamma of gammas) {
              if ((inner.budgets?.length ?? 1) > 1 && gamma !== 'auto') continue;          // several budgets: chosen by gamma auto
              const calibrated = tuner.calibrations, stopped = tuner.stopped;
              const run = await decodeRun(model, tokenizer, prompts, prefixes, newTokens, { draft: drafter, gamma }, drafter instanceof ImposedAcceptance ? drafter : undefined, plain.tokens, tuner, seed);
              const recalibrations = tuner.calibrations - calibrated;     // inside the timed run: a batch size or context bucket not measured before
              const same = run.tokens.filter((t, i) => t.join() === plain.tokens[i]!.join()).length;
              // the plain rate this run is divided by: the plain run before it, or the mean of that and one after it
              const before = plains.at(-1)!;
              let base = { tps: plain.tps, cpuTps: plain.cpuTps };
              if (baseline === 'bracket') {
                const after = await decodeRun(model, tokenizer, prompts, prefixes, newTokens);
                plains.push(after);
                plainSame = Math.min(plainSame, after.tokens.filter((t, i) => t.join() === plain.tokens[i]!.join()).length);
                base = { tps: (before.tps + after.tps) / 2, cpuTps: (before.cpuTps + after.cpuTps) / 2 };
              }
              const s = run.stats!, a = alphaOf(s);
              // several budgets: the best of them at the run's α (the run's own choice used α per budget)
              const best = bestDraft(perBudget.map(() => a), perBudget);
              const predicted = gamma === 'auto' ? 1 / best.ratio : 1 / costRatio(gamma, a, times);
              const g = gamma === 'auto' ? `auto (${best.gamma}${perBudget.length > 1 && best.gamma > 0 ? ` with budget ${best.budget}` : ''} at measured α; ${recalibrations} calibrations in the run${tuner.stopped > stopped ? '; stopped by its realised speed-up' : ''})` : String(gamma);
              const budgets = s.byBudget ? ` (verifications per budget: ${Object.entries(s.byBudget).map(([n, x]) => `${n}: ${x.steps}, acceptance ${x.drafted > 0 ? (x.accepted / x.drafted).toFixed(2) : '–'}`).join('; ')})` : '';
              lines.push(`| ${targetName(text)} | ${ctx} | ${b} | ${kind}${budgets}${random ? ' (imposed)' : ''} | ${g} | ${random ? `${alpha} imposed, ${a.toFixed(2)} measured` : a.toFixed(2)} | `
                + `${base.cpuTps.toFixed(2)} | ${run.cpuTps.toFixed(2)} | ${(run.cpuTps / base.cpuTps).toFixed(2)} | ${predicted.toFixed(2)} | ${(run.tps / base.tps).toFixed(2)} | ${s.acceptanceRate.toFixed(2)} | ${s.meanAcceptedLength.toFixed(2)} | ${s.perPosition.length > 0 ? s.perPosition.map((x) => x.toFixed(2)).join(' / ') : '–'} | `
                + `${perBudget.map((t) => (t.draft / t.target).toFixed(2)).join(' / ')} | ${tv} | ${same}/${b} |`);
              process.stderr.write(lines.at(-1) + '\n');
            }
          }
          const rates = plains.map((p) => p.cpuTps), lo = Math.min(...rates), hi = Math.max(...rates);
          lines[noiseRow] = `| ${targetName(text)} | ${ctx} | ${b} | none: plain again (noise; the cell's ${plains.length} plain runs ${lo.toFixed(2)}–${hi.toFixed(2)} tok/CPU-s, ${(hi / lo).toFixed(2)}× apart) | 0 | – | `
            + `${plain.cpuTps.toFixed(2)} | ${again.cpuTps.toFixed(2)} | ${(again.cpuTps / plain.cpuTps).toFixed(2)} | 1.00 | ${(again.tps / plain.tps).toFixed(2)} | – | – | – | – | – | ${plainSame}/${b} |`;
        }
      }
    } finally {
      for (const c of [...prefilled.values(), ...draftPrefilled.values()]) c.release();
      model.dispose(); draft?.model.dispose();
    }
    if (llama.script) {
      const gamma = gammas.find((g): g is number => g !== 'auto') ?? 4;
      const predictors = ['plain', ...(kinds.includes('prompt-lookup') ? ['lookup'] : []), ...(kinds.includes('model') ? ['draft'] : []), 'costs'];
      process.stderr.write(`bench: ctx ${ctx}: llama.cpp (${predictors.join(', ')}, γ = ${gamma})…\n`);
      lines.push(...llamaCppLines(runLlamaCppSpeculative(llama.script, targetPath, draftPath, [ctx], batches, gamma, threads, newTokens, predictors, kv, shared), targetPath));
    }
  }
  if (llama.note) lines.push('', llama.note);
  const notes = [
    `Command: node dist/src/bench/speculative.js ${process.argv.slice(2).map((a) => (/[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, "'\\''")}'` : a)).join(' ')}`,
    `Started ${started}, ${threads} threads, load average ${load0.toFixed(1)} at the start and ${loadavg()[0]!.toFixed(1)} at the end (1-minute).`,
    ...(shared ? ['Every sequence of a batch has the same random prompt (prefilled once; the rows decode from forks of that cache, llama.cpp prefills each of its sequences).'] : []),
    ...(tileFrom !== undefined ? [`Tiled caches: contexts above ${tileFrom} tokens prefill ${tileFrom} random tokens for real (target and draft model) and repeat their K/V rows (and the prompt's ids) up to the context; llama.cpp prefills the whole prompt.`] : []),
    baseline === 'bracket'
      ? 'Every speculative run is followed by a plain run; its speedup divides it by the mean of the plain runs just before and after it ("plain tok/CPU-s" is that mean). The noise row: the second plain run over the first, and the spread of all the cell\'s plain runs.'
      : 'Every speedup divides by the cell\'s first plain run ("plain tok/CPU-s"); the noise row: the second plain run over the first.',
    `Greedy, ${newTokens} new tokens per sequence, eos ignored, ${kv} KV cache; "output = plain": sequences whose speculative output is token-identical to the plain run's.`,
    `target ${targetPath}${draftPath && kinds.includes('model') ? `, draft model ${draftPath}${draftAttention ? ` (attention ${draftAttention})` : ''}` : ''}${selfKinds ? `, self drafts through ${selfSpecs.join('; ')}` : ''}.`,
    'Speeds are tokens per CPU-second of this process (all its threads; the machine was shared), so the runs compare the work they did; "speedup (wall)" is the same ratio in wall time. T_T, T_D and T_V(γ) are measured in CPU time too (GammaTuner, fastest of 3).',
    'α: the i.i.d. acceptance estimate accepted / (accepted + drafts with a rejection); predicted: 1 / (T_SD/T_AR) of the cost model with that α and the times measured before the runs; auto: its best γ at that α.',
  ];
  const text = [...notes.map((n) => `- ${n}`), '', ...lines].join('\n') + '\n';
  process.stdout.write(text);
  if (v.out !== undefined) writeFileSync(v.out as string, text);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
