// Shows that model + KV cache may total well over 4 GiB (the limit of one 32-bit WebAssembly memory):
// loads a random-weight f32 model with the shape of Llama-3.2-1B (≈ 4.9 GB of weights) with a long
// KV cache, prints what `tessera info` reports it needs, generates a few tokens, and prints the
// process's resident memory.
//
//   node dist/src/bench/large-model.js [--ctx 32768] [--tokens 8] [--threads 2]

import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { describeModel, loadModel } from '../models/load.js';
import { benchFile } from './bench-files.js';
import { randomIds } from '../testing/random-model.js';

const GiB = 2 ** 30;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    ctx: { type: 'string', default: '32768' }, tokens: { type: 'string', default: '8' },
    threads: { type: 'string', default: String(availableParallelism()) },
  } });
  const ctx = Number(values.ctx), tokens = Number(values.tokens), threads = Number(values.threads);
  const file = benchFile('llama3.2-1b', 'f32', (path) => process.stderr.write(`writing ${path} (random weights, Llama-3.2-1B shape, f32)…\n`));
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
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
