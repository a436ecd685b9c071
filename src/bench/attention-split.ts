// Long-context attention through the thread pool, two ways to split one call over the threads,
// alternating round by round in one process on the same memory so a loaded machine slows both
// alike: by query heads (what attentionOp did for every call before key chunks, ./attention-split-ops.ts)
// and attentionOp as it is (past ATTENTION_CHUNK keys, up to ATTENTION_SPLIT_QUERIES queries run as
// (key chunk, KV head) units, merged in chunk order on the calling thread, the units split over the
// threads by their keys), with, for the calls split by key chunks, the same units split by their
// count (as before the split weighed them: with a last chunk of a few keys, 4112 keys give one
// thread 4 full units and the other 2). Same kernels, so all must give the same bits (the bench
// refuses otherwise). One call is one layer of the
// SmolLM2-135M shape (9 query heads, 3 KV heads, D 64) with the n queries at the end of the cache;
// the calls visit the K/V of several layers in distinct memory (≥ 96 MiB in all), so that, as in a
// decode step, the rows come from memory rather than from the last call's caches. Wall clock,
// median of the rounds. Prints one markdown table with the load average at its start and end:
//   node dist/src/bench/attention-split.js [--ctx 4096,4112,16384,32768] [--queries 1,5] [--threads 2] [--rounds 7]

import { loadavg } from 'node:os';
import { attentionSplitsKeys, attentionStateBytes, type CacheDType } from '../kernels/types.js';
import { attentionOp } from '../kernels/pool-ops.js';
import { Arena, planArena } from '../runtime/arena.js';
import { ThreadPool } from '../runtime/pool.js';
import { uniform01 } from '../data/rng.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags, scriptName } from '../cli/script.js';
import { attentionByHeadsOp, attentionChunksByCountOp } from './attention-split-ops.js';

const H = 9, HKV = 3, D = 64;
const MEMORY_BYTES = 96 * 2 ** 20;

const FLAGS: FlagSpecs = {
  ctx: { type: 'integer', list: true, min: 1, max: 131072, default: '4096,4112,16384,32768', placeholder: 'LIST', description: 'keys in the cache' },
  queries: { type: 'integer', list: true, min: 1, max: 64, default: '1,5', placeholder: 'LIST', description: 'queries per call (1 = decode, 5 = a verification of 4 drafts)' },
  cache: { type: 'string', list: true, choices: ['f16', 'f32'], default: 'f16', placeholder: 'LIST', description: 'KV cache types' },
  threads: { type: 'integer', min: 1, max: 64, default: 2, placeholder: 'N', description: 'pool threads' },
  rounds: { type: 'integer', min: 1, max: 100, default: 7, placeholder: 'N', description: 'alternating rounds (the median is kept)' },
};

function load(): string { return loadavg().map((x) => x.toFixed(1)).join(' '); }

function median(xs: number[]): number { return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!; }

async function main(): Promise<number> {
  const name = scriptName(import.meta.url);
  const v = scriptFlags(import.meta.url, FLAGS, 'Long-context attention through the pool: split by query heads vs by (key chunk, KV head).');
  if (v === null) return 0;
  const contexts = v.ctx as number[], queries = v.queries as number[], rounds = v.rounds as number, threads = v.threads as number;
  const pool = await ThreadPool.create({ threads, kernels: 'wasm' });
  const load0 = load();
  const lines = ['| KV | keys | queries | layers visited | by heads (ms/layer) | key chunks split by count (ms/layer) | key chunks split by keys (ms/layer) | speed-up over by heads | over by count | key chunks by keys (ns per key·head·query) | same bits |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'];
  try {
    for (const cache of v.cache as CacheDType[]) {
      for (const S of contexts) {
        const kvBytes = S * HKV * D * (cache === 'f16' ? 2 : 4), nMax = Math.max(...queries);
        const layers = Math.min(30, Math.max(2, Math.ceil(MEMORY_BYTES / (2 * kvBytes))));
        const io = [S * HKV * D * 4, nMax * H * D * 4, nMax * 4, nMax * H * D * 4, nMax * H * D * 4, nMax * H * D * 4, attentionStateBytes(nMax, H, HKV, D, S)];
        const arena = Arena.create(planArena([...Array(2 * layers).fill(kvBytes), ...io]), { kernels: 'wasm', label: 'attention split bench' });
        try {
          pool.register(arena);
          const kv = Array.from({ length: 2 * layers }, () => arena.alloc(kvBytes));
          const [f32, q, qPos, outA, outB, outC, state] = io.map((b) => arena.alloc(b)) as [number, number, number, number, number, number, number];
          const rand = uniform01(S + 17), x = arena.f32(f32, S * HKV * D);
          for (const p of kv.slice(0, 2)) { // layer 0's K and V, random; the other layers copies of them
            for (let i = 0; i < x.length; i++) x[i] = rand() * 2 - 1;
            arena.kernels.storeRows(cache, f32, p, S * HKV * D);
          }
          const bytes = arena.u8(0, arena.memory.buffer.byteLength);
          for (let i = 2; i < kv.length; i++) bytes.copyWithin(kv[i]!, kv[i % 2]!, kv[i % 2]! + kvBytes);
          const qv = arena.f32(q, nMax * H * D);
          for (let i = 0; i < qv.length; i++) qv[i] = (rand() * 2 - 1) * 3;
          for (const n of queries) {
            const pos = arena.i32(qPos, n);
            for (let i = 0; i < n; i++) pos[i] = S - n + i;
            const scale = 1 / Math.sqrt(D);
            const byHeads = (l: number) => pool.run(attentionByHeadsOp, arena, q, qPos, kv[2 * l]!, kv[2 * l + 1]!, outA, cache, n, S, H, HKV, D, scale, state);
            const split = (l: number) => pool.run(attentionOp, arena, q, qPos, kv[2 * l]!, kv[2 * l + 1]!, outB, cache, n, S, H, HKV, D, scale, 0, 0, state);
            const chunked = attentionSplitsKeys(n, S);
            const byCount = (l: number) => pool.run(attentionChunksByCountOp, arena, q, qPos, kv[2 * l]!, kv[2 * l + 1]!, outC, cache, n, S, H, HKV, D, scale, state);
            const ways = chunked ? [byHeads, byCount, split] : [byHeads, split];
            ways.forEach((f) => f(0));
            const a = new Uint32Array(arena.memory.buffer, outA, n * H * D), b = new Uint32Array(arena.memory.buffer, outB, n * H * D);
            const c = new Uint32Array(arena.memory.buffer, outC, n * H * D);
            const same = a.every((bits, i) => bits === b[i] && (!chunked || bits === c[i]));
            if (!same) throw new Error(`${name}: the splits differ (${cache}, ${S} keys, ${n} queries); the kernels lost their bit-identity across splits`);
            const times: number[][] = ways.map(() => []);
            for (let r = 0; r < rounds + 1; r++) {
              ways.forEach((f, i) => {
                const t0 = performance.now();
                for (let l = 0; l < layers; l++) f(l);
                if (r > 0) times[i]!.push((performance.now() - t0) / layers); // round 0 warms up
              });
            }
            const med = times.map(median), ta = med[0]!, tb = med[med.length - 1]!, tc = chunked ? med[1]! : NaN;
            lines.push(`| ${cache} | ${S} | ${n} | ${layers} | ${ta.toFixed(3)} | ${chunked ? tc.toFixed(3) : '–'} | ${tb.toFixed(3)} | ${(ta / tb).toFixed(2)}× | ` +
              `${chunked ? `${(tc / tb).toFixed(2)}×` : '–'} | ${(tb * 1e6 / (S * H * n)).toFixed(2)} | ${same ? 'yes' : 'no'} |`);
          }
        } finally {
          pool.unregister(arena);
        }
      }
    }
  } finally {
    pool.dispose();
  }
  console.log(`Attention of one layer through the pool, SmolLM2-135M shape (H ${H}, Hkv ${HKV}, D ${D}), ${threads} threads, ` +
    `median of ${rounds} alternating rounds (wall clock); load average ${load0} at the start, ${load()} at the end\n`);
  console.log(lines.join('\n'));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
