// Decode attention of a batch: one pool job per sequence (KVStore.attendDense, what a step ran per
// layer before) against one job for every sequence (attendDenseBatch), on the same K/V pages, the
// two alternating round by round in one process so a loaded machine slows both alike. One layer of
// the SmolLM2-135M shape (9 query heads, 3 KV heads, D 64), timed over `layers` calls as one step.
// Run: node dist/src/bench/batch-attention.js [--batch 1,4,16] [--ctx 512] [--threads 2] [--rounds 9]

import { loadavg } from 'node:os';
import type { CacheDType } from '../kernels/types.js';
import { Arena, planArena } from '../runtime/arena.js';
import { ThreadPool } from '../runtime/pool.js';
import { attendDenseBatch, KVStore, type DenseQuery } from '../attention/kv-store.js';
import { KV_PAGE_TOKENS, KVPagePool, LayerKV, SequencePages, type LayerKVDims } from '../attention/kv-pages.js';
import { uniform01 } from '../data/rng.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const H = 9, HKV = 3, D = 64, LAYERS = 30;

interface Row { dtype: CacheDType; batch: number; perSequence: number; oneJob: number }

/** B sequences of ctx tokens in one layer (pages interleaved, as sequences decoding together get
 *  them), random rows and queries; the two ways to run their decode attention. */
function setup(pool: ThreadPool, dtype: CacheDType, B: number, ctx: number) {
  const perSeq = Math.ceil((ctx + 1) / KV_PAGE_TOKENS);
  const dims: LayerKVDims = { heads: H, kvHeads: HKV, headDim: D, dtype, pages: B * perSeq, maxPagesPerSequence: perSeq, maxQueries: 1, sequences: B };
  const io = [ctx * HKV * D * 4, ctx * HKV * D * 4, ...Array.from({ length: B }, () => [H * D * 4, 4, H * D * 4]).flat()];
  const arena = Arena.create(planArena([...LayerKV.sizes(dims), ...io]) + 64 * (io.length + 8), { kernels: 'wasm', label: 'batch attention bench' });
  pool.register(arena);
  const layer = new LayerKV(arena, dims), pages = new KVPagePool(dims.pages), rand = uniform01(B * 7 + ctx);
  const seqs = Array.from({ length: B }, () => new SequencePages());
  for (let p = 0; p < perSeq; p++) for (const s of seqs) s.ids.push(pages.alloc());
  const k = arena.alloc(ctx * HKV * D * 4), v = arena.alloc(ctx * HKV * D * 4);
  const queries: DenseQuery[] = seqs.map((s, i) => {
    s.changed();
    const kv = new KVStore(layer, s, { layer: 0, layers: 1, heads: H, kvHeads: HKV, headDim: D, capacity: perSeq * KV_PAGE_TOKENS, dtype }, i);
    for (const p of [k, v]) { const x = arena.f32(p, ctx * HKV * D); for (let j = 0; j < x.length; j++) x[j] = rand() * 2 - 1; }
    kv.store(k, v, 0, ctx);
    const q = arena.alloc(H * D * 4), qPos = arena.alloc(4), out = arena.alloc(H * D * 4);
    const qv = arena.f32(q, H * D);
    for (let j = 0; j < qv.length; j++) qv[j] = rand() * 2 - 1;
    arena.i32(qPos, 1)[0] = ctx - 1;
    return { kv, q, qPos, out, n: 1, length: ctx };
  });
  const perSequence = () => { for (const x of queries) x.kv.attendDense(pool, x.q, x.qPos, x.out, 1, x.length); };
  const oneJob = () => attendDenseBatch(pool, queries);
  // both give the same bits (checked by the tests too; a bench that measured different work would mislead)
  oneJob();
  const batched = queries.map((x) => arena.f32(x.out, H * D).slice());
  perSequence();
  queries.forEach((x, i) => { if (!arena.f32(x.out, H * D).every((y, j) => Object.is(y, batched[i]![j]))) throw new Error('batch attention bench: the two forms differ'); });
  return { arena, perSequence, oneJob };
}

/** Median ms of `layers` calls, the two forms alternating in each round. */
function measure(forms: (() => void)[], rounds: number): number[] {
  const times = forms.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    forms.forEach((f, i) => {
      const t0 = performance.now();
      for (let l = 0; l < LAYERS; l++) f();
      times[i]!.push(performance.now() - t0);
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!);
}

export async function batchAttentionBench(batches: number[], ctx: number, threads: number, rounds: number, print = console.log): Promise<Row[]> {
  const pool = await ThreadPool.create({ threads, kernels: 'wasm' });
  const load0 = loadavg().map((x) => x.toFixed(1)).join(' ');
  const rows: Row[] = [];
  try {
    for (const dtype of ['f16', 'f32'] as const) {
      for (const B of batches) {
        const { arena, perSequence, oneJob } = setup(pool, dtype, B, ctx);
        measure([perSequence, oneJob], 2); // warm-up
        const [a, b] = measure([perSequence, oneJob], rounds);
        rows.push({ dtype, batch: B, perSequence: a!, oneJob: b! });
        pool.unregister(arena);
      }
    }
  } finally { pool.dispose(); }
  print(`Decode attention of one step (${LAYERS} layers × one layer's job(s)), SmolLM2-135M shape (H ${H}, Hkv ${HKV}, D ${D}), ctx ${ctx}, ` +
    `${threads} threads, median of ${rounds} alternating rounds; load average ${load0} at the start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at the end\n`);
  print('| KV | batch | one job per sequence (ms/step) | one job for the batch (ms/step) | speedup |');
  print('|---|---:|---:|---:|---:|');
  for (const r of rows) print(`| ${r.dtype} | ${r.batch} | ${r.perSequence.toFixed(2)} | ${r.oneJob.toFixed(2)} | ${(r.perSequence / r.oneJob).toFixed(2)}× |`);
  return rows;
}

const FLAGS: FlagSpecs = {
  batch: { type: 'integer', list: true, min: 1, default: '1,4,16', placeholder: 'LIST', description: 'batch sizes' },
  ctx: { type: 'integer', min: 1, default: 512, description: 'cached tokens per sequence' },
  threads: { type: 'integer', min: 1, default: 2, description: 'pool threads' },
  rounds: { type: 'integer', min: 1, default: 9, description: 'alternating rounds (the median is printed)' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, "A batch's decode attention: one pool job per sequence vs one job for all, alternating in one process.");
  if (!v) return 0;
  await batchAttentionBench(v.batch as number[], v.ctx as number, v.threads as number, v.rounds as number);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
