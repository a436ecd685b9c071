// `tessera bench`: prefill and decode speed of Tessera (and llama.cpp, where installed) on the
// user's models (--model), or on random-weight GGUF files with the shapes of real models (--shapes),
// which are written once to a cache folder: their size is printed, and checked against the free
// space, before anything is written. With neither, the bundled models/default is measured.

import { existsSync, statfsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_HINT, THREADS_FLAG } from './model-flags.js';
import { infoRecord } from './info.js';
import { describeModel } from '../models/load.js';
import { BENCH_PRESETS } from '../testing/checkpoints.js';
import { BENCH_DTYPES, benchDir, benchFile, benchFilePath, estimatedBenchFileBytes, type BenchDType } from '../bench/bench-files.js';
import { LLAMA_CPP_SCRIPT, benchLlamaCpp, benchTessera, formatTable, llamaCppMissing, type Row } from '../bench/run.js';
import { benchAlternating } from '../bench/alternate.js';
import { benchLlamaCppBatch, benchTesseraBatch, formatBatchTable, type BatchRow } from '../bench/batch.js';
import { measureReadBandwidth } from '../bench/bandwidth.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_MODEL = fileURLToPath(new URL('../../../models/default', import.meta.url));

const FLAGS: FlagSpecs = {
  model: { type: 'string', multiple: true, placeholder: 'PATH', description: 'a model to measure: Hugging Face folder or .gguf file (default: the bundled models/default)', short: 'm' },
  shapes: { type: 'string', list: true, choices: BENCH_PRESETS, placeholder: 'LIST', description: `random-weight models with these shapes (${BENCH_PRESETS.join(', ')}), written once to the bench folder; prints their size first` },
  dtypes: { type: 'string', list: true, choices: BENCH_DTYPES, placeholder: 'LIST', description: `weight types of the --shapes files: ${BENCH_DTYPES.join(', ')} (default f32,q8_0)` },
  ctx: { type: 'integer', list: true, min: 1, default: '512,4096', placeholder: 'LIST', description: "prompt lengths; each is capped at the model's context length" },
  threads: { ...THREADS_FLAG, description: 'threads including the main one (default: all cores)' },
  'decode-tokens': { type: 'integer', min: 1, default: 32, placeholder: 'N', description: 'tokens decoded per measurement (per block with --rounds)' },
  rounds: { type: 'integer', min: 1, max: 100, default: 1, placeholder: 'N', description: 'with llama.cpp: decode N blocks on each engine, alternating block by block, and report the median block (both engines loaded at once); 1 = one engine after the other' },
  'prefill-rounds': { type: 'integer', min: 1, max: 100, default: 1, placeholder: 'N', description: 'with --rounds: prefill the prompt N times on each engine (a fresh cache each time, alternating) and report the median prefill' },
  'kv-type': { type: 'string', choices: ['f32', 'f16'], default: 'f16', placeholder: 'f32|f16', description: "KV-cache storage type (f16, as llama.cpp's, so both engines read the same bytes)" },
  batch: { type: 'integer', list: true, min: 1, max: 256, placeholder: 'LIST', description: 'decode this many sequences together instead (e.g. 1,4,16): total tok/s, ms/token per sequence and KV held, next to llama.cpp decoding as many sequences' },
  'prefill-once': { type: 'boolean', description: 'with --batch: prefill one prompt per context for real and give every sequence its own copy of its K/V (no pages shared), instead of one prefill per sequence (long contexts)' },
  'llama-cpp': { type: 'boolean', description: 'also measure llama.cpp on .gguf files (default; --no-llama-cpp skips it)', default: true },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const BENCH_HELP = formatHelp('bench',
  'Measures prefill and decode speed (tokens/s) and the memory bandwidth decoding reaches, next to llama.cpp on\n' +
  'the same .gguf file when it is installed (bash tools/reference/install.sh in a clone of the repository).\n' +
  `--shapes files go to $TESSERA_BENCH_DIR (now ${benchDir()}); llama3.2-1b in f32 alone is about ${gb(estimatedBenchFileBytes('llama3.2-1b', 'f32'))}.\n` +
  'Examples: tessera bench --model my-model.gguf --ctx 512,2048\n' +
  '          tessera bench --shapes smollm2-135m --dtypes q8_0', FLAGS);

function gb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(0)} MB`;
}

/** The dominant stored weight type of a model (most tensors), for the table's dtype column. */
function mainDType(dtypes: Record<string, number>): string {
  return Object.entries(dtypes).sort((a, b) => b[1] - a[1])[0]?.[0] ?? '?';
}

/** Says what the --shapes files will take, and refuses when the disk cannot hold them. */
function planBenchFiles(shapes: string[], dtypes: BenchDType[]): void {
  const missing = shapes.flatMap((s) => dtypes.map((d) => ({ s, d, path: benchFilePath(s, d) }))).filter((f) => !existsSync(f.path));
  if (missing.length === 0) return;
  const sizes = missing.map((f) => estimatedBenchFileBytes(f.s as (typeof BENCH_PRESETS)[number], f.d));
  const total = sizes.reduce((a, b) => a + b, 0);
  const peak = total + Math.max(...sizes); // the GGUF writer spools the tensors, then copies them into the file
  process.stderr.write(`bench: writing ${missing.length} random-weight file(s), about ${gb(total)} in all, to ${benchDir()} (kept for later runs):\n`);
  missing.forEach((f, i) => process.stderr.write(`  ${f.path}  ~${gb(sizes[i])}\n`));
  let dir = benchDir();
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  const free = (() => { try { const st = statfsSync(dir); return st.bavail * st.bsize; } catch { return Infinity; } })();
  if (free < peak * 1.05) {
    throw new CliError(`not enough disk space for the bench files: about ${gb(peak)} needed while writing, ${gb(free)} free under ${dir}`,
      'set TESSERA_BENCH_DIR to a folder on a larger disk, or ask for fewer --shapes / smaller --dtypes (q8_0, q4_0)');
  }
}

export async function runBench(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'bench');
  if (v.help) { process.stdout.write(BENCH_HELP); return 0; }
  const threads = (v.threads as number | undefined) ?? availableParallelism();
  const decodeTokens = v['decode-tokens'] as number, kvType = v['kv-type'] as 'f32' | 'f16';
  const shapes = (v.shapes as string[] | undefined) ?? [];
  if (v.shapes === undefined && v.dtypes !== undefined) throw new UsageError('--dtypes applies to --shapes files; give --shapes too', 'bench');
  if ((v.rounds as number) > 1 && v.batch !== undefined) throw new UsageError('--rounds applies to single-sequence decoding, not --batch', 'bench');
  if ((v.rounds as number) > 1 && v['llama-cpp'] !== true) throw new UsageError('--rounds alternates Tessera with llama.cpp; drop --no-llama-cpp (or --rounds)', 'bench');
  if ((v['prefill-rounds'] as number) > 1 && (v.rounds as number) < 2) throw new UsageError('--prefill-rounds alternates the engines\' prefills within --rounds; add --rounds 2 or more', 'bench');
  if (v['prefill-once'] === true && v.batch === undefined) throw new UsageError('--prefill-once applies to --batch', 'bench');
  const dtypes = (v.dtypes as BenchDType[] | undefined) ?? ['f32', 'q8_0'];
  const models = (v.model as string[] | undefined) ?? (shapes.length === 0 ? [DEFAULT_MODEL] : []);
  for (const m of models) if (!existsSync(m)) throw new CliError(`model path ${m} does not exist`, MODEL_HINT);
  if (v.model === undefined && shapes.length === 0) {
    process.stderr.write(`bench: measuring the bundled ${DEFAULT_MODEL} (give --model PATH for yours, or --shapes ${BENCH_PRESETS.join(',')} for random-weight models of real sizes)\n`);
  }
  if (shapes.length > 0) planBenchFiles(shapes, dtypes);
  const targets = [
    ...models.map((path) => ({ path, label: basename(path), dtype: '' })),
    ...shapes.flatMap((s) => dtypes.map((d) => ({ path: '', label: s, dtype: d }))),
  ];
  const batches = v.batch as number[] | undefined;
  if ((v.rounds as number) > 1) { // alternating blocks need llama.cpp on every file: refuse before measuring anything
    const notGguf = models.find((m) => !m.endsWith('.gguf'));
    if (notGguf) throw new CliError(`--rounds alternates Tessera with llama.cpp, which reads .gguf files only: ${notGguf}`, 'give .gguf models, or drop --rounds');
    const missing = llamaCppMissing();
    if (missing) throw new CliError(`--rounds alternates Tessera with llama.cpp, which cannot run here: ${missing}`, 'drop --rounds, or install llama.cpp (bash tools/reference/install.sh)');
  }
  const loadStart = loadavg();
  const sustained = batches ? 0 : await measureReadBandwidth(threads);
  const rows: Row[] = [], batchRows: BatchRow[] = [], notes = new Set<string>();
  for (const t of targets) {
    let file = t.path;
    if (file === '') {
      process.stderr.write(`bench: preparing ${t.label} ${t.dtype}…\n`);
      file = benchFile(t.label, t.dtype);
    }
    const info = describeModel(file);
    const dtype = t.dtype || mainDType(info.dtypes);
    const rounds = v.rounds as number, decoded = decodeTokens * rounds; // --rounds: every block grows the context
    const maxCtx = (infoRecord(info, 0).max_position_embeddings as number) - decoded - 3;
    if (maxCtx < 1) throw new CliError(`${file}: context length too short to decode ${decoded} tokens`, 'lower --decode-tokens (or --rounds)');
    const ctxs = [...new Set((v.ctx as number[]).map((c) => Math.min(c, maxCtx)))];
    if ((v.ctx as number[]).some((c) => c > maxCtx)) {
      process.stderr.write(`bench: ${t.label}: prompt lengths capped at ${maxCtx} (its context length less the decoded tokens)\n`);
    }
    if (batches) {
      if (info.config.model_type === 'memory_mosaic') throw new CliError(`${file}: --batch measures Llama-family models only`, 'drop --batch for a Memory Mosaic');
      const o = { threads, decodeTokens, cacheDType: kvType, repo: REPO, llamaCpp: v['llama-cpp'] === true, prefillOnce: v['prefill-once'] === true };
      for (const ctx of ctxs) {
        batchRows.push(...await benchTesseraBatch(file, t.label, dtype, ctx, batches, o));
        if (!o.llamaCpp) { notes.add('llama.cpp rows skipped (--no-llama-cpp).'); continue; }
        if (!file.endsWith('.gguf')) { notes.add(`llama.cpp not measured on ${t.label}: it reads .gguf files only.`); continue; }
        const l = benchLlamaCppBatch(file, t.label, dtype, ctx, batches, o, info.weightBytes);
        if (typeof l === 'string') notes.add(l); else batchRows.push(...l);
      }
      continue;
    }
    for (const ctx of ctxs) {
      if (rounds > 1) {
        process.stderr.write(`bench: ${t.label} ${dtype} ctx ${ctx}: llama.cpp and tessera, ${rounds} alternating rounds…\n`);
        rows.push(...await benchAlternating(file, t.label, dtype, ctx, { threads, decodeTokens, rounds, prefillRounds: v['prefill-rounds'] as number, cacheDType: kvType, script: LLAMA_CPP_SCRIPT }));
        continue;
      }
      process.stderr.write(`bench: ${t.label} ${dtype} ctx ${ctx}: tessera…\n`);
      const r = await benchTessera(file, t.label, dtype, ctx, threads, decodeTokens, kvType);
      rows.push(r);
      if (!v['llama-cpp']) continue;
      process.stderr.write(`bench: ${t.label} ${dtype} ctx ${ctx}: llama.cpp…\n`);
      rows.push(benchLlamaCpp(file, t.label, dtype, ctx, threads, decodeTokens, r.decodeBytesPerToken, kvType));
    }
  }
  if (batches) {
    notes.add(`${kvType} KV cache on both engines; ${decodeTokens} timed decode steps after 2 warm-up steps; ` +
      (v['prefill-once'] === true
        ? `one prompt of ${(v.ctx as number[]).join('/')} random ids prefilled per context (llama.cpp: per batch size) and copied into every sequence's own KV memory (--prefill-once).`
        : `each sequence prefilled with its own ${(v.ctx as number[]).join('/')} random ids.`));
    process.stdout.write(formatBatchTable(batchRows, [...notes]));
    return 0;
  }
  process.stdout.write(formatTable(rows, sustained, { start: loadStart, end: loadavg() },
    (v.rounds as number) > 1 ? { rounds: v.rounds as number, tokens: decodeTokens, prefills: v['prefill-rounds'] as number } : undefined));
  return 0;
}
