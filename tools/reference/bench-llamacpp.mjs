// llama.cpp's speed on a GGUF file, measured the way `tessera bench` measures Tessera, so the two can
// be printed side by side: for each context length C, prefill C random token ids into a fresh
// context (timed: prefill tokens/s), then decode --decode tokens greedily one at a time (timed alone:
// decode tokens/s at context ≈ C; two warm-up steps are not timed).
//
// With --parallel B1,B2,…: for each context C and each B, B sequences of one context (node-llama-cpp's
// multi-sequence contexts) are each prefilled with C distinct random ids, then decoded together —
// one token of every sequence per llama.cpp batch — and the decode is timed (total tokens/s and
// per-sequence ms/token), as `tessera bench --batch` measures Tessera. With --prefill-once as well,
// one prompt per context and batch size is prefilled for real, its sequence state saved to a
// temporary file and loaded into every other sequence (each holds its own copy of the K/V cells).
//
// With --rounds R (one context, JSON output): after the prefill line, which says "ready", the script
// waits; each line "prefill" before the first "decode" clears the sequence and prefills the prompt
// again (replying with its seconds); each line "decode" on its stdin decodes --decode more tokens (two untimed warm-up steps before
// the first) and answers with one JSON line of that block's seconds, R times — so `tessera bench
// --rounds` can alternate the two engines block by block (src/bench/alternate.ts).
//
// Usage (after tools/reference/install.sh):
//   node tools/reference/bench-llamacpp.mjs --model FILE.gguf --threads 2 --ctx 512,4096 [--decode 32] [--parallel 1,4,16 [--prefill-once]] [--kv f16|f32] [--json]
//   node tools/reference/bench-llamacpp.mjs --model FILE.gguf --threads 2 --ctx 512 --rounds 6 --json   (then "decode" lines on stdin)
// --kv: the KV cache's type, f16 by default (llama.cpp's own default, and Tessera's).
// Prints one line per context (and batch): a JSON object with --json, a readable line otherwise.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { contextOptions, loadLlama, referenceVersion } from './llama.mjs';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string' },
    ctx: { type: 'string', default: '512' },
    decode: { type: 'string', default: '32' },
    batch: { type: 'string', default: '512' },
    seed: { type: 'string', default: '1' },
    parallel: { type: 'string' },
    rounds: { type: 'string' },
    kv: { type: 'string', default: 'f16' },
    json: { type: 'boolean', default: false },
    'prefill-once': { type: 'boolean', default: false },
  },
});

function fail(msg) {
  process.stderr.write(`bench-llamacpp: ${msg}\n`);
  process.exit(2);
}

if (!args.model) fail('--model FILE.gguf is required');
if (!args.threads) fail('--threads N is required (node-llama-cpp would otherwise pick its own count)');
const threads = Number(args.threads);
const decodeTokens = Number(args.decode);
const batchSize = Number(args.batch);
const contexts = args.ctx.split(',').map(Number);
if (!(Number.isInteger(threads) && threads > 0)) fail(`--threads ${args.threads} must be a positive integer`);
if (!(Number.isInteger(decodeTokens) && decodeTokens > 0)) fail(`--decode ${args.decode} must be a positive integer`);
if (!(Number.isInteger(batchSize) && batchSize > 0)) fail(`--batch ${args.batch} must be a positive integer`);
if (!contexts.every((c) => Number.isInteger(c) && c > 0)) fail(`--ctx ${args.ctx} must be a comma-separated list of positive integers`);
const parallel = args.parallel === undefined ? undefined : args.parallel.split(',').map(Number);
if (args['prefill-once'] && !parallel) fail('--prefill-once applies to --parallel');
if (parallel && !parallel.every((b) => Number.isInteger(b) && b > 0 && b <= 64)) fail(`--parallel ${args.parallel} must be a comma-separated list of integers in [1, 64]`);
if (args.kv !== 'f16' && args.kv !== 'f32') fail(`--kv ${args.kv} must be f16 or f32`);
const rounds = args.rounds === undefined ? undefined : Number(args.rounds);
if (rounds !== undefined && !(Number.isInteger(rounds) && rounds > 0 && rounds <= 1000)) fail(`--rounds ${args.rounds} must be an integer in [1, 1000]`);
if (rounds !== undefined && (contexts.length !== 1 || parallel || !args.json)) fail('--rounds takes one --ctx, no --parallel, and --json');

// The same integer-only PRNG the test checkpoints use (src/data/rng.ts), from the built tree.
const { mulberry32 } = await import(new URL('../../dist/src/data/rng.js', import.meta.url).href)
  .catch(() => fail('dist/ is missing: run `npm run build` in the repository first'));

const { llama } = await loadLlama(threads);
const loadStart = performance.now();
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const loadSeconds = (performance.now() - loadStart) / 1000;
const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
if (!nVocab) fail(`${args.model}: no tokenizer.ggml.tokens in the GGUF metadata`);

if (parallel) {
  const stateDir = args['prefill-once'] ? mkdtempSync(join(tmpdir(), 'bench-llamacpp-')) : undefined;
  try {
    for (const ctx of contexts) for (const B of parallel) await batched(ctx, B, stateDir);
  } finally { if (stateDir) rmSync(stateDir, { recursive: true, force: true }); }
  await model.dispose();
  await llama.dispose();
  process.exit(0);
}

/** B sequences of one context, each prefilled with ctx distinct ids, then decoded together. With a
 *  stateDir (--prefill-once), the first sequence is prefilled, its state saved there and loaded into
 *  every other sequence (a state loads only into a context with as many sequences: llama.cpp checks
 *  its number of KV streams, so this is one prefill per batch size). */
async function batched(ctx, B, stateDir) {
  const kvType = args.kv.toUpperCase();
  const context = await model.createContext({ ...contextOptions(threads, ctx + decodeTokens + 16, Math.min(batchSize, ctx)),
    sequences: B, experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType });
  const seqs = Array.from({ length: B }, () => context.getSequence());
  const next = mulberry32(Number(args.seed) + ctx);
  const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
  const t0 = performance.now();
  const tokens = [];
  const file = stateDir && join(stateDir, `prompt-${ctx}-${B}.state`);
  for (const [i, seq] of seqs.entries()) {                // one prompt after another, like Tessera's bench
    if (file && i > 0) {
      await seq.loadStateFromFile(file, { acceptRisk: true });
      if (seq.contextTokens.length !== ctx) fail(`a loaded sequence holds ${seq.contextTokens.length} tokens, not ${ctx}`);
      tokens.push(tokens[0]);
      continue;
    }
    const prompt = Array.from({ length: ctx }, () => next() % nVocab);
    const out = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[ctx - 1], greedy]]);
    tokens.push(out[ctx - 1]?.next?.token);
    if (file && B > 1) await seq.saveStateToFile(file);
  }
  const prefillSeconds = (performance.now() - t0) / 1000;
  if (tokens.some((t) => t == null)) fail('llama.cpp returned no token after prefill');
  let t1 = 0;
  for (let i = -2; i < decodeTokens; i++) {              // two untimed warm-up steps, as above
    if (i === 0) t1 = performance.now();
    // concurrent evaluations on one context's sequences go into one llama.cpp batch
    const outs = await Promise.all(seqs.map((seq, b) => seq.controlledEvaluate([[tokens[b], greedy]])));
    outs.forEach((r, b) => { tokens[b] = r[0]?.next?.token; });
    if (tokens.some((t) => t == null)) fail(`llama.cpp returned no token at decode step ${i}`);
  }
  const decodeSeconds = (performance.now() - t1) / 1000;
  const row = {
    engine: 'llama.cpp', reference: referenceVersion(llama), model: basename(args.model), threads, ctx, parallel: B, kv: args.kv,
    prefillSeconds: round(prefillSeconds), decodeTokens, decodeSeconds: round(decodeSeconds),
    decodeTokensPerSecond: round((B * decodeTokens) / decodeSeconds), msPerToken: round((1000 * decodeSeconds) / decodeTokens),
    kvBytes: context.stateSize,
  };
  if (args.json) console.log(JSON.stringify(row));
  else console.log(`llama.cpp ${row.model} threads=${threads} ctx=${ctx} parallel=${B}: decode ${row.decodeTokensPerSecond} tok/s total, ${row.msPerToken} ms/token per sequence`);
  await context.dispose();
}

for (const ctx of contexts) {
  const kvType = args.kv.toUpperCase();
  const context = await model.createContext({ ...contextOptions(threads, ctx + decodeTokens * (rounds ?? 1) + 16, Math.min(batchSize, ctx)),
    experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType });
  const seq = context.getSequence();
  const next = mulberry32(Number(args.seed) + ctx);
  const prompt = Array.from({ length: ctx }, () => next() % nVocab);

  // Prefill: all but the last prompt token without logits, then the last one producing the first
  // generated token (llama.cpp computes logits only where asked, as Tessera's 'last' does).
  let token;
  const prefill = async () => {
    const t0 = performance.now();
    const out = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[ctx - 1], { generateNext: { token: true, options: { temperature: 0 } } }]]);
    const seconds = (performance.now() - t0) / 1000;
    token = out[ctx - 1]?.next?.token;
    if (token == null) fail('llama.cpp returned no token after prefill');
    return seconds;
  };
  const prefillSeconds = await prefill();

  /** Decodes `steps` timed tokens after `warm` untimed ones; the timed seconds. */
  const decode = async (warm, steps) => {
    let t1 = 0;
    for (let i = -warm; i < steps; i++) {
      if (i === 0) t1 = performance.now();
      const r = await seq.controlledEvaluate([[token, { generateNext: { token: true, options: { temperature: 0 } } }]]);
      token = r[0]?.next?.token;
      if (token == null) fail(`llama.cpp returned no token at decode step ${i}`);
    }
    return (performance.now() - t1) / 1000;
  };
  if (rounds !== undefined) {
    console.log(JSON.stringify({ engine: 'llama.cpp', reference: referenceVersion(llama), model: basename(args.model), threads, ctx, ready: true,
      prefillTokensPerSecond: round(ctx / prefillSeconds), kv: args.kv }));
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    for (let r = 0; r < rounds; r++) {
      const { value, done } = await lines.next();
      if (done) break;
      if (value.trim() === 'prefill' && r === 0) { // before the first block: the prompt again, from an empty sequence
        await seq.clearHistory();
        console.log(JSON.stringify({ prefillSeconds: await prefill() }));
        r--;
        continue;
      }
      if (value.trim() !== 'decode') fail(`expected "decode" (or, before it, "prefill") on stdin, got ${JSON.stringify(value.slice(0, 40))}`);
      // Two untimed steps before the first block: llama.cpp reserves its single-token graph on the first one.
      console.log(JSON.stringify({ round: r, decodeTokens, decodeSeconds: await decode(r === 0 ? 2 : 0, decodeTokens) }));
    }
    await context.dispose();
    break;
  }
  // Two untimed decode steps first: llama.cpp reserves its single-token graph on the first one.
  const decodeSeconds = await decode(2, decodeTokens);

  const row = {
    engine: 'llama.cpp',
    reference: referenceVersion(llama),
    model: basename(args.model),
    threads,
    ctx,
    loadSeconds: round(loadSeconds),
    prefillTokens: ctx,
    prefillSeconds: round(prefillSeconds),
    prefillTokensPerSecond: round(ctx / prefillSeconds),
    decodeTokens,
    decodeSeconds: round(decodeSeconds),
    decodeTokensPerSecond: round(decodeTokens / decodeSeconds),
    kv: args.kv,
  };
  if (args.json) console.log(JSON.stringify(row));
  else console.log(`llama.cpp ${row.model} threads=${threads} ctx=${ctx}: prefill ${row.prefillTokensPerSecond} tok/s, decode ${row.decodeTokensPerSecond} tok/s`);
  await context.dispose();
}

await model.dispose();
await llama.dispose();

function round(x) {
  return Math.round(x * 1000) / 1000;
}
