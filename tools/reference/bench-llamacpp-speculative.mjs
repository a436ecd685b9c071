// llama.cpp's own speculative decoding on a GGUF file, next to its plain decoding of the same
// sequences, for the speculative-decoding table (src/bench/speculative.ts): node-llama-cpp's
// DraftSequenceTokenPredictor (a separate draft model) and InputLookupTokenPredictor (prompt lookup).
//
// For each context C and batch B: B sequences of one context are each prefilled with C random ids
// (untimed), then every run decodes --decode tokens greedily from that same prompt and is erased back
// to it afterwards, so every run decodes the same sequences:
//   plain   one token per step (controlledEvaluate, the way bench-llamacpp.mjs times decoding);
//   lookup  evaluate() with an InputLookupTokenPredictor over the prompt, at most γ tokens per guess;
//   draft   evaluate() with a DraftSequenceTokenPredictor on a context of --draft, exactly γ tokens
//           per guess (minTokens = maxTokens = γ, minConfidence 0: the target waits for γ draft tokens
//           at every step, as in Tessera's rows, instead of taking whatever the draft has ready);
//   costs   the cost model's T_T and T_V(γ) as Tessera's GammaTuner measures them: every sequence fed
//           1 token (T_T) or γ + 1 tokens with a token sampled at each (T_V(γ), γ = 1, 2, 3, 4, 6, 8)
//           in one llama.cpp batch, then erased back, and again with the last position's token only
//           (the forward pass alone); the fastest of --reps, after one untimed step. Whether
//           verifying γ + 1 tokens costs about one step (memory-bound) or γ + 1 (compute-bound) on
//           this CPU is then measured on llama.cpp's native kernels too, not only on Tessera's.
// Rows decode concurrently (node-llama-cpp puts the B sequences' steps into one llama.cpp batch).
// Throughput counts the tokens after every sequence's first one (the draft's own prefill of the
// prompt happens before it) over the time from then to the last, in wall time and in CPU time of this
// process (all llama.cpp threads: on a shared machine wall time mostly measures the other jobs, and
// the CPU time includes llama.cpp's spin-waiting threads). Acceptance is real (llama.cpp has
// no imposed acceptance): validated / (validated + refuted) of sequence.tokenPredictions.
//
// Usage (after tools/reference/install.sh):
//   node tools/reference/bench-llamacpp-speculative.mjs --model FILE.gguf --draft DRAFT.gguf --threads 2
//        --ctx 4096 [--parallel 1,4] [--gamma 4] [--decode 32] [--kv f16] [--predictors plain,lookup,draft]
//        [--shared-prompt] (every sequence of a batch gets the same prompt) [--json]
// Prints one JSON object per (context, batch, predictor) with --json, a readable line otherwise.

import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { contextOptions, loadLlama, referenceVersion } from './llama.mjs';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    draft: { type: 'string' },
    threads: { type: 'string' },
    ctx: { type: 'string', default: '4096' },
    parallel: { type: 'string', default: '1' },
    gamma: { type: 'string', default: '4' },
    decode: { type: 'string', default: '32' },
    seed: { type: 'string', default: '1' },
    kv: { type: 'string', default: 'f16' },
    predictors: { type: 'string', default: 'plain,lookup,draft' },
    reps: { type: 'string', default: '3' },
    'shared-prompt': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

function fail(msg) {
  process.stderr.write(`bench-llamacpp-speculative: ${msg}\n`);
  process.exit(2);
}

const positiveInts = (s) => s.split(',').map(Number);
if (!args.model) fail('--model FILE.gguf is required');
if (!args.threads) fail('--threads N is required (node-llama-cpp would otherwise pick its own count)');
const threads = Number(args.threads), gamma = Number(args.gamma), decodeTokens = Number(args.decode), reps = Number(args.reps);
const contexts = positiveInts(args.ctx), batches = positiveInts(args.parallel);
const predictors = args.predictors.split(',');
for (const [name, x] of [['--threads', threads], ['--gamma', gamma], ['--decode', decodeTokens], ['--reps', reps]]) {
  if (!(Number.isInteger(x) && x > 0)) fail(`${name} must be a positive integer`);
}
if (!contexts.every((c) => Number.isInteger(c) && c > 1)) fail(`--ctx ${args.ctx} must be a comma-separated list of integers above 1`);
if (!batches.every((b) => Number.isInteger(b) && b > 0 && b <= 64)) fail(`--parallel ${args.parallel} must be a comma-separated list of integers in [1, 64]`);
const unknown = predictors.filter((p) => !['plain', 'lookup', 'draft', 'costs'].includes(p));
if (unknown.length > 0) fail(`--predictors: unknown ${unknown.join(', ')}; choose from plain, lookup, draft, costs`);
if (predictors.includes('draft') && !args.draft) fail('--predictors draft needs --draft DRAFT.gguf (a model of the same vocabulary)');
if (args.kv !== 'f16' && args.kv !== 'f32') fail(`--kv ${args.kv} must be f16 or f32`);

// The same integer-only PRNG the test checkpoints use (src/data/rng.ts), from the built tree.
const { mulberry32 } = await import(new URL('../../dist/src/data/rng.js', import.meta.url).href)
  .catch(() => fail('dist/ is missing: run `npm run build` in the repository first'));
// the γ values whose T_V(γ) the costs run measures: those Tessera's cost model calibrates
const { GAMMA_CANDIDATES: COST_GAMMAS } = await import(new URL('../../dist/src/generation/speculation-cost.js', import.meta.url).href);

const { mod, llama } = await loadLlama(threads);
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: 0 });
const draftModel = predictors.includes('draft') ? await llama.loadModel({ modelPath: args.draft, gpuLayers: 0 }) : undefined;
const nVocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length;
if (!nVocab) fail(`${args.model}: no tokenizer.ggml.tokens in the GGUF metadata`);
const kvType = args.kv.toUpperCase();
const kvOptions = { experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType };
const greedy = { temperature: 0 };

/** A predictor whose inner predictor is chosen per run (a sequence's predictor is fixed when it is
 *  created, and the prefilled sequences are reused by every run). */
class Switchable extends mod.TokenPredictor {
  inner = undefined;
  reset(params) { return this.inner?.reset(params); }
  pushTokens(tokens) { this.inner?.pushTokens(tokens); }
  predictTokens() { return this.inner ? this.inner.predictTokens() : []; }
  stop(untilPredictionsExhausted) { return this.inner?.stop?.(untilPredictionsExhausted); }
  updateInputTokens(tokens) { this.inner?.updateInputTokens?.(tokens); }
  dispose() { return this.inner?.dispose?.(); }
}

for (const ctx of contexts) for (const B of batches) await measure(ctx, B);
await model.dispose();
await draftModel?.dispose();
await llama.dispose();

async function measure(ctx, B) {
  const size = ctx + decodeTokens + 2 * Math.max(gamma, ...COST_GAMMAS) + 16;
  const context = await model.createContext({ ...contextOptions(threads, size, Math.min(512, ctx)), sequences: B, ...kvOptions });
  const draftContext = draftModel ? await draftModel.createContext({ ...contextOptions(threads, size, Math.min(512, ctx)), sequences: B, ...kvOptions }) : undefined;
  const switches = Array.from({ length: B }, () => new Switchable());
  const seqs = switches.map((tokenPredictor) => context.getSequence({ tokenPredictor }));
  const next = mulberry32(Number(args.seed) + ctx);
  const prompts = seqs.map(() => Array.from({ length: ctx }, () => next() % nVocab));
  if (args['shared-prompt']) prompts.fill(prompts[0]);
  const t0 = performance.now();
  for (const [b, seq] of seqs.entries()) await seq.evaluateWithoutGeneratingNewTokens(prompts[b].slice(0, -1));
  const prefillSeconds = (performance.now() - t0) / 1000;
  let reference;
  for (const kind of predictors) {
    if (kind === 'costs') {
      const row = { engine: 'llama.cpp', reference: referenceVersion(llama), model: basename(args.model), threads, ctx, parallel: B, kv: args.kv,
        predictor: kind, prefillSeconds: round(prefillSeconds), reps, ...(await costs(seqs, prompts, ctx)) };
      if (args.json) console.log(JSON.stringify(row));
      else console.log(`llama.cpp ${row.model} ctx=${ctx} parallel=${B} costs: T_T ${row.targetMs} ms, T_V(γ)/T_T ${COST_GAMMAS.map((g, i) => `γ=${g} ${row.verifyOverTarget[i]} (forward alone ${row.forwardOverTarget[i]})`).join(', ')}`);
      continue;
    }
    const before = seqs.map((s) => ({ ...s.tokenPredictions }));
    switches.forEach((s, b) => {
      s.inner = kind === 'lookup' ? new mod.InputLookupTokenPredictor({ predictionLength: { min: 1, max: gamma } })
        : kind === 'draft' ? new mod.DraftSequenceTokenPredictor(draftContext.getSequence(), { minTokens: gamma, maxTokens: gamma, minConfidence: 0 })
        : undefined;
      s.inner?.updateInputTokens(prompts[b]);
    });
    const runs = await Promise.all(seqs.map((seq, b) => (kind === 'plain' ? plainRun(seq, prompts[b]) : speculativeRun(seq, prompts[b]))));
    const first = runs.map((r) => r.times[0]), last = runs.map((r) => r.times.at(-1));
    const start = first.reduce((a, t) => (t.wall > a.wall ? t : a)), end = last.reduce((a, t) => (t.wall > a.wall ? t : a));
    const counted = runs.reduce((a, r) => a + r.times.filter((t) => t.wall > start.wall).length, 0);
    const validated = seqs.reduce((a, s, b) => a + s.tokenPredictions.validated - before[b].validated, 0);
    const refuted = seqs.reduce((a, s, b) => a + s.tokenPredictions.refuted - before[b].refuted, 0);
    if (kind === 'plain') reference = runs.map((r) => r.tokens.join());
    const row = {
      engine: 'llama.cpp', reference: referenceVersion(llama), model: basename(args.model), draft: kind === 'draft' ? basename(args.draft) : undefined,
      threads, ctx, parallel: B, kv: args.kv, predictor: kind, gamma: kind === 'plain' ? 0 : gamma, prefillSeconds: round(prefillSeconds),
      decodeTokens, decodeTokensPerSecond: round(counted / ((end.wall - start.wall) / 1000)),
      decodeTokensPerCpuSecond: round(counted / ((end.cpu - start.cpu) / 1000)), validated, refuted,
      acceptanceRate: validated + refuted > 0 ? round(validated / (validated + refuted)) : undefined,
      sameAsPlain: reference ? runs.filter((r, b) => r.tokens.join() === reference[b]).length : undefined,
    };
    if (args.json) console.log(JSON.stringify(row));
    else console.log(`llama.cpp ${row.model} ctx=${ctx} parallel=${B} ${kind}${kind === 'plain' ? '' : ` γ=${gamma}`}: ${row.decodeTokensPerSecond} tok/s, ${row.decodeTokensPerCpuSecond} tok/CPU-s, validated ${validated}, refuted ${refuted}`);
    for (const [b, seq] of seqs.entries()) await seq.eraseContextTokenRanges([{ start: ctx - 1, end: seq.nextTokenIndex }]);
    for (const s of switches) { await s.inner?.dispose(); s.inner = undefined; }
    for (const [b, seq] of seqs.entries()) if (seq.nextTokenIndex !== ctx - 1) fail(`sequence ${b} holds ${seq.nextTokenIndex} tokens after erasing, not the prompt's ${ctx - 1}`);
  }
  await context.dispose();
  await draftContext?.dispose();
}

/** T_T and T_V(γ) in ms of wall time (fastest of `reps`; CPU time beside it), each sequence fed γ + 1
 *  copies of its prompt's last token, then erased back to the prompt. Two ways: with a sampled token
 *  at every position (what a verification step asks; node-llama-cpp samples each position in its own
 *  call, a few ms apiece), and with the last position's only (the forward pass alone: the lower bound
 *  of a verification's cost in llama.cpp). */
async function costs(seqs, prompts, ctx) {
  const step = async (g, every) => {
    const t0 = clock();
    await Promise.all(seqs.map((seq, b) => seq.controlledEvaluate(Array.from({ length: g + 1 }, (_, i) =>
      (every || i === g ? [prompts[b].at(-1), { generateNext: { token: true, options: greedy } }] : prompts[b].at(-1))))));
    const t1 = clock();
    for (const [b, seq] of seqs.entries()) {
      await seq.eraseContextTokenRanges([{ start: ctx - 1, end: seq.nextTokenIndex }]);
      if (seq.nextTokenIndex !== ctx - 1) fail(`costs: sequence ${b} holds ${seq.nextTokenIndex} tokens after erasing, not ${ctx - 1}`);
    }
    return { wall: t1.wall - t0.wall, cpu: t1.cpu - t0.cpu };
  };
  const fastest = async (g, every) => {
    let wall = Infinity, cpu = Infinity;
    for (let i = 0; i < reps; i++) { const t = await step(g, every); wall = Math.min(wall, t.wall); cpu = Math.min(cpu, t.cpu); }
    return { wall, cpu };
  };
  await step(0, true);                                             // warm-up
  const target = await fastest(0, true), verify = [], forward = [];
  for (const g of COST_GAMMAS) { verify.push(await fastest(g, true)); forward.push(await fastest(g, false)); }
  return {
    gammas: COST_GAMMAS, targetMs: round(target.wall), targetCpuMs: round(target.cpu),
    verifyMs: verify.map((t) => round(t.wall)), verifyOverTarget: verify.map((t) => round(t.wall / target.wall)),
    verifyOverTargetCpu: verify.map((t) => round(t.cpu / target.cpu)),
    forwardMs: forward.map((t) => round(t.wall)), forwardOverTarget: forward.map((t) => round(t.wall / target.wall)),
  };
}

/** Now, in ms of wall time and of this process's CPU time (all threads). */
function clock() {
  const u = process.cpuUsage();
  return { wall: performance.now(), cpu: (u.user + u.system) / 1000 };
}

/** One token per step from the prompt's last token, and the clock at each token. */
async function plainRun(seq, prompt) {
  const tokens = [], times = [];
  let token = prompt.at(-1);
  while (tokens.length < decodeTokens) {
    const r = await seq.controlledEvaluate([[token, { generateNext: { token: true, options: greedy } }]]);
    token = r[0]?.next?.token;
    if (token == null) fail('llama.cpp returned no token');
    tokens.push(token);
    times.push(clock());
  }
  return { tokens, times };
}

/** evaluate() (which uses the sequence's token predictor) from the prompt's last token. */
async function speculativeRun(seq, prompt) {
  const tokens = [], times = [];
  for await (const token of seq.evaluate([prompt.at(-1)], greedy)) {
    tokens.push(token);
    times.push(clock());
    if (tokens.length >= decodeTokens) break;
  }
  return { tokens, times };
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}
