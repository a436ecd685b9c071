// Thread-pool benchmark: decode-shaped matmuls (n = 1) on 1 thread vs the pool, the cost of one
// dispatch (a job too small to matter), and the effect of spinning before Atomics.wait.
// Run: node dist/src/bench/threads-bench.js [--max-threads N]   (N may also be given bare)
// Timings are medians of several batches. On a shared or virtualised machine they are noisy: check
// /proc/pressure/cpu ("some" near 0) or run twice. The bench prints the CPU pressure it started under.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { activationBytes, weightBytes, type WeightDType } from '../kernels/types.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { Arena, planArena } from '../runtime/arena.js';
import { matmulOp } from '../kernels/pool-ops.js';
import { ThreadPool } from '../runtime/pool.js';

interface Shape { rows: number; cols: number }

/** Median milliseconds per call of `fn`, over `batches` batches of about `batchMs` each. */
function timeMs(fn: () => void, batches = 7, batchMs = 60): number {
  let reps = 1;
  for (;;) { // calibrate: enough calls to fill one batch
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const dt = performance.now() - t0;
    if (dt >= batchMs / 4) { reps = Math.max(1, Math.round((reps * batchMs) / dt)); break; }
    reps *= 4;
  }
  const per: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    per.push((performance.now() - t0) / reps);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)]!;
}

function fillRandom(arena: Arena, dtype: WeightDType, w: number, count: number): void {
  const bytes = arena.u8(w, weightBytes(dtype, count));
  if (dtype === 'f32') { const v = arena.f32(w, count); for (let i = 0; i < count; i++) v[i] = Math.random() * 2 - 1; return; }
  for (let i = 0; i < bytes.length; i++) bytes[i] = (Math.random() * 256) | 0;
  if (dtype === 'q8_0' || dtype === 'q4_0') { // keep block scales finite and small (f16 exponent 8..11)
    const block = dtype === 'q8_0' ? 34 : 18;
    for (let o = 0; o < bytes.length; o += block) bytes[o + 1] = 0x20 + ((Math.random() * 12) | 0);
  } else if (dtype === 'f16') {
    for (let i = 1; i < bytes.length; i += 2) bytes[i] = (bytes[i]! & 0x83) | 0x34;
  } else if (dtype === 'bf16') {
    for (let i = 1; i < bytes.length; i += 2) bytes[i] = (bytes[i]! & 0x80) | 0x3e;
  }
}

/** Linux PSI: share of the last 10 s in which some runnable thread waited for a CPU. */
function cpuPressure(): string {
  try {
    const some = /some avg10=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return some ? `CPU pressure ${some[1]}% (0 = machine otherwise idle)` : 'CPU pressure unknown';
  } catch { return 'CPU pressure unknown'; }
}

/** A decode step's matmuls for `layers` layers of Llama-3.2-1B shapes (hidden 2048, KV 512, FFN 8192)
 *  with 10 µs of main-thread work (norms, rope, attention bookkeeping) before each block: ms per token. */
async function layerSequence(threads: number, dtype: WeightDType, layers: number): Promise<number> {
  const hidden = 2048, kv = 512, ffn = 8192;
  const mats: Array<[number, number]> = [[hidden, hidden], [kv, hidden], [kv, hidden], [hidden, hidden], [ffn, hidden], [ffn, hidden], [hidden, ffn]];
  const pool = await ThreadPool.create({ threads, kernels: 'wasm' });
  const parts: Array<{ arena: Arena; ptrs: number[] }> = [];
  for (let l = 0; l < layers; l++) {
    const sizes = [...mats.map(([r, c]) => weightBytes(dtype, r * c)), ffn * 4, activationBytes('q8_0', ffn), ffn * 4];
    const arena = Arena.create(planArena(sizes), { kernels: 'wasm', label: `layer ${l}` });
    const ptrs = sizes.map((b) => arena.alloc(b));
    mats.forEach(([r, c], i) => fillRandom(arena, dtype, ptrs[i]!, r * c));
    fillRandom(arena, 'f32', ptrs[7]!, ffn);
    arena.kernels.quantizeQ8(ptrs[7]!, ptrs[8]!, ffn);
    pool.register(arena);
    parts.push({ arena, ptrs });
  }
  const input = dtype === 'q8_0' || dtype === 'q4_0' ? 8 : 7;
  const mainWork = (): void => { const until = performance.now() + 0.01; while (performance.now() < until) { /* norms… */ } };
  const ms = timeMs(() => {
    for (const { arena, ptrs } of parts) {
      mats.forEach(([r, c], i) => {
        if (i === 0 || i === 3 || i === 4 || i === 6) mainWork();
        pool.run(matmulOp, arena, dtype, ptrs[i]!, ptrs[input]!, ptrs[9]!, 1, r, c);
      });
    }
  }, 5, 200);
  pool.dispose();
  return ms;
}

export async function threadsBench(maxThreads = Math.max(2, availableParallelism()), print = console.log): Promise<void> {
  const shapes: Shape[] = [{ rows: 2048, cols: 2048 }, { rows: 8192, cols: 2048 }];
  const dtypes: WeightDType[] = ['f32', 'f16', 'q8_0', 'q4_0'];
  const threadCounts = [...new Set([2, maxThreads])].filter((t) => t >= 2 && t <= maxThreads);
  const pools = new Map<number, ThreadPool>();
  for (const t of [1, ...threadCounts]) pools.set(t, await ThreadPool.create({ threads: t, kernels: 'wasm' }));
  print(`threads bench: ${availableParallelism()} cores, wasm kernels, decode (n = 1), median ms per call; ${cpuPressure()}`);
  print(['shape', 'dtype', 'MiB', '1 thread', ...threadCounts.map((t) => `${t} threads`), 'speedup', 'same result'].join(' | '));
  for (const { rows, cols } of shapes) {
    for (const dtype of dtypes) {
      const wBytes = weightBytes(dtype, rows * cols);
      const sizes = [wBytes, cols * 4, activationBytes('q8_0', cols), rows * 4, rows * 4];
      const arena = Arena.create(planArena(sizes), { kernels: 'wasm', label: `${rows}x${cols} ${dtype}` });
      const [w, x, xq, y1, y2] = sizes.map((s) => arena.alloc(s)) as [number, number, number, number, number];
      fillRandom(arena, dtype, w, rows * cols);
      fillRandom(arena, 'f32', x, cols);
      const quant = dtype === 'q8_0' || dtype === 'q4_0';
      const input = quant ? xq : x;
      try {
        if (quant) arena.kernels.quantizeQ8(x, xq, cols);
        arena.kernels.matmul(dtype, w, input, y1, 1, rows, cols, 0, rows);
      } catch (err) {
        print(`${rows}x${cols} | ${dtype} | kernels cannot run it: ${(err as Error).message}`);
        continue;
      }
      const cells: string[] = [];
      let single = 0, best = Infinity, same = true;
      for (const [t, pool] of pools) {
        pool.register(arena);
        const ms = timeMs(() => pool.run(matmulOp, arena, dtype, w, input, y2, 1, rows, cols));
        same &&= arena.f32(y2, rows).every((v, i) => Object.is(v, arena.f32(y1, rows)[i]));
        pool.unregister(arena);
        if (t === 1) single = ms; else best = Math.min(best, ms);
        cells.push(ms.toFixed(3));
      }
      print([`${rows}x${cols}`, dtype, (wBytes / 2 ** 20).toFixed(1), ...cells, `${(single / best).toFixed(2)}x`, same ? 'yes' : 'NO'].join(' | '));
    }
  }
  for (const pool of pools.values()) pool.dispose();

  print('');
  print('decode-like sequence: 4 layers × 7 q8_0 matmuls of Llama-3.2-1B shapes, 10 µs main-thread work between blocks');
  print(['threads', 'ms per 4 layers', 'speedup'].join(' | '));
  const seq1 = await layerSequence(1, 'q8_0', 4);
  print(`1 | ${seq1.toFixed(2)} | 1.00x`);
  for (const t of threadCounts) {
    const ms = await layerSequence(t, 'q8_0', 4);
    print(`${t} | ${ms.toFixed(2)} | ${(seq1 / ms).toFixed(2)}x`);
  }

  // Dispatch cost: 16 rows × 32 cols is ~0.1 µs of arithmetic, so the time is the round trip.
  // "with gap" runs 30 µs of main-thread work between jobs, as norms/rope do between decode matmuls.
  print('');
  print('dispatch overhead, 2 threads, tiny job (16x32 f32), µs per call');
  print('and a decode-sized job (1024x1024 f32, 4 MiB) followed by 30 µs of main-thread work, µs per call');
  print('spinMicros | tiny back to back | tiny with 30 µs gap | 1024x1024 with 30 µs gap');
  const big = 1024;
  const arena = Arena.create(planArena([big * big * 4, big * 4, big * 4]), { kernels: 'wasm', label: 'dispatch' });
  const w = arena.alloc(big * big * 4), x = arena.alloc(big * 4), y = arena.alloc(big * 4);
  fillRandom(arena, 'f32', w, big * big);
  fillRandom(arena, 'f32', x, big);
  const mainWork = (): void => { const until = performance.now() + 0.03; while (performance.now() < until) { /* norms, rope… */ } };
  const direct = timeMs(() => arena.kernels.matmul('f32', w, x, y, 1, 16, 32, 0, 16));
  for (const spinMicros of [0, 20, 100, 200]) {
    const pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', spinMicros, minSplitBytes: 0 });
    pool.register(arena);
    const tiny = (): void => pool.run(matmulOp, arena, 'f32', w, x, y, 1, 16, 32);
    const back = timeMs(tiny) - direct;
    const gap = timeMs(() => { tiny(); mainWork(); }) - 0.03 - direct;
    const decode = timeMs(() => { pool.run(matmulOp, arena, 'f32', w, x, y, 1, big, big); mainWork(); }) - 0.03;
    print(`${spinMicros} | ${(back * 1000).toFixed(1)} | ${(gap * 1000).toFixed(1)} | ${(decode * 1000).toFixed(1)}`);
    pool.dispose();
  }
}

const FLAGS: FlagSpecs = {
  'max-threads': { type: 'integer', min: 2, positional: true, placeholder: 'N', description: 'the largest pool timed (default: the cores, at least 2)' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Thread-pool benchmark: decode-shaped matmuls on 1 thread vs the pool, the cost of one dispatch, and spinning before Atomics.wait.');
  if (!v) return 0;
  await threadsBench(v['max-threads'] as number | undefined);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
