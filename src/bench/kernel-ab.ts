// Kernel A/B: two builds of kernels/*.ts (e.g. a change and the commit before it) bound to one memory
// and timed alternately in one process, one thread: --op matmul (GMAC/s and GB/s of weights per weight
// dtype, token count and matrix of the SmolLM2-135M shape, or with --shape llama3.2-1b the
// Llama-3.2-1B shape, or the --shapes given; a dtype given as A:B, e.g. q6_k:q6_kx4, runs A's layout
// in build A and B's in build B — a layout change, with --b the same file as --a or left out) or --op
// attention (one layer of the SmolLM2-135M shape, 9 query / 3 KV heads, D 64, f16 or f32 cache: n = 1
// is decode, n > 1 the multi-query form, a speculative verification of n − 1 drafts, with the queries
// at the end of the cache). The two builds must agree
// within 1e-5 (relative; the bench stops otherwise); the table says whether they agree bit for bit.
//
// Timing rule: CPU time of this process (process.cpuUsage) per call, averaged over a batch of calls
// lasting ≥ --batch-ms; the builds alternate batch by batch for --rounds rounds and the best batch of
// each is kept. Why CPU time: both builds run in this one thread, taking turns, so what slows the
// machine for a while (clock speed, a neighbour's memory traffic) slows both alike; what taking turns
// does not even out is preemption: on a shared machine the scheduler pauses this thread at random, and
// wall-clock time counts a pause into whichever build was running. CPU time counts only the time the
// thread ran (cache and bandwidth contention still show; the best batch keeps the least disturbed).
// A batch rather than single calls: a decode call can take tens of µs, near the clock's resolution.
// With --cold, 256 MB are read before every call (as in a decode step, where the other layers' weights
// and rows pass through the caches between two calls); each call is then timed on its own, the sweep
// left out, and a batch (sweeps included) holds one or a few calls: raise --rounds for more of them.
// V8's compiler threads count in the process's CPU time: an untimed round per case lets them finish
// optimising the kernels' code first; the timed loops allocate next to nothing (no GC threads).
//
//   node dist/src/bench/kernel-ab.js --a OLD.wasm [--b NEW.wasm] [--a-layout OLD/dist] [--op matmul] [--dtypes q4_k,q6_k:q6_kx4] [--n 1,4,64] [--shape llama3.2-1b | --shapes 2048x8192] [--rounds 6]
//   node dist/src/bench/kernel-ab.js --op attention --a OLD.wasm [--ctx 512,4096,16384] [--n 1,5] [--cold]
//
// --b defaults to this tree's build of the kind this process runs (dist/kernels-relaxed.wasm, or
// dist/kernels.wasm with TESSERA_KERNELS=simd); both files must be that kind (the relaxed-SIMD flag is
// set first). --a-layout DIR lays A's weights out with the code of the tree whose dist folder DIR is
// (its src/bench/kernels-bench.js), for a change of an x4 layout's bytes inside one dtype. A baseline
// from a commit:
//   mkdir -p /tmp/k-base && git archive <commit> kernels | tar -x -C /tmp/k-base
//   npx asc /tmp/k-base/kernels/index.ts --config asconfig.json --target relaxed --outFile /tmp/k-base/kernels-relaxed.wasm
// Prints one markdown table with the load average at its start and end.

import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createWasmKernels, kernelBuild, kernelModule } from '../kernels/wasm.js';
import { f32ToF16 } from '../kernels/reference.js';
import { activationBytes, activationFormat, attentionStateBytes, blockValues, type CacheDType, type Kernels, type WeightDType } from '../kernels/types.js';
import { uniform01 } from '../data/rng.js';
import { weightsOf } from './kernels-bench.js';
import { isPanelDType, panelsFit } from '../kernels/repack.js';
import { CliError, UsageError, type FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const MATMUL_DTYPES = ['f32', 'f16', 'f32p', 'f16p', 'q8_0x4', 'q4_0x4', 'q4_k', 'q5_k', 'q6_k', 'q4_kx4', 'q5_kx4', 'q6_kx4'] as const;
const CACHE_DTYPES = ['f16', 'f32'] as const;

const FLAGS: FlagSpecs = {
  op: { type: 'string', choices: ['matmul', 'attention'], default: 'matmul', placeholder: 'matmul|attention', description: 'the kernel compared' },
  a: { type: 'string', required: true, placeholder: 'FILE', description: 'kernel build A (.wasm): the baseline' },
  'a-layout': { type: 'string', placeholder: 'DIR', description: "matmul: the dist folder of build A's tree, whose code lays out A's weights (a layout changed inside one dtype)" },
  b: { type: 'string', placeholder: 'FILE', description: "kernel build B (.wasm): the change (default: this tree's dist build of the kind this process runs)" },
  dtypes: { type: 'string', list: true, placeholder: 'LIST', description: `matmul: weight dtypes (${MATMUL_DTYPES.join(', ')}; default q8_0x4,q4_k,q6_k), or A:B pairs of them with the same values (build A runs A's layout, B B's); attention: cache types (f16, f32; default both)` },
  n: { type: 'integer', list: true, min: 1, max: 512, placeholder: 'LIST', description: 'tokens per matmul (default 1,4,64), or queries per attention call (default 1,5)' },
  ctx: { type: 'integer', list: true, min: 1, max: 65536, placeholder: 'LIST', description: 'attention: keys in the cache (default 512,4096,16384)' },
  rounds: { type: 'integer', min: 1, max: 100, default: 6, placeholder: 'N', description: 'alternating rounds (the best batch of each build is kept)' },
  'batch-ms': { type: 'number', min: 1, max: 10_000, default: 60, placeholder: 'MS', description: 'CPU time of one batch of calls' },
  cold: { type: 'boolean', description: 'read 256 MB before every timed call, so that weights or K/V rows come from memory' },
  shape: { type: 'string', choices: ['smollm2-135m', 'llama3.2-1b'], default: 'smollm2-135m', placeholder: 'NAME', description: 'matmul: the model whose matrices are timed' },
  shapes: { type: 'string', list: true, placeholder: 'LIST', description: 'matmul: ROWSxCOLS matrix shapes to time instead of --shape\'s (e.g. 2048x8192)' },
  'weight-scale': { type: 'number', default: 1, min: 1e-6, max: 1e6, placeholder: 'S', description: 'matmul: weights uniform in ±S (0.02: the size of a real model\'s, whose K-quant scales are f16 subnormals)' },
};

/** Matrices (rows × cols) of each shape: q|k|v, o, gate|up, down. */
const MATMUL_SHAPES: Record<string, [number, number][]> = {
  'smollm2-135m': [[960, 576], [576, 576], [3072, 576], [576, 1536]],
  'llama3.2-1b': [[3072, 2048], [2048, 2048], [16384, 2048], [2048, 8192]],
};

/** One row of the table: what it measures, the two builds' calls and outputs, and its cells from
 *  the two builds' µs per call. */
interface Case {
  label: string[];
  calls: [() => void, () => void];
  outputs: () => [Float32Array, Float32Array];
  cells: (aUs: number, bUs: number) => string[];
}

const HEADERS = {
  matmul: '| dtype | rows×cols | n | A GMAC/s | B GMAC/s | A GB/s | B GB/s | B / A | same bits |\n|---|---|---:|---:|---:|---:|---:|---:|---|',
  attention: '| cache | keys | n | A µs | B µs | speed-up | B: ns per key, head and query | same bits |\n|---|---:|---:|---:|---:|---:|---:|---|',
};

function cpuMs(): number { const c = process.cpuUsage(); return (c.user + c.system) / 1000; }

/** CPU ms per call of `call` over one batch of ≥ `batchMs`; the clock (a system call) is read after
 *  runs of calls doubled up to ≥ 1 ms, so its own cost stays out of a call of a few µs. With `before`
 *  (the cache sweep), each call is timed alone, the sweep left out of the mean but not of the
 *  batch's length (so a batch is one or a few calls, and a cold run takes about as long as a warm one). */
function batch(call: () => void, batchMs: number, before?: () => void): number {
  let reps = 0, t = 0;
  const start = cpuMs();
  if (!before) {
    let run = 1;
    do {
      for (let i = 0; i < run; i++) call();
      reps += run;
      t = cpuMs() - start;
      if (t < 1) run *= 2;
    } while (t < batchMs);
    return t / reps;
  }
  do { before(); const c0 = cpuMs(); call(); t += cpuMs() - c0; reps++; } while (cpuMs() - start < batchMs);
  return t / reps;
}

/** Whether the outputs are the same bits; throws when they differ by more than 1e-5 relative, with
 *  the outputs' rms as the floor (as the kernel tests' assertClose: a layout that reorders a sum
 *  moves an output that cancels to near zero by more than 1e-5 of itself). */
function compare(label: string[], a: Float32Array, b: Float32Array): boolean {
  let same = true, ss = 0;
  for (let i = 0; i < a.length; i++) ss += a[i]! * a[i]!;
  const rms = Math.sqrt(ss / Math.max(1, a.length));
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i])) continue;
    same = false;
    if (!(Math.abs(a[i]! - b[i]!) <= 1e-5 * (1 + Math.abs(a[i]!) + rms))) {
      throw new Error(`the builds differ at ${label.join(' ')} element ${i}: ${a[i]} vs ${b[i]} (not the same computation: nothing to time)`);
    }
  }
  return same;
}

function rand01(seed: number): () => number { const r = uniform01(seed); return () => r() * 2 - 1; }

type WeightsOf = (dtype: WeightDType, values: Float32Array, rows: number) => Uint8Array;

function* matmulCases(modules: [WebAssembly.Module, WebAssembly.Module], pairs: [WeightDType, WeightDType][], ns: number[],
                      shapes: [number, number][], weightsOfA: WeightsOf, weightScale = 1): Generator<Case> {
  const N = Math.max(...ns), rand = rand01(1);
  for (const [dtypeA, dtypeB] of pairs) {
    for (const [R, C] of shapes) {
      if (C % blockValues(dtypeA) !== 0) continue; // K-quants need whole super-blocks of 256
      if (R % 4 !== 0 && (dtypeA.endsWith('x4') || dtypeB.endsWith('x4'))) continue; // the x4 layouts take whole groups of four rows
      if ((isPanelDType(dtypeA) || isPanelDType(dtypeB)) && !panelsFit(R, C)) continue; // panels: wide matrices in whole groups
      const values = Float32Array.from({ length: R * C }, () => rand() * weightScale);
      const wa = weightsOfA(dtypeA, values, R), wb = dtypeB === dtypeA && weightsOfA === weightsOf ? wa : weightsOf(dtypeB, values, R);
      const format = activationFormat(dtypeA);
      const xqBytes = format === 'f32' ? 0 : activationBytes(format, N * C);
      // B's weights (a layout of their own, or A's again) after A's
      // each build quantises the activations into its own buffer (q8_0's block sums are newer than some builds)
      const W = 65536, WB = W + wa.length, X = WB + wb.length, XQA = X + N * C * 4, XQB = XQA + xqBytes, YA = XQB + xqBytes, YB = YA + N * R * 4;
      const pages = Math.ceil((YB + N * R * 4 + 4096) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      new Uint8Array(memory.buffer, W, wa.length).set(wa);
      new Uint8Array(memory.buffer, WB, wb.length).set(wb);
      const xs = new Float32Array(memory.buffer, X, N * C);
      for (let i = 0; i < xs.length; i++) xs[i] = rand();
      const [ka, kb] = modules.map((m) => createWasmKernels(m, memory)) as [Kernels, Kernels];
      for (const n of ns) {
        // quantised for exactly the n rows of the call (the layout of q8_0's block sums depends on n)
        for (const [k, xq] of [[ka, XQA], [kb, XQB]] as const) {
          if (format === 'q8_0') k.quantizeQ8(X, xq, n * C);
          if (format === 'q8_K') k.quantizeQ8K(X, xq, n * C);
        }
        const run = (k: Kernels, dtype: WeightDType, w: number, y: number) => () =>
          k.matmul(dtype, w, format === 'f32' ? X : k === ka ? XQA : XQB, y, n, R, C, 0, R);
        const gmac = (us: number) => (n * R * C / us / 1e3).toFixed(1);
        const gbs = (us: number) => (wa.length / us / 1e3).toFixed(1); // weight bytes per call (the same in both layouts)
        yield {
          label: [dtypeA === dtypeB ? dtypeA : `${dtypeA} → ${dtypeB}`, `${R}×${C}`, String(n)], calls: [run(ka, dtypeA, W, YA), run(kb, dtypeB, WB, YB)],
          outputs: () => [new Float32Array(memory.buffer, YA, n * R), new Float32Array(memory.buffer, YB, n * R)],
          cells: (a, b) => [gmac(a), gmac(b), gbs(a), gbs(b), (a / b).toFixed(2)],
        };
      }
    }
  }
}

type RawAttention = (cache: CacheDType, ...args: number[]) => void;

/** The module's attention export, called as is (an older build may take a state of 0, which the
 *  current Kernels wrapper refuses). */
function rawAttention(module: WebAssembly.Module, memory: WebAssembly.Memory): RawAttention {
  const x = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
  return (cache, ...args) => (cache === 'f16' ? x.attentionF16! : x.attentionF32!)(...args);
}

function* attentionCases(modules: [WebAssembly.Module, WebAssembly.Module], caches: CacheDType[], contexts: number[], ns: number[]): Generator<Case> {
  const H = 9, HKV = 3, D = 64;
  for (const cache of caches) {
    for (const S of contexts) {
      const es = cache === 'f16' ? 2 : 4, kvBytes = S * HKV * D * es, nMax = Math.max(...ns);
      const qBytes = nMax * H * D * 4, state = attentionStateBytes(nMax, H, HKV, D, S);
      const pages = Math.ceil((65536 + 2 * kvBytes + 3 * qBytes + nMax * 4 + state + 4096) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const K = 65536, V = K + kvBytes, Q = V + kvBytes, OA = Q + qBytes, OB = OA + qBytes, P = OB + qBytes;
      const ST = (P + nMax * 4 + 15) & ~15;
      const f32 = new Float32Array(memory.buffer), u16 = new Uint16Array(memory.buffer), rand = rand01(S + 17);
      if (cache === 'f16') for (let i = 0; i < kvBytes; i++) u16[K / 2 + i] = f32ToF16(rand());
      else for (let i = 0; i < kvBytes / 2; i++) f32[K / 4 + i] = rand();
      for (let i = 0; i < nMax * H * D; i++) f32[Q / 4 + i] = rand() * 3;
      const [ka, kb] = modules.map((m) => rawAttention(m, memory)) as [RawAttention, RawAttention];
      for (const n of ns) {
        const pos = new Int32Array(memory.buffer, P, n);
        for (let t = 0; t < n; t++) pos[t] = S - n + t;
        const call = (k: RawAttention, out: number, st: number) => () => k(cache, Q, P, K, V, out, n, S, H, HKV, D, 0.125, 0, 0, st, 0, H);
        // the baseline as the engine called it then: one query without state (decode) where it
        // accepts that, the multi-query form with it; the change as the engine calls it now
        let baseState = n > 1 ? ST : 0;
        try { call(ka, OA, baseState)(); } catch { baseState = ST; } // a baseline that requires state traps on 0
        yield {
          label: [cache, String(S), String(n)], calls: [call(ka, OA, baseState), call(kb, OB, ST)],
          outputs: () => [f32.subarray(OA / 4, OA / 4 + n * H * D), f32.subarray(OB / 4, OB / 4 + n * H * D)],
          cells: (a, b) => [a.toFixed(0), b.toFixed(0), `${(a / b).toFixed(2)}×`, (b * 1e3 / (S * H * n)).toFixed(1)],
        };
      }
    }
  }
}

/** The --dtypes of the op, each checked against what the op takes. */
function dtypesOf(op: string, given: string[] | undefined): string[] {
  const allowed: readonly string[] = op === 'matmul' ? MATMUL_DTYPES : CACHE_DTYPES;
  const list = given ?? (op === 'matmul' ? ['q8_0x4', 'q4_k', 'q6_k'] : [...CACHE_DTYPES]);
  const bad = list.flatMap((d) => op === 'matmul' ? d.split(':') : [d]).find((d) => !allowed.includes(d));
  if (bad !== undefined) throw new UsageError(`--dtypes with --op ${op} takes ${allowed.join(', ')}, got '${bad}'`);
  return list;
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Two kernel builds timed alternately in one process, one thread, CPU time: matmul or attention.');
  if (!v) return 0;
  const op = v.op as string, rounds = v.rounds as number, batchMs = v['batch-ms'] as number, cold = v.cold === true;
  if (op === 'matmul' && v.ctx !== undefined) throw new UsageError('--ctx is for --op attention');
  if (op === 'attention' && (v.shape !== 'smollm2-135m' || v.shapes !== undefined)) throw new UsageError('--shape and --shapes are for --op matmul');
  const shapes = ((v.shapes as string[] | undefined) ?? []).map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`--shapes takes ROWSxCOLS, e.g. 2048x8192, got '${s}'`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  const dtypes = dtypesOf(op, v.dtypes as string[] | undefined);
  if (op === 'attention' && v['a-layout'] !== undefined) throw new UsageError('--a-layout is for --op matmul');
  const layoutA = v['a-layout'] as string | undefined;
  let weightsOfA: WeightsOf = weightsOf;
  if (layoutA !== undefined) {
    const file = resolve(layoutA, 'src/bench/kernels-bench.js');
    try { weightsOfA = ((await import(pathToFileURL(file).href)) as { weightsOf: WeightsOf }).weightsOf; } catch (e) {
      throw new CliError(`cannot load ${file}: ${(e as Error).message}`, "give --a-layout the dist folder of build A's tree (built with npm run build)");
    }
  }
  const build = kernelBuild(); // sets V8's relaxed-SIMD flag where needed, before either module is compiled
  const compile = (f: string) => {
    try { return new WebAssembly.Module(readFileSync(f)); } catch (e) {
      throw new CliError(`cannot read or compile ${f}: ${(e as Error).message}`, `give a kernels .wasm of the ${build} kind (the header of src/bench/kernel-ab.ts says how to build one from a commit)`);
    }
  };
  const modules: [WebAssembly.Module, WebAssembly.Module] = [compile(v.a as string), v.b === undefined ? kernelModule(build) : compile(v.b as string)];
  const bName = (v.b as string | undefined) ?? `this tree's ${build} build`;
  // --cold: a read of every 64-byte line of 256 MB before each timed call
  const sweep = new Float64Array(cold ? 32 << 20 : 0);
  let sink = 0; // read by nothing; the sum keeps the loads
  const evict = cold ? (): void => { for (let i = 0; i < sweep.length; i += 8) sink += sweep[i]!; } : undefined;
  const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
  const load0 = load();
  const cases = op === 'matmul'
    ? matmulCases(modules, dtypes.map((d) => { const [a, b] = d.split(':'); return [a, b ?? a] as [WeightDType, WeightDType]; }),
      (v.n as number[] | undefined) ?? [1, 4, 64], shapes.length > 0 ? shapes : MATMUL_SHAPES[v.shape as string]!, weightsOfA, v['weight-scale'] as number)
    : attentionCases(modules, dtypes as CacheDType[], (v.ctx as number[] | undefined) ?? [512, 4096, 16384], (v.n as number[] | undefined) ?? [1, 5]);
  const lines = [HEADERS[op as keyof typeof HEADERS]];
  for (const c of cases) {
    c.calls.forEach((f) => f());
    const same = compare(c.label, ...c.outputs());
    c.calls.forEach((f) => batch(f, batchMs, evict)); // untimed: V8 finishes optimising the kernels' code
    const best = [Infinity, Infinity];
    for (let r = 0; r < rounds; r++) c.calls.forEach((f, i) => { best[i] = Math.min(best[i]!, batch(f, batchMs, evict)); });
    const [a, b] = best.map((ms) => ms * 1e3) as [number, number];
    lines.push(`| ${[...c.label, ...c.cells(a, b), same ? 'yes' : 'no'].join(' | ')} |`);
  }
  console.log(`${op} A/B: A = ${v.a}, B = ${bName} (${build} kind); one thread, CPU time per call, best batch of ≥ ${batchMs} ms over ${rounds} alternating rounds` +
    `${cold ? ', caches swept before every call (cold)' : ''}; load average ${load0} at the start, ${load()} at the end\n`);
  console.log(lines.join('\n'));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
