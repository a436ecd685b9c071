// Flags shared by the subcommands that load a model or sample from it, and loading with a progress bar.

import { existsSync } from 'node:fs';
import { CliError, type FlagSpec, type FlagSpecs, type FlagValues } from './args.js';
import { maxThreads } from '../runtime/pool.js';
import type { LoadOptions, LoadProgress } from '../models/load.js';
import { parseAttentionSpec } from '../attention/spec.js';
import type { SamplingOptions } from '../generation/sampler.js';
import { parseSpeculateSpec } from '../generation/speculative.js';
import { DraftModel } from '../generation/draft-model.js';
import type { SpeculateOptions } from '../generation/scheduler.js';
import { Tessera, type TesseraOptions } from '../api/tessera.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';

export const MODEL_HINT = 'expected a Hugging Face model folder (config.json + *.safetensors) or a .gguf file';

/** --threads of every command that runs a model: its range is the thread pool's, so a value past it
 *  is a usage error naming the flag (exit 2), not a failure of the pool after loading. */
export const THREADS_FLAG: FlagSpec = { type: 'integer', min: 1, max: maxThreads(), placeholder: 'N', description: 'threads including the main one (default: all cores; at most 4 × the cores)' };

export const MODEL_FLAGS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'Hugging Face model folder or .gguf file', short: 'm' },
  threads: THREADS_FLAG,
  ctx: { type: 'integer', min: 1, placeholder: 'N', description: 'context length / KV-cache capacity in tokens (default: min(model max, 4096))' },
  quantize: { type: 'string', choices: ['q8_0'], placeholder: 'q8_0', description: 'quantise f32/f16/bf16 weights while loading' },
  'kv-type': { type: 'string', choices: ['f32', 'f16'], placeholder: 'f32|f16', description: "KV-cache storage type (default f16, as llama.cpp's; f32 doubles the KV memory)" },
  'kv-budget': { type: 'string', placeholder: 'N|SIZE', description: 'KV memory shared by all sequences: tokens (32768) or a size (2GiB); default 4 contexts (see `tessera info`)' },
  parallel: { type: 'integer', min: 1, max: 4096, placeholder: 'N', description: 'most sequences at once (default 16, fewer if sparse attention state would not fit)' },
  attention: { type: 'string', placeholder: 'SPEC', description: 'attention backend: dense (default), or e.g. magicpig:K=10,L=150' },
};

// Defaults are llama.cpp's (common/common.h), so a run here and there can be compared.
export const SAMPLING_FLAGS: FlagSpecs = {
  temperature: { type: 'number', min: 0, default: 0.8, placeholder: 'T', description: 'sampling temperature; 0 = greedy', short: 't' },
  'top-k': { type: 'integer', min: 0, default: 40, placeholder: 'K', description: 'keep the K most likely tokens; 0 = off' },
  'top-p': { type: 'number', min: 0, exclusiveMin: true, max: 1, default: 0.95, placeholder: 'P', description: 'nucleus sampling mass; 1 = off' },
  'min-p': { type: 'number', min: 0, max: 1, default: 0.05, placeholder: 'P', description: 'drop tokens below P × the top probability; 0 = off' },
  'repeat-penalty': { type: 'number', min: 0, exclusiveMin: true, default: 1, placeholder: 'R', description: 'repetition penalty over the last 64 tokens; 1 = off' },
  seed: { type: 'integer', placeholder: 'S', description: 'random seed (default: random; printed with the stats)' },
  speculate: { type: 'string', placeholder: 'SPEC', description: 'speculative decoding, lossless: draft=prompt-lookup[,gamma=4]; self-speculation draft=streaming:window=256 | snapkv:budget=512 | magicpig:dense=0 (window=64/256/1024: draft budgets the cost model chooses among, with gamma auto); a small model sharing the tokenizer draft=model:PATH[,gamma=N][,attention=SPEC] (attention last); gamma=auto or just auto: γ from the cost model' },
};

/** Stop strings, for the commands that generate (generate, and chat per reply). */
export const STOP_FLAGS: FlagSpecs = {
  stop: { type: 'string', multiple: true, placeholder: 'STR', description: 'stop before this text' },
};
export const stopFrom = (v: FlagValues): string[] => (v.stop as string[] | undefined) ?? [];

export function samplingFrom(v: FlagValues): SamplingOptions {
  const o: SamplingOptions = {
    temperature: v.temperature as number, topK: v['top-k'] as number, topP: v['top-p'] as number,
    minP: v['min-p'] as number, repetitionPenalty: v['repeat-penalty'] as number,
  };
  if (v.seed !== undefined) o.seed = v.seed as number;
  return o;
}

/** The --speculate flag (checked before the model loads): the generate option, loading a draft model
 *  (with the target's threads, context and sequence slots) and checking it shares the target's
 *  tokenizer. `dispose` frees the draft model. */
export function speculationFor(v: FlagValues): { load(target: Tessera): Promise<{ speculate?: SpeculateOptions; dispose(): void }> } {
  if (v.speculate === undefined) return { load: async () => ({ dispose: () => {} }) };
  const { draft, gamma } = speculateFrom(v)!;
  if (draft === 'prompt-lookup' || draft === 'self') return { load: async () => ({ speculate: { draft, gamma }, dispose: () => {} }) };
  if (!existsSync(draft.model)) throw new CliError(`--speculate: the draft model path ${draft.model} does not exist`, MODEL_HINT);
  let attention: ReturnType<typeof parseAttentionSpec> | undefined;
  try { attention = draft.attention === undefined ? undefined : parseAttentionSpec(draft.attention); } catch (e) { throw new CliError(`--speculate: ${(e as Error).message}`, 'see --help'); }
  return {
    async load(target) {
      const progress = progressReporter('loading draft');
      let d: Tessera;
      try {
        d = await Tessera.load(draft.model, {
          onProgress: progress.onProgress, contextLength: target.contextLength, parallel: target.model.parallel,
          // as many KV tokens as the target: every sequence the target holds can hold its draft cache
          ...(target.model.kvPages !== undefined ? { kvBudget: target.model.kvPages.pages * KV_PAGE_TOKENS } : {}),
          ...(v.threads !== undefined ? { threads: v.threads as number } : {}), ...(attention ? { attention } : {}),
        });
      } finally { progress.done(); }
      const differs = tokenizerDifference(d, target);
      if (differs !== undefined) { d.dispose(); throw new CliError(`--speculate: the draft model ${draft.model} ${differs}`, 'a draft model must share the model\'s tokenizer'); }
      const drafter = new DraftModel(d.model, { name: `draft model ${d.name}` });
      return { speculate: { draft: drafter, gamma }, dispose: () => { drafter.dispose(); d.dispose(); } };
    },
  };
}

/** How the draft's tokenizer differs from the target's, or undefined when they agree id for id. */
function tokenizerDifference(draft: Tessera, target: Tessera): string | undefined {
  const a = draft.tokenizer, b = target.tokenizer;
  if (a.vocabSize !== b.vocabSize || draft.model.vocabSize !== target.model.vocabSize) {
    return `has a vocabulary of ${draft.model.vocabSize} tokens (tokenizer ${a.vocabSize}) but the model has ${target.model.vocabSize} (tokenizer ${b.vocabSize})`;
  }
  for (let id = 0; id < a.vocabSize; id++) {
    if (a.idToToken(id) !== b.idToToken(id)) return `has token ${JSON.stringify(a.idToToken(id))} at id ${id} where the model has ${JSON.stringify(b.idToToken(id))}`;
  }
  return undefined;
}

function speculateFrom(v: FlagValues): ReturnType<typeof parseSpeculateSpec> | undefined {
  if (v.speculate === undefined) return undefined;
  try { return parseSpeculateSpec(v.speculate as string); } catch (e) { throw new CliError((e as Error).message, 'see --help'); }
}

const MB = 1024 * 1024;

/** Progress on stderr: a redrawn bar on a terminal; otherwise (a log, a pipe) two lines, when loading
 *  starts and when it ends, so a log is not flooded. */
export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): { onProgress: (p: LoadProgress) => void; done: () => void } {
  let lastDraw = 0, drawn = false, started = false, finished = false;
  return {
    onProgress(p) {
      const frac = p.totalBytes > 0 ? Math.min(p.loadedBytes / p.totalBytes, 1) : 1;
      const sizes = `${(p.loadedBytes / MB).toFixed(0)}/${(p.totalBytes / MB).toFixed(0)} MiB`;
      if (stream.isTTY) {
        const now = Date.now();
        if (now - lastDraw < 50 && frac < 1) return;
        lastDraw = now;
        const width = 30, full = Math.round(frac * width);
        stream.write(`\r${label} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${sizes} ${p.stage}   `);
        drawn = true;
      } else {
        if (!started) { started = true; stream.write(`${label}: ${(p.totalBytes / MB).toFixed(0)} MiB\n`); }
        if (frac >= 1 && !finished) { finished = true; stream.write(`${label}: done\n`); }
      }
    },
    done() { if (drawn) stream.write('\n'); drawn = false; },
  };
}

/** Checks the path, then loads with a progress bar. */
export async function loadForCli(v: FlagValues, extra: TesseraOptions = {}): Promise<Tessera> {
  const path = v.model as string;
  if (!existsSync(path)) throw new CliError(`model path ${path} does not exist`, MODEL_HINT);
  const progress = progressReporter('loading');
  const opts: LoadOptions = { onProgress: progress.onProgress };
  if (v.threads !== undefined) opts.threads = v.threads as number;
  if (v.ctx !== undefined) opts.contextLength = v.ctx as number;
  if (v.quantize !== undefined) opts.quantize = v.quantize as 'q8_0';
  if (v['kv-type'] !== undefined) opts.cacheDType = v['kv-type'] as 'f32' | 'f16';
  if (v['kv-budget'] !== undefined) opts.kvBudget = /^\d+$/.test(v['kv-budget'] as string) ? Number(v['kv-budget']) : v['kv-budget'] as string;
  if (v.parallel !== undefined) opts.parallel = v.parallel as number;
  if (v.attention !== undefined) {
    try { opts.attention = parseAttentionSpec(v.attention as string); } catch (e) { throw new CliError((e as Error).message, 'see --help'); }
  }
  const draftAttention = speculateFrom(v)?.attention;
  if (draftAttention !== undefined) opts.draftAttention = draftAttention;
  let tessera: Tessera;
  try {
    tessera = await Tessera.load(path, { ...opts, ...extra });
  } finally {
    progress.done();
  }
  const trained = tessera.config && 'max_position_embeddings' in tessera.config ? tessera.config.max_position_embeddings : undefined;
  warnBeyondTraining(opts.contextLength, trained);
  return tessera;
}

/** Warns (stderr) when --ctx asks for more positions than the model was trained for. */
export function warnBeyondTraining(ctx: number | undefined, trained: number | undefined): void {
  if (ctx !== undefined && trained !== undefined && ctx > trained) {
    process.stderr.write(`warning: --ctx ${ctx} is beyond the ${trained} positions this model was trained for; text past position ${trained} will likely degrade\n`);
  }
}
