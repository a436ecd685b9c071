// Shows that model + KV cache may total well over 4 GiB (the limit of one 32-bit WebAssembly memory):
// loads a random-weight f32 model with the shape of Llama-3.2-1B (≈ 4.9 GB of weights, written once
// to the bench folder) with a long KV cache, prints what `tessera info` reports it needs, generates a
// few tokens, and prints the process's resident memory. A script, not a `tessera` command:
//
//   node dist/src/bench/large-model.js [--ctx 32768] [--tokens 8] [--threads 2]

import { availableParallelism } from 'node:os';
import { describeModel, loadModel } from '../models/load.js';
import { benchFile, benchFilePath, estimatedBenchFileBytes } from './bench-files.js';
import { randomIds } from '../testing/random-model.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const FLAGS: FlagSpecs = {
  ctx: { type: 'integer', min: 1, default: 32768, placeholder: 'N', description: 'KV-cache capacity in tokens' },
  tokens: { type: 'integer', min: 1, default: 8, placeholder: 'N', description: 'tokens to generate' },
  threads: { type: 'integer', min: 1, max: 1024, placeholder: 'N', description: 'threads including the main one (default: all cores)' },
};

const GiB = 2 ** 30;

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, `Loads a random-weight Llama-3.2-1B-shaped f32 model (written once to ${benchFilePath('llama3.2-1b', 'f32')},\n` +
    `about ${(estimatedBenchFileBytes('llama3.2-1b', 'f32') / 1e9).toFixed(1)} GB) with a long KV cache, generates a few tokens and prints the memory used.`);
  if (!v) return 0;
  const ctx = v.ctx as number, tokens = v.tokens as number, threads = (v.threads as number | undefined) ?? availableParallelism();
  const file = benchFile('llama3.2-1b', 'f32', (path) => process.stderr.write(`writing ${path} (random weights, Llama-3.2-1B shape, f32, about ${(estimatedBenchFileBytes('llama3.2-1b', 'f32') / 1e9).toFixed(1)} GB)…\n`));
  const info = describeModel(file);
  const need = info.memoryNeeded(ctx);
  console.log(`model: ${file}`);
  console.log(`parameters: ${(info.parameters / 1e9).toFixed(3)} B, weights ${(info.weightBytes / GiB).toFixed(2)} GiB, KV ${(info.kvBytesPerToken / 1024).toFixed(0)} KiB/token`);
  console.log(`memory needed at context ${ctx}: ${(need / GiB).toFixed(2)} GiB (one 32-bit WebAssembly memory holds 4 GiB)`);

  const t0 = performance.now();
  let last = -1;
  const { model } = await loadModel(file, {
    threads, contextLength: ctx,
    onProgress: (p) => {
      const pct = Math.floor((100 * p.loadedBytes) / p.totalBytes);
      if (pct >= last + 10) { last = pct; process.stderr.write(`loading ${pct}%\n`); }
    },
  });
  console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const cache = model.createCache();
    const prompt = randomIds(5, 16, model.vocabSize);
    let logits = model.forward(prompt, cache);
    const out: number[] = [];
    const t1 = performance.now();
    for (let i = 0; i < tokens; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
      out.push(best);
      logits = model.forward([best], cache);
    }
    const dt = (performance.now() - t1) / 1000;
    if (out.some((t) => !Number.isInteger(t)) || !logits.every(Number.isFinite)) throw new Error('non-finite logits');
    console.log(`generated ${tokens} tokens: [${out.join(', ')}] at ${(tokens / dt).toFixed(2)} tok/s`);
    console.log(`resident memory: ${(process.memoryUsage().rss / GiB).toFixed(2)} GiB (KV pages are committed only as they are written)`);
  } finally { model.dispose(); }
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
