// Single-thread kernel throughput: matmul decode (n = 1, memory-bound: GB/s of weights read) and
// prefill (n = 8, GFLOP/s), SIMD build vs the plain-TypeScript reference, per weight dtype.
// Run: node dist/src/bench/kernels-bench.js [--quick] [--ref] [--only=f32,q8_0,attention]  (--help: the options)

import { createReferenceKernels, f32ToBF16, f32ToF16, quantizeToQ4_0, quantizeToQ8_0 } from '../kernels/reference.js';
import { createWasmKernels, kernelModule } from '../kernels/wasm.js';
import { quantizeToK, type KQuantType } from '../kernels/k-quants.js';
import { panelBase, repackKX4, repackPanels, repackX4 } from '../kernels/repack.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { activationBytes, activationFormat, attentionStateBytes, blockValues, weightBytes, type Kernels, type WeightDType } from '../kernels/types.js';

const DTYPES: WeightDType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q8_0x4', 'q4_0', 'q4_0x4', 'q4_k', 'q4_kx4', 'q5_k', 'q5_kx4', 'q6_k', 'q6_kx4'];
// (rows, cols): a 2048-wide model's projections, and SmolLM2-135M's (hidden 576, ffn 1536).
const SHAPES: [number, number][] = [[2048, 2048], [8192, 2048], [1536, 576], [576, 1536]];

/** `values` (rows × cols) in `dtype`'s bytes (x4 dtypes repacked), as a loader would leave them. */
export function weightsOf(dtype: WeightDType, values: Float32Array, rows: number): Uint8Array {
  switch (dtype) {
    case 'f32': return new Uint8Array(values.buffer.slice(0));
    case 'f16': return new Uint8Array(Uint16Array.from(values, f32ToF16).buffer);
    case 'bf16': return new Uint8Array(Uint16Array.from(values, f32ToBF16).buffer);
    case 'q8_0': return quantizeToQ8_0(values);
    case 'q4_0': return quantizeToQ4_0(values);
    case 'q4_k': case 'q5_k': case 'q6_k': return quantizeToK(dtype, values);
    case 'q8_0x4': case 'q4_0x4': {
      const base = dtype === 'q8_0x4' ? 'q8_0' : 'q4_0';
      const w = weightsOf(base, values, rows);
      repackX4(base, w, rows, values.length / rows);
      return w;
    }
    case 'q4_kx4': case 'q5_kx4': case 'q6_kx4': {
      const base = dtype.slice(0, 4) as KQuantType;
      const w = quantizeToK(base, values);
      repackKX4(base, w, rows, values.length / rows);
      return w;
    }
    case 'f32p': case 'f16p': case 'bf16p': {
      const base = panelBase(dtype), w = weightsOf(base, values, rows);
      repackPanels(base, w, rows, values.length / rows);
      return w;
    }
  }
}

/** Fastest ms per call of fn, run for at least minMs (and at least 3 times). */
function timeIt(fn: () => void, minMs: number): number {
  fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || performance.now() - start < minMs) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[0]!; // the minimum: least disturbed by other processes
}

const FLAGS: FlagSpecs = {
  quick: { type: 'boolean', description: 'time each case for 100 ms instead of 600 ms' },
  ref: { type: 'boolean', description: 'also time the plain-TypeScript reference (slow)' },
  only: { type: 'string', list: true, choices: [...DTYPES, 'attention'], placeholder: 'LIST', description: `only these weight dtypes and/or attention (${[...DTYPES, 'attention'].join(', ')})` },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Single-thread kernel throughput per weight dtype (matmul n = 1 and n = 8) and attention, SIMD build vs the TypeScript reference.');
  if (!v) return 0;
  const minMs = v.quick === true ? 100 : 600;
  const withRef = v.ref === true;
  const only = v.only as string[] | undefined;
  const dtypes = only ? DTYPES.filter((d) => only.includes(d)) : DTYPES;
  const rows: string[][] = [['dtype', 'rows×cols', 'impl', 'n=1 ms', 'n=1 GB/s', 'n=8 ms', 'n=8 GFLOP/s']];
  let seed = 1;
  const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 * 2 - 1; };
  for (const [R, C] of SHAPES) {
    const values = new Float32Array(R * C);
    for (let i = 0; i < values.length; i++) values[i] = rand();
    for (const dtype of dtypes) {
      if (C % blockValues(dtype) !== 0) continue; // K-quants need whole super-blocks of 256
      const w = weightsOf(dtype, values, R);
      const n = 8;
      const xqBytes = Math.max(activationBytes('q8_0', n * C), C % 256 === 0 ? activationBytes('q8_K', n * C) : 0);
      const bytes = 65536 + w.length + n * C * 4 + xqBytes + n * R * 4 + 4096;
      const pages = Math.ceil(bytes / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const W = 65536, X = W + w.length, XQ = X + n * C * 4, Y = XQ + xqBytes;
      new Uint8Array(memory.buffer, W, w.length).set(w);
      const xs = new Float32Array(memory.buffer, X, n * C);
      for (let i = 0; i < xs.length; i++) xs[i] = rand();
      const impls: [string, Kernels][] = [['wasm', createWasmKernels(kernelModule(), memory)]];
      if (withRef) impls.push(['reference', createReferenceKernels(memory)]);
      for (const [name, k] of impls) {
        const format = activationFormat(dtype);
        const x = format === 'f32' ? X : XQ;
        if (format === 'q8_0') k.quantizeQ8(X, XQ, n * C);
        if (format === 'q8_K') k.quantizeQ8K(X, XQ, n * C);
        const budget = name === 'reference' ? minMs / 4 : minMs;
        const t1 = timeIt(() => k.matmul(dtype, W, x, Y, 1, R, C, 0, R), budget);
        const t8 = timeIt(() => k.matmul(dtype, W, x, Y, n, R, C, 0, R), budget);
        rows.push([dtype, `${R}×${C}`, name, t1.toFixed(3), (w.length / t1 / 1e6).toFixed(2),
          t8.toFixed(2), (2 * R * C * n / t8 / 1e6).toFixed(2)]);
      }
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  if (rows.length > 1) for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join('  ')); // no matmul table when --only names attention alone
  if (!only || only.includes('attention')) attentionBench(minMs, rand);
  return 0;
}

/** Attention over a synthetic cache of SmolLM2-135M's shape (9 query heads, 3 KV heads, D = 64),
 *  f32 and f16 caches: decode (n = 1; ms per call and GB/s of K+V read) and a 64-token prefill chunk
 *  at the end of the cache (the multi-query form; GFLOP/s counting 4·D flops per query, head and key). */
function attentionBench(minMs: number, rand: () => number): void {
  const H = 9, Hkv = 3, D = 64, chunk = 64;
  const rows: string[][] = [['cache', 'S', 'queries', 'ms', 'K+V GB/s', 'GFLOP/s']];
  for (const cache of ['f32', 'f16'] as const) {
    for (const S of [4096, 32768]) {
      const es = cache === 'f16' ? 2 : 4, kvBytes = S * Hkv * D * es;
      const qBytes = chunk * H * D * 4;
      const pages = Math.ceil((65536 + 2 * kvBytes + 2 * qBytes + chunk * 4 + attentionStateBytes(chunk, H, Hkv, D, S) + 4096) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const K = 65536, V = K + kvBytes, Q = V + kvBytes, O = Q + qBytes, P = O + qBytes, state = P + chunk * 4;
      const f32 = new Float32Array(memory.buffer), u16 = new Uint16Array(memory.buffer);
      if (cache === 'f16') for (let i = 0; i < 2 * kvBytes / 2; i++) u16[K / 2 + i] = f32ToF16(rand());
      else for (let i = 0; i < 2 * kvBytes / 4; i++) f32[K / 4 + i] = rand();
      for (let i = 0; i < chunk * H * D; i++) f32[Q / 4 + i] = rand();
      const k = createWasmKernels(kernelModule(), memory);
      for (const n of [1, chunk]) {
        const pos = new Int32Array(memory.buffer, P, n);
        for (let t = 0; t < n; t++) pos[t] = S - n + t;
        const t = timeIt(() => k.attention(Q, P, K, V, O, cache, n, S, H, Hkv, D, 0.125, 0, 0, state, 0, H), minMs);
        const keys = n * (S - (n - 1) / 2); // query t attends to S − n + t + 1 keys
        rows.push([cache, String(S), String(n), t.toFixed(3), n === 1 ? (2 * kvBytes / t / 1e6).toFixed(2) : '',
          (4 * D * H * keys / t / 1e6).toFixed(2)]);
      }
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  if (rows.length > 1) for (const r of rows) console.log(r.map((cell, c) => cell.padStart(widths[c]!)).join('  ')); // no matmul table when --only names attention alone
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
