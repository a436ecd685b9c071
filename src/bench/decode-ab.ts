// Decode A/B of two builds of Tessera (e.g. a change and the commit before it, each a built tree's
// dist folder), in one process: each build loads the same GGUF file with its own thread pool and
// prefills the same random prompt, then the two decode alternately, --steps greedy steps per block,
// the order flipping block by block, so a loaded machine slows both alike. Prints the median and the
// fastest block of each (ms per decode step), and whether the two gave the same logits bits and
// greedy tokens. With --prefill-rounds N the prefill is timed instead: each build prefills the
// prompt into a fresh cache N times, the builds alternating (the order flipping each round), and the
// table gives each build's median and fastest prefill, and whether their last logits are the same
// bits. Both models are in memory at once (twice the file's weights). A script:
//
//   node dist/src/bench/decode-ab.js --a OLD/dist --model FILE [--b NEW/dist] [--ctx 512] [--threads 2] [--rounds 10] [--steps 4]
//   node dist/src/bench/decode-ab.js --a OLD/dist --model FILE --prefill-rounds 6 [--ctx 512] [--threads 2]
//
// A baseline build from a commit: git archive COMMIT | tar -x -C /tmp/base, link node_modules into
// it, npm run build there; --a /tmp/base/dist.

import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const FLAGS: FlagSpecs = {
  a: { type: 'string', required: true, placeholder: 'DIR', description: 'build A\'s dist folder (the baseline)' },
  b: { type: 'string', placeholder: 'DIR', description: 'build B\'s dist folder (default: this tree\'s)' },
  model: { type: 'string', required: true, placeholder: 'FILE', description: 'the GGUF file both builds load' },
  ctx: { type: 'integer', min: 1, max: 131072, default: 512, placeholder: 'N', description: 'prompt tokens before the timed steps' },
  threads: { type: 'integer', min: 1, max: 64, default: 2, placeholder: 'N', description: 'threads of each build\'s pool' },
  rounds: { type: 'integer', min: 1, max: 1000, default: 10, placeholder: 'N', description: 'alternating blocks per build' },
  steps: { type: 'integer', min: 1, max: 1000, default: 4, placeholder: 'N', description: 'decode steps per block' },
  'prefill-rounds': { type: 'integer', min: 1, max: 100, placeholder: 'N', description: 'time N alternating prefills per build instead of decode steps' },
};

interface Build { name: string; model: { forward(tokens: number[], cache: unknown): Float32Array; createCache(): { release(): void }; dispose(): void; vocabSize: number };
  cache: unknown; last: Float32Array; tokens: number[]; times: number[]; prompt: number[] }

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** The bits of x, to compare two builds' logits exactly. */
function bits(x: Float32Array): Uint32Array { return new Uint32Array(x.buffer, x.byteOffset, x.length); }

function median(xs: number[]): number { return [...xs].sort((p, q) => p - q)[xs.length >> 1]!; }

function load(): string { return loadavg().map((x) => x.toFixed(1)).join(' '); }

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Decode ms/step (with --prefill-rounds: prefill seconds) of two Tessera builds alternating in one process on one GGUF file.');
  if (!v) return 0;
  const ctx = v.ctx as number, rounds = v.rounds as number, steps = v.steps as number, threads = v.threads as number;
  const dirs: [string, string][] = [['A', resolve(v.a as string)], ['B', v.b === undefined ? new URL('../..', import.meta.url).pathname : resolve(v.b as string)]];
  const builds: Build[] = [];
  try {
    for (const [name, dir] of dirs) {
      const at = (p: string) => pathToFileURL(resolve(dir, p)).href;
      const { loadModel } = await import(at('src/models/load.js')) as typeof import('../models/load.js');
      const { randomIds } = await import(at('src/testing/random-model.js')) as typeof import('../testing/random-model.js');
      const { model } = await loadModel(v.model as string, { threads, contextLength: ctx + (rounds + 1) * steps + 1, prefillChunk: 64, cacheDType: 'f16' });
      const cache = model.createCache(), prompt = randomIds(1234, ctx, model.vocabSize);
      const t0 = performance.now();
      const last = model.forward(prompt, cache as never);
      process.stderr.write(`decode-ab: ${name} (${dir}) prefilled ${ctx} tokens in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      builds.push({ name, model: model as unknown as Build['model'], cache, last, tokens: [], times: [], prompt });
    }
    if (v['prefill-rounds'] !== undefined) { prefillAB(builds as [Build, Build], dirs, v.model as string, ctx, threads, v['prefill-rounds'] as number); return 0; }
    const step = (b: Build) => { b.last = b.model.forward([argmax(b.last)], b.cache); b.tokens.push(argmax(b.last)); };
    for (const b of builds) for (let s = 0; s < steps; s++) step(b); // warm-up block, untimed
    const load0 = load();
    for (let r = 0; r < rounds; r++) {
      for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
        const t0 = performance.now();
        for (let s = 0; s < steps; s++) step(b);
        b.times.push((performance.now() - t0) / steps);
      }
    }
    const [A, B] = builds as [Build, Build];
    const same = agreement(A, B, A.tokens.join() === B.tokens.join());
    const [ma, mb] = [median(A.times), median(B.times)];
    console.log(`Decode A/B, ${v.model as string}, ${ctx}-token prompt, ${threads} thread${threads > 1 ? 's' : ''} per build, ${rounds} alternating ` +
      `blocks of ${steps} steps; A = ${dirs[0]![1]}, B = ${dirs[1]![1]}; load average ${load0} at the start, ${load()} at the end\n`);
    console.log('| ctx | A ms/step (median) | B ms/step (median) | A / B | fastest block A / B | same logits bits and tokens |\n|---:|---:|---:|---:|---:|---|');
    console.log(`| ${ctx} | ${ma.toFixed(1)} | ${mb.toFixed(1)} | ${(ma / mb).toFixed(2)}× | ${Math.min(...A.times).toFixed(1)} / ${Math.min(...B.times).toFixed(1)} | ${same} |`);
  } finally {
    for (const b of builds) b.model.dispose();
  }
  return 0;
}

/** --prefill-rounds: each build prefills the same prompt into a fresh cache `rounds` times, the
 *  builds alternating (the order flipping each round); prints the medians and the fastest. */
function prefillAB(builds: [Build, Build], dirs: [string, string][], model: string, ctx: number, threads: number, rounds: number): void {
  const load0 = load();
  for (const b of builds) { (b.cache as { release(): void }).release(); b.times = []; } // the load-time prompt's pages
  for (let r = 0; r < rounds; r++) {
    for (const b of r % 2 === 0 ? builds : [...builds].reverse()) {
      const cache = b.model.createCache();
      const t0 = performance.now();
      b.last = b.model.forward(b.prompt, cache);
      b.times.push((performance.now() - t0) / 1000);
      cache.release();
    }
  }
  const [A, B] = builds;
  const same = agreement(A, B, true);
  const [ma, mb] = [median(A.times), median(B.times)];
  console.log(`Prefill A/B, ${model}, ${ctx}-token prompt into a fresh cache, ${threads} thread${threads > 1 ? 's' : ''} per build, ${rounds} alternating ` +
    `prefills per build; A = ${dirs[0]![1]}, B = ${dirs[1]![1]}; load average ${load0} at the start, ${load()} at the end\n`);
  console.log('| ctx | A s (median) | B s (median) | A / B | fastest A / B | every prefill A; B (s) | same last logits bits |\n|---:|---:|---:|---:|---:|---|---|');
  console.log(`| ${ctx} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(3)}× | ${Math.min(...A.times).toFixed(2)} / ${Math.min(...B.times).toFixed(2)} | ` +
    `${A.times.map((t) => t.toFixed(2)).join(' ')}; ${B.times.map((t) => t.toFixed(2)).join(' ')} | ${same} |`);
}

/** 'yes' when the last logits are the same bits (and the tokens the same), else how far apart: a
 *  change that reorders a sum may move the bits but should not move the tokens. */
function agreement(A: Build, B: Build, sameTokens: boolean): string {
  const a = bits(A.last), b = bits(B.last);
  if (sameTokens && a.every((w, i) => w === b[i])) return 'yes';
  let most = 0;
  for (let i = 0; i < A.last.length; i++) most = Math.max(most, Math.abs(A.last[i]! - B.last[i]!));
  return `no: tokens ${sameTokens ? 'the same' : 'differ'}, last logits ${most.toExponential(1)} apart at most`;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
