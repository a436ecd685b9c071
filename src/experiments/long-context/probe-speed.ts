// Throughput probe for sizing the long-context run: one training step (forward, backward, AdamW) of
// LongContextModel at a few (d, layers, T), on 1 thread or, with --threads=1,2, on each listed thread
// count in turn (a ThreadPool for counts above 1: matmuls and attention split across the threads).
// Run: node dist/src/experiments/long-context/probe-speed.js ['[[d,L,H,T,B],…]'] [--threads=1,2]   (or --shapes '[[…]]')
import { TrainMemory } from '../../training/memory.js';
import { Tape } from '../../training/autograd/tape.js';
import { Params } from '../../training/params.js';
import { AdamW } from '../../training/optim.js';
import { llamaTrainConfig } from '../../training/models/llama-train.js';
import { Rng } from '../../training/rng.js';
import { ThreadPool } from '../../runtime/pool.js';
import { LongContextModel } from './model.js';
import { UsageError, type FlagSpecs } from '../../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../../cli/script.js';

const FLAGS: FlagSpecs = {
  shapes: { type: 'string', positional: true, placeholder: 'JSON', default: '[[128,2,4,2048,1],[128,2,4,512,4],[96,2,4,2048,1],[128,3,4,2048,1]]',
    description: 'the (d, layers, heads, T, batch) probed, as JSON [[d,L,H,T,B],…]' },
  threads: { type: 'integer', list: true, min: 1, default: '1', placeholder: 'LIST', description: 'thread counts, each in turn (a pool above 1)' },
};

/** The --shapes JSON: a list of five positive integers each. */
function parseShapes(text: string): number[][] {
  let shapes: unknown;
  try { shapes = JSON.parse(text); } catch (e) { throw new UsageError(`--shapes is not JSON (${(e as Error).message}); give e.g. '[[128,2,4,2048,1]]'`); }
  const ok = Array.isArray(shapes) && shapes.length > 0 && shapes.every((s) => Array.isArray(s) && s.length === 5 && s.every((x) => Number.isSafeInteger(x) && x > 0));
  if (!ok) throw new UsageError("--shapes must be a list of [d, layers, heads, T, batch] of positive integers, e.g. '[[128,2,4,2048,1]]'");
  return shapes as number[][];
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Throughput of one training step of the long-context model at a few shapes, per thread count.');
  if (!v) return 0;
  const shapes = parseShapes(v.shapes as string), threadCounts = v.threads as number[];
  const pools = new Map<number, ThreadPool>();
  for (const n of threadCounts) if (n > 1 && !pools.has(n)) pools.set(n, await ThreadPool.create({ threads: n, kernels: 'wasm' }));
  for (const [d, L, H, T, B] of shapes) for (const threads of threadCounts) probe(d!, L!, H!, T!, B!, threads, pools.get(threads));
  for (const pool of pools.values()) pool.dispose();
  return 0;
}

const V = 1400;

/** One shape on one thread count: the fastest of three timed steps after a warm-up step. */
function probe(d: number, L: number, H: number, T: number, B: number, threads: number, pool: ThreadPool | undefined): void {
  const c = llamaTrainConfig({ vocab_size: V, hidden_size: d, intermediate_size: Math.round(8 * d / 3 / 8) * 8, num_hidden_layers: L, num_attention_heads: H, max_position_embeddings: 4096 });
  const mem = new TrainMemory({ bytes: 1024 << 20, kernels: 'wasm', label: 'probe' });
  const tape = new Tape(mem, pool);
  const params = new Params(mem, 0);
  const model = new LongContextModel(c, params);
  const opt = new AdamW(params);
  const rng = new Rng(1);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  const rows = Int32Array.from({ length: 128 * B }, () => rng.int(B * T)), targets = Int32Array.from(rows, () => rng.int(V));
  const times: number[] = [];
  for (let s = 0; s < 4; s++) {
    const t0 = performance.now();
    params.zeroGrad();
    tape.backward(model.loss(tape, ids, B, T, { rows: rows.subarray(0, 4), targets: targets.subarray(0, 4) }, { rows, targets }, 0.2));
    tape.reset();
    opt.step(1e-3);
    times.push(performance.now() - t0);
  }
  const ms = Math.min(...times.slice(1));
  pool?.unregister(mem.arena);
  console.log(`d=${d} L=${L} H=${H} T=${T} B=${B} threads=${threads}: ${ms.toFixed(0)} ms/step, ${(B * T / ms * 1000).toFixed(0)} tokens/s, params ${params.count()}`);
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
