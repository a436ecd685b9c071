// Regenerates test/fixtures/reference/<preset>-<dtype>.json: what llama.cpp (node-llama-cpp, pinned in
// tools/reference/package-lock.json) computes on Tessera's random-weight test checkpoints.
//
//   npm run build && tools/reference/install.sh && node tools/reference/make-fixtures.mjs
//   options: --presets llama3-tiny,qwen2-tiny --dtypes f32,q8_0 --threads 2 [--out test/fixtures/reference]
//   K-quants (files from `tessera quantize` of the f32 GGUF):
//     node tools/reference/make-fixtures.mjs --presets kquant-tiny --dtypes q4_k_m,q5_k_m,q6_k --out test/fixtures/reference-k-quants --seed 1
//   --seed N skips the textbook seed search (slow for wider presets) and takes llama.cpp's own greedy
//   margins as the check instead: the run fails when any is below MIN_MARGIN (try another seed).
//
// For each tiny preset it writes the checkpoint (HF folder + GGUF files from Tessera's converter) to
// a temp dir, loads each GGUF in llama.cpp (CPU, f32 KV cache, no flash attention), feeds a fixed
// prompt of seeded random TOKEN IDS (no tokenizer involved) and records:
//   - logits: the log-softmax of llama.cpp's next-token logits at a few positions (node-llama-cpp
//     exposes the softmax of the raw logits, computed in f32, not the logits themselves; logits are
//     only defined up to a constant anyway, so tests compare log-softmax to log-softmax);
//   - greedy: GREEDY_TOKENS tokens generated with llama.cpp's greedy sampler (temperature 0 selects
//     llama_sampler_init_greedy alone: no penalties, no top-k/p, no grammar), EOS not special-cased;
//   - greedyMargins: top-1 minus top-2 log-probability at each greedy step (how robust the greedy
//     comparison is to numeric noise);
//   - tokenization: llama.cpp's tokenization of a few strings with the GGUF vocabulary;
//   - files: sha256 of every checkpoint file, so the test can tell that it rebuilt the same bytes.

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { contextOptions, loadLlama, referenceVersion } from './llama.mjs';

const ROOT = new URL('../../', import.meta.url);
let OUT_DIR = new URL('test/fixtures/reference/', ROOT);
// Seeds are searched from 1 up: the first whose greedy continuation (by the float64 textbook
// forward of test/reference/textbook-llama.ts, in float and in q8_0 arithmetic) has every top-1/top-2 logit gap ≥ MIN_MARGIN, so
// token-identity tests are robust to float and quantisation noise instead of flipping on near-ties.
const MIN_MARGIN = 0.1;
const MAX_SEED = 200;
const PROMPT_LENGTH = 16;
const GREEDY_TOKENS = 64;
// Positions whose next-token logits are recorded: inside the prompt, its last token, and two
// positions inside the greedy continuation (position p has seen tokens 0..p).
const PROMPT_POSITIONS = [0, 7, PROMPT_LENGTH - 1];
const GENERATION_POSITIONS = [PROMPT_LENGTH - 1 + 32, PROMPT_LENGTH - 1 + GREEDY_TOKENS - 1];
const TEXTS = [
  { text: 'Hello world', special: false },
  { text: ' The quick brown fox jumps over the lazy dog.', special: false },
  { text: "It's 12345 o'clock!\n\n  indented\ttab", special: false },
  { text: 'héllo wörld — 日本語 🙂', special: false },
  { text: '<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>', special: true },
];

const { values: args } = parseArgs({
  options: {
    presets: { type: 'string', default: 'llama3-tiny,qwen2-tiny,smollm2-tiny' },
    dtypes: { type: 'string', default: 'f32,f16,q8_0' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string' },
    seed: { type: 'string' },
  },
});
if (args.out) OUT_DIR = new URL(`${args.out.replace(/\/?$/, '/')}`, ROOT);
const threads = Number(args.threads);

// TESSERA_DIST: another build folder of the same sources (default: the repo's dist/).
const DIST = process.env.TESSERA_DIST ? new URL(`file://${process.env.TESSERA_DIST.replace(/\/?$/, '/')}`) : new URL('dist/', ROOT);
const dist = (p) => new URL(`src/${p}`, DIST).href;
let checkpoints, random, textbook;
try {
  checkpoints = await import(dist('testing/checkpoints.js'));
  random = await import(dist('testing/random-model.js'));
  textbook = await import(new URL('test/reference/textbook-llama.js', DIST).href);
} catch (e) {
  throw new Error(`make-fixtures: cannot load Tessera's build (run \`npm run build\` first): ${e.message}`);
}

/** Prompt ids: seeded, uniform over the vocabulary, the same for every dtype of a preset. */
function promptIdsFor(preset, seed, vocabSize) {
  return random.randomIds(random.streamSeed(seed, `prompt:${preset}`), PROMPT_LENGTH, vocabSize);
}

/** Smallest top-1/top-2 gap over the textbook greedy continuation (stops early below MIN_MARGIN),
 *  in float (q8 false) or in llama.cpp's q8_0 arithmetic (q8 true). */
function textbookMinMargin(config, seed, promptIds, q8) {
  const w = textbook.textbookWeights(random.randomLlamaWeights(config, seed), q8);
  const tokens = [...promptIds];
  const V = config.vocab_size;
  let min = Infinity;
  for (let k = 0; k < GREEDY_TOKENS; k++) {
    const all = textbook.textbookLogits(config, w, tokens, { q8 });
    const row = all.subarray((tokens.length - 1) * V);
    let a = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[a]) a = i;
    let b = -Infinity;
    for (let i = 0; i < V; i++) if (i !== a && row[i] > b) b = row[i];
    min = Math.min(min, row[a] - b);
    if (min < MIN_MARGIN) break;
    tokens.push(a);
  }
  return min;
}

function chooseSeed(preset) {
  const config = checkpoints.presetConfig(preset);
  for (let seed = 1; seed <= MAX_SEED; seed++) {
    const promptIds = promptIdsFor(preset, seed, config.vocab_size);
    const m = textbookMinMargin(config, seed, promptIds, false);
    if (m < MIN_MARGIN) continue;
    const mq = textbookMinMargin(config, seed, promptIds, true);
    if (mq >= MIN_MARGIN) return { seed, textbookMinMargin: round6(m), textbookMinMarginQ8: round6(mq) };
  }
  throw new Error(`make-fixtures: no seed ≤ ${MAX_SEED} gives ${preset} greedy margins ≥ ${MIN_MARGIN}`);
}

function sha256(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function listFiles(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort();
}

/** Six significant digits keep fixtures small and are far below every tolerance used. */
function round6(x) {
  return Number(x.toPrecision(6));
}

/** Full-vocabulary log-softmax from node-llama-cpp's probability map (p = 0 → null: underflow). */
function logSoftmax(probabilities, nVocab) {
  const out = new Array(nVocab).fill(null);
  for (const [token, p] of probabilities) out[token] = p > 0 ? round6(Math.log(p)) : null;
  if (out.some((v) => v === null)) {
    const n = out.filter((v) => v === null).length;
    console.warn(`make-fixtures: ${n} probabilities underflowed to 0 (recorded as null)`);
  }
  return out;
}

function margin(probabilities) {
  const it = probabilities.values();
  const p1 = it.next().value;
  const p2 = it.next().value;
  return round6(Math.log(p1) - Math.log(p2));
}

const generate = (probabilities) => ({ generateNext: { token: true, probabilities, options: { temperature: 0 } } });

async function runLlamaCpp(llama, ggufPath, promptIds) {
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  const context = await model.createContext(contextOptions(threads, 128));
  const seq = context.getSequence();
  const logits = [];
  const greedy = [];
  const greedyMargins = [];

  const input = promptIds.map((id, i) => (PROMPT_POSITIONS.includes(i) ? [id, generate(true)] : id));
  const out = await seq.controlledEvaluate(input);
  for (const p of PROMPT_POSITIONS) logits.push({ position: p, values: logSoftmax(out[p].next.probabilities, nVocab) });
  let last = out[PROMPT_LENGTH - 1].next;
  for (let k = 0; ; k++) {
    greedy.push(last.token);
    greedyMargins.push(margin(last.probabilities));
    if (k === GREEDY_TOKENS - 1) break;
    const r = await seq.controlledEvaluate([[last.token, generate(true)]]);
    last = r[0].next;
    const position = PROMPT_LENGTH + k; // the position of the token just fed
    if (GENERATION_POSITIONS.includes(position)) logits.push({ position, values: logSoftmax(last.probabilities, nVocab) });
  }

  const tokenization = TEXTS.map(({ text, special }) => ({ text, special, ids: Array.from(model.tokenize(text, special)) }));
  await context.dispose();
  await model.dispose();
  return { logits, greedy, greedyMargins, tokenization };
}

function writeFixture(path, fixture) {
  // One key per line, values compact: small diffs when a fixture is regenerated.
  const lines = Object.entries(fixture).map(([k, v]) => {
    if (k === 'logits') return `  "logits": [\n${v.map((l) => `    ${JSON.stringify(l)}`).join(',\n')}\n  ]`;
    return `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`;
  });
  writeFileSync(path, `{\n${lines.join(',\n')}\n}\n`);
}

const { llama } = await loadLlama(threads);
const version = referenceVersion(llama);
console.log(`make-fixtures: ${version}, threads ${threads}`);
mkdirSync(OUT_DIR, { recursive: true });
const dtypes = args.dtypes.split(',');

for (const preset of args.presets.split(',')) {
  const dir = mkdtempSync(join(tmpdir(), `tessera-ref-${preset}-`));
  try {
    const t0 = performance.now();
    const { seed, textbookMinMargin, textbookMinMarginQ8 } = args.seed ? { seed: Number(args.seed), textbookMinMargin: null, textbookMinMarginQ8: null } : chooseSeed(preset);
    console.log(`${preset}: seed ${seed} (textbook min greedy margin ${textbookMinMargin} f32, ${textbookMinMarginQ8} q8_0), found in ${Math.round(performance.now() - t0)} ms`);
    const ck = checkpoints.writeTestCheckpoint(dir, preset, { seed, formats: ['hf', ...dtypes.map((d) => `gguf-${d}`)] });
    const hfFiles = Object.fromEntries(listFiles(ck.hfDir).map((f) => [relative(dir, f), sha256(f)]));
    const promptIds = promptIdsFor(preset, seed, ck.config.vocab_size);
    console.log(`${preset}: checkpoint written (vocab ${ck.config.vocab_size})`);
    for (const dtype of dtypes) {
      const gguf = ck.gguf[dtype];
      let result;
      try {
        result = await runLlamaCpp(llama, gguf, promptIds);
      } catch (e) {
        console.error(`${preset} ${dtype}: llama.cpp could not run ${gguf}: ${e.stack ?? e}`);
        process.exitCode = 1;
        continue;
      }
      const fixture = {
        preset, seed, dtype, llamaCppVersion: version, textbookMinGreedyMargin: dtype === 'q8_0' ? textbookMinMarginQ8 : textbookMinMargin,
        files: { [relative(dir, gguf)]: sha256(gguf), ...hfFiles },
        promptIds,
        logitsAre: 'log-softmax of llama.cpp next-token logits, 6 significant digits; position p has seen tokens 0..p of promptIds ++ greedy',
        ...result,
      };
      const path = new URL(`${preset}-${dtype}.json`, OUT_DIR);
      writeFixture(path, fixture);
      const m = [...result.greedyMargins].sort((a, b) => a - b);
      if (args.seed && m[0] < MIN_MARGIN) {
        console.error(`${preset} ${dtype}: seed ${seed} gives a greedy margin of ${m[0]} < ${MIN_MARGIN} in llama.cpp; try another --seed`);
        process.exitCode = 1;
      }
      console.log(`${preset} ${dtype}: greedy ${result.greedy.slice(0, 12).join(' ')} … | margin min ${m[0]} median ${m[m.length >> 1]} | ${relative(new URL(ROOT).pathname, path.pathname)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
await llama.dispose();
