// Attention kernel A/B: two builds of kernels/*.ts (a baseline module built from older sources, and
// this tree's dist/kernels*.wasm) bound to one memory and timed alternately round by round, so a
// loaded machine slows both alike; the fastest call of each is kept. One call is one layer of the
// SmolLM2-135M shape (9 query heads, 3 KV heads, D 64), one thread: n = 1 is decode, n > 1 the
// multi-query form (a speculative verification of n − 1 drafts), with the queries at the end of the
// cache. Both builds must give results within 1e-5 of each other (the bench refuses otherwise).
// Build a baseline from a commit, then run:
//   mkdir -p /tmp/att-base && git archive <commit> kernels | tar -x -C /tmp/att-base
//   npx asc /tmp/att-base/kernels/index.ts --config asconfig.json --target relaxed --outFile /tmp/att-base/kernels-relaxed.wasm
//   node dist/src/bench/attention-ab.js --baseline /tmp/att-base/kernels-relaxed.wasm [--ctx 512,4096,16384] [--queries 1,5] [--rounds 7] [--cold]
// (--baseline takes a build of the same target as this process runs: relaxed unless TESSERA_KERNELS=simd.)

import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { f32ToF16 } from '../kernels/reference.js';
import { attentionStateBytes, type CacheDType } from '../kernels/types.js';
import { kernelBuild, kernelModule } from '../kernels/wasm.js';
import { uniform01 } from '../data/rng.js';

const H = 9, HKV = 3, D = 64;

type RawAttention = (cache: CacheDType, ...args: number[]) => void;

/** The module's attention export, called as is (the baseline may take a state of 0, which the
 *  current Kernels wrapper refuses). */
function rawAttention(module: WebAssembly.Module, memory: WebAssembly.Memory): RawAttention {
  const x = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, (...a: number[]) => void>;
  return (cache, ...args) => (cache === 'f16' ? x.attentionF16! : x.attentionF32!)(...args);
}

function load(): string { return loadavg().map((x) => x.toFixed(1)).join(' '); }

function main(): void {
  const { values } = parseArgs({ options: {
    baseline: { type: 'string' }, ctx: { type: 'string', default: '512,4096,16384' },
    queries: { type: 'string', default: '1,5' }, rounds: { type: 'string', default: '7' },
    'min-ms': { type: 'string', default: '150' }, cold: { type: 'boolean', default: false },
  } });
  if (!values.baseline) throw new Error('attention-ab: --baseline PATH.wasm is required (see the header of src/bench/attention-ab.ts)');
  const contexts = values.ctx.split(',').map(Number), queries = values.queries.split(',').map(Number);
  const rounds = Number(values.rounds), minMs = Number(values['min-ms']), cold = values.cold;
  // --cold: before each timed call, 256 MB are read so that the K/V rows come from memory, as in a
  // decode step (the other layers' weights and rows pass through the caches between two calls)
  const sweep = cold ? new Float64Array(32 << 20) : new Float64Array(0);
  let sink = 0;
  const evict = (): void => { for (let i = 0; i < sweep.length; i += 8) sink += sweep[i]!; };
  const build = kernelBuild();
  const baseline = new WebAssembly.Module(readFileSync(values.baseline)), current = kernelModule(build);
  const start = load();
  console.log(`attention A/B, ${build} build, one thread, ${H} query / ${HKV} KV heads, D ${D}; load average at start ${start}`);
  const rows: string[][] = [['cache', 'keys', 'n', 'baseline µs', 'new µs', 'speed-up', 'new ns/key-head-query']];
  for (const cache of ['f16', 'f32'] as CacheDType[]) {
    for (const S of contexts) {
      const es = cache === 'f16' ? 2 : 4, kvBytes = S * HKV * D * es, nMax = Math.max(...queries);
      const qBytes = nMax * H * D * 4, state = attentionStateBytes(nMax, H, HKV, D, S);
      const pages = Math.ceil((65536 + 2 * kvBytes + 3 * qBytes + nMax * 4 + state + 4096) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      const K = 65536, V = K + kvBytes, Q = V + kvBytes, OA = Q + qBytes, OB = OA + qBytes, P = OB + qBytes;
      const ST = (P + nMax * 4 + 15) & ~15;
      const f32 = new Float32Array(memory.buffer), u16 = new Uint16Array(memory.buffer), rand = uniform01(S + 17);
      if (cache === 'f16') for (let i = 0; i < kvBytes; i++) u16[K / 2 + i] = f32ToF16(rand() * 2 - 1);
      else for (let i = 0; i < kvBytes / 2; i++) f32[K / 4 + i] = rand() * 2 - 1;
      for (let i = 0; i < nMax * H * D; i++) f32[Q / 4 + i] = (rand() * 2 - 1) * 3;
      const kernels = [rawAttention(baseline, memory), rawAttention(current, memory)];
      for (const n of queries) {
        const pos = new Int32Array(memory.buffer, P, n);
        for (let t = 0; t < n; t++) pos[t] = S - n + t;
        // the baseline as the engine called it then: one query at a time without state (decode), the
        // multi-query form with it
        const call = (k: RawAttention, out: number, state: number) => () => k(cache, Q, P, K, V, out, n, S, H, HKV, D, 0.125, 0, 0, state, 0, H);
        let baseState = n > 1 ? ST : 0;
        try { call(kernels[0]!, OA, baseState)(); } catch { baseState = ST; } // a baseline that requires state traps on 0
        const forms = [call(kernels[0]!, OA, baseState), call(kernels[1]!, OB, ST)];
        forms.forEach((f) => f());
        const a = f32.subarray(OA / 4, OA / 4 + n * H * D), b = f32.subarray(OB / 4, OB / 4 + n * H * D);
        for (let i = 0; i < a.length; i++) {
          if (!(Math.abs(a[i]! - b[i]!) <= 1e-5 * (1 + Math.abs(a[i]!)))) throw new Error(`attention-ab: the builds differ at ${cache} S=${S} n=${n} element ${i}: ${a[i]} vs ${b[i]}`);
        }
        // each call timed on its own, the fastest kept: on a loaded machine some calls still run
        // undisturbed, while an average over many calls absorbs every preemption
        const best = [Infinity, Infinity];
        for (let r = 0; r < rounds; r++) {
          forms.forEach((f, i) => {
            const end = performance.now() + minMs / rounds;
            do {
              if (cold) evict();
              const t0 = performance.now();
              f();
              best[i] = Math.min(best[i]!, performance.now() - t0);
            } while (performance.now() < end);
          });
        }
        const perKey = (best[1]! * 1e6) / (S * H * n);
        rows.push([cache, String(S), String(n), (best[0]! * 1e3).toFixed(0), (best[1]! * 1e3).toFixed(0),
          (best[0]! / best[1]!).toFixed(2) + '×', perKey.toFixed(1)]);
      }
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) console.log('| ' + r.map((cell, c) => cell.padStart(widths[c]!)).join(' | ') + ' |');
  console.log(`load average at start ${start}, at end ${load()}; fastest call of ${rounds} alternating rounds of ≥ ${(minMs / rounds).toFixed(0)} ms per form${cold ? `; caches swept before every call (cold)` : ''}`);
}

main();
