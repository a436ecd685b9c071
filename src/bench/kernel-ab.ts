// Two builds of the kernels (e.g. a change and the commit before it, each built with `npm run
// build:kernels`) timed alternately in one process on one memory: matmul GMAC/s per weight dtype,
// token count and SmolLM2-135M matrix shape, and whether the two builds' outputs are the same bits.
// Time is this process's CPU time (process.cpuUsage), best of --rounds rounds of ≥ 60 ms per build,
// so a shared machine's load shows less than in wall-clock time (it still shares the caches).
// Prints one markdown table with the load average at its start and end. A script, not a `tessera` command:
//
//   node dist/src/bench/kernel-ab.js --a OLD.wasm --b NEW.wasm [--dtypes q4_k,q6_k] [--n 1,4,64] [--rounds 6]
//
// Both files must be the same kind of build (plain or relaxed SIMD: the relaxed flag is set first).

import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { createWasmKernels, kernelBuild } from '../kernels/wasm.js';
import { activationBytes, activationFormat, blockValues, type Kernels, type WeightDType } from '../kernels/types.js';
import { weightsOf } from './kernels-bench.js';
import { formatHelp, parseFlags, type FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptName } from '../cli/script.js';

const FLAGS: FlagSpecs = {
  a: { type: 'string', placeholder: 'FILE', description: 'kernel build A (.wasm): the baseline' },
  b: { type: 'string', placeholder: 'FILE', description: 'kernel build B (.wasm): the change' },
  dtypes: { type: 'string', list: true, choices: ['f32', 'f16', 'q8_0x4', 'q4_0x4', 'q4_k', 'q5_k', 'q6_k'], default: 'q8_0x4,q4_k,q6_k', placeholder: 'LIST', description: 'weight dtypes' },
  n: { type: 'integer', list: true, min: 1, max: 512, default: '1,4,64', placeholder: 'LIST', description: 'tokens per matmul' },
  rounds: { type: 'integer', min: 1, max: 100, default: 6, placeholder: 'N', description: 'alternating rounds (the best of each build is kept)' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

// SmolLM2-135M's matrices (rows × cols): q|k|v, o, gate|up, down
const SHAPES: [number, number][] = [[960, 576], [576, 576], [3072, 576], [576, 1536]];

function cpuMs(): number { const c = process.cpuUsage(); return (c.user + c.system) / 1000; }

/** Best CPU ms per call of fn over batches of ≥ 60 ms. */
function bestOf(fn: () => void, best: number): number {
  let reps = 0, t = 0;
  const c0 = cpuMs();
  do { fn(); reps++; t = cpuMs() - c0; } while (t < 60);
  return Math.min(best, t / reps);
}

async function main(): Promise<number> {
  const name = scriptName(import.meta.url);
  const v = parseFlags(process.argv.slice(2), FLAGS, name);
  if (v.help) {
    process.stdout.write(formatHelp(name, 'Two kernel builds timed alternately in one process (matmul GMAC/s, CPU time).', FLAGS, 'node'));
    return 0;
  }
  if (typeof v.a !== 'string' || typeof v.b !== 'string') throw new Error(`${name}: give both --a and --b (kernel .wasm files to compare); --help shows the options`);
  kernelBuild(); // sets V8's relaxed-SIMD flag where needed, before either module is compiled
  const modules = [v.a, v.b].map((f) => {
    try { return new WebAssembly.Module(readFileSync(f)); } catch (e) { throw new Error(`${name}: cannot compile ${f}: ${(e as Error).message}`); }
  });
  const load0 = loadavg().map((x) => x.toFixed(1)).join(' ');
  const lines = ['| dtype | rows×cols | n | A GMAC/s | B GMAC/s | B / A | same bits |', '|---|---|---:|---:|---:|---:|---|'];
  let seed = 1;
  const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 * 2 - 1; };
  const ns = v.n as number[], N = Math.max(...ns);
  for (const dtype of v.dtypes as WeightDType[]) {
    for (const [R, C] of SHAPES) {
      if (C % blockValues(dtype) !== 0) continue; // K-quants need whole super-blocks of 256
      const values = Float32Array.from({ length: R * C }, rand);
      const w = weightsOf(dtype, values, R);
      const format = activationFormat(dtype);
      const xqBytes = format === 'f32' ? 0 : activationBytes(format, N * C);
      const W = 65536, X = W + w.length, XQ = X + N * C * 4, YA = XQ + xqBytes, YB = YA + N * R * 4;
      const pages = Math.ceil((YB + N * R * 4 + 4096) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      new Uint8Array(memory.buffer, W, w.length).set(w);
      const xs = new Float32Array(memory.buffer, X, N * C);
      for (let i = 0; i < xs.length; i++) xs[i] = rand();
      const [ka, kb] = modules.map((m) => createWasmKernels(m, memory)) as [Kernels, Kernels];
      if (format === 'q8_0') ka.quantizeQ8(X, XQ, N * C);
      if (format === 'q8_K') ka.quantizeQ8K(X, XQ, N * C);
      const x = format === 'f32' ? X : XQ;
      for (const n of ns) {
        const run = (k: Kernels, y: number) => () => k.matmul(dtype, W, x, y, n, R, C, 0, R);
        const ra = run(ka, YA), rb = run(kb, YB);
        ra(); rb();
        const ya = new Uint32Array(memory.buffer, YA, n * R), yb = new Uint32Array(memory.buffer, YB, n * R);
        const same = ya.every((bits, i) => bits === yb[i]);
        let a = Infinity, b = Infinity;
        for (let r = 0; r < (v.rounds as number); r++) { a = bestOf(ra, a); b = bestOf(rb, b); }
        const gmac = (ms: number) => (n * R * C / ms / 1e6).toFixed(1);
        lines.push(`| ${dtype} | ${R}×${C} | ${n} | ${gmac(a)} | ${gmac(b)} | ${(a / b).toFixed(2)} | ${same ? 'yes' : 'no'} |`);
      }
    }
  }
  console.log(`A = ${v.a}, B = ${v.b} (${kernelBuild()} build kind); one thread, CPU time, best of ${v.rounds as number} alternating rounds; ` +
    `load average ${load0} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end\n`);
  console.log(lines.join('\n'));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
