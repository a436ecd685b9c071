// Training attention on the thread pool: the forward split over (sequence, query head) and the
// backward over (sequence, KV group) must give exactly the bits of the main-thread path (same kernel
// code per unit, disjoint outputs), for GQA and plain heads, with both kernel kinds; and a few
// LlamaTrain steps with a pool must match steps without one bit for bit (checkpoint resume relies on it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Tensor } from '../../src/training/autograd/tensor.js';
import { mul, sum } from '../../src/training/autograd/ops-basic.js';
import { attention } from '../../src/training/autograd/ops-attention.js';
import { Params } from '../../src/training/params.js';
import { AdamW } from '../../src/training/optim.js';
import { LlamaTrain, llamaTrainConfig } from '../../src/training/models/llama-train.js';
import { ThreadPool } from '../../src/runtime/pool.js';
import { trainAttnForwardOp } from '../../src/training/train-pool-ops.js';
import { Rng } from '../../src/training/rng.js';

interface AttnResult { y: Float32Array; gq: Float32Array; gk: Float32Array; gv: Float32Array }

/** attention(q, k, v) and the gradients of L = Σ r ⊙ y for fixed random q, k, v, r (seeded). */
function runAttention(kind: 'wasm' | 'reference', pool: ThreadPool | undefined, B: number, T: number, H: number, Hkv: number, D: number): AttnResult {
  const mem = new TrainMemory({ bytes: 8 << 20, kernels: kind, label: `attn-${kind}-${pool ? 'pool' : 'main'}` });
  const tape = new Tape(mem, pool);
  const rng = new Rng(42);
  const make = (shape: number[]) => {
    const t = Tensor.alloc(mem, shape, 'step', { requiresGrad: true });
    for (let i = 0; i < t.size; i++) t.data[i] = rng.normal();
    return t;
  };
  const q = make([B, T, H, D]), k = make([B, T, Hkv, D]), v = make([B, T, Hkv, D]);
  const r = tape.constant([B, T, H, D], Float32Array.from({ length: B * T * H * D }, () => rng.normal()));
  const y = attention(tape, q, k, v);                                   // (B, T, H, D)
  tape.backward(sum(tape, mul(tape, y, r)));
  const out = { y: y.data.slice(), gq: q.grad!.slice(), gk: k.grad!.slice(), gv: v.grad!.slice() };
  if (pool) pool.unregister(mem.arena);
  return out;
}

function assertSame(a: AttnResult, b: AttnResult, what: string): void {
  for (const key of ['y', 'gq', 'gk', 'gv'] as const) {
    assert.ok(a[key].some((x) => x !== 0), `${what}: ${key} is all zeros`);
    assert.deepEqual(b[key], a[key], `${what}: ${key} differs between the pool and the main thread`);
  }
}

// [B, T, H, Hkv, D]: GQA with slices that straddle sequences (B·H = 12, B·Hkv = 6 over 2 and 3
// threads), plain heads with odd counts (B·H = 9 splits 4 / 5).
const SHAPES: [string, number[]][] = [['GQA H=4 Hkv=2', [3, 9, 4, 2, 8]], ['plain H=Hkv=3', [3, 7, 3, 3, 5]]];

for (const kind of ['wasm', 'reference'] as const) {
  test(`attention (${kind}): pool forward and backward are bit-identical to the main thread`, async () => {
    for (const threads of [2, 3]) {
      const pool = await ThreadPool.create({ threads, kernels: kind, minSplitBytes: 0 });
      try {
        for (const [name, [B, T, H, Hkv, D]] of SHAPES) {
          const main = runAttention(kind, undefined, B, T, H, Hkv, D);
          const split = runAttention(kind, pool, B, T, H, Hkv, D);
          assertSame(main, split, `${kind} ${name} ${threads} threads`);
        }
      } finally {
        pool.dispose();
      }
    }
  });
}

test('ThreadPool.trainAttnForward: rejects H not a multiple of Hkv', async () => {
  const pool = await ThreadPool.create({ threads: 2, kernels: 'reference', minSplitBytes: 0 });
  try {
    const mem = new TrainMemory({ bytes: 1 << 20, kernels: 'reference' });
    pool.register(mem.arena);
    assert.throws(() => pool.run(trainAttnForwardOp, mem.arena, 0, 0, 0, 0, 0, 1, 4, 3, 2, 8, 1), /H a multiple of Hkv/);
  } finally {
    pool.dispose();
  }
});

test('LlamaTrain (GQA): 3 AdamW steps with a 2-thread pool equal 3 steps without one, bit for bit', async () => {
  const V = 64, B = 2, T = 24;
  const config = llamaTrainConfig({ vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
  const run = (pool: ThreadPool | undefined) => {
    const mem = new TrainMemory({ bytes: 32 << 20, kernels: 'wasm', label: pool ? 'llama-pool' : 'llama-main' });
    const tape = new Tape(mem, pool);
    const params = new Params(mem, 1234);
    const model = new LlamaTrain(config, params);
    const opt = new AdamW(params);
    const rng = new Rng(3);
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const ids = Int32Array.from({ length: B * T }, () => rng.int(V)), targets = Int32Array.from(ids, () => rng.int(V));
      params.zeroGrad();
      const loss = model.loss(tape, ids, targets, B, T);
      losses.push(loss.data[0]);
      tape.backward(loss);
      tape.reset();
      opt.step(3e-3);
    }
    const weights = params.list().map((p) => ({ name: p.name, data: p.data.slice() }));
    if (pool) pool.unregister(mem.arena);
    return { losses, weights };
  };
  const pool = await ThreadPool.create({ threads: 2, kernels: 'wasm', minSplitBytes: 0 });
  try {
    const main = run(undefined), split = run(pool);
    assert.ok(main.losses.every(Number.isFinite), `losses ${main.losses.join(' ')}`);
    assert.deepEqual(split.losses, main.losses);
    for (let i = 0; i < main.weights.length; i++) assert.deepEqual(split.weights[i].data, main.weights[i].data, main.weights[i].name);
  } finally {
    pool.dispose();
  }
});
