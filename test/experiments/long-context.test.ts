// The long-context experiment: the row-gathered training forward equals LlamaTrain's full forward and a
// plain cross-entropy; curriculum batches hold the task's answer + EOS as the only scored targets;
// a few training steps at tiny size export a folder whose inference logits equal the training
// model's; and the shipped model (models/long-context) retrieves held-out 2048-token needles and
// finds the most frequent name of a list above chance through loadModel + greedy generation, and
// models/long-context-4k retrieves needles at 4096 tokens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TrainMemory } from '../../src/training/memory.js';
import { Tape } from '../../src/training/autograd/tape.js';
import { Params } from '../../src/training/params.js';
import { llamaTrainConfig } from '../../src/training/models/llama-train.js';
import { readSafetensorsF32 } from '../../src/training/checkpoint.js';
import { Rng } from '../../src/training/rng.js';
import { loadModel } from '../../src/models/load.js';
import { evaluateLogits } from '../../src/generation/generate.js';
import { LongContextModel } from '../../src/experiments/long-context/model.js';
import { LongContextTasks, trainLongContextTokenizer } from '../../src/experiments/long-context/tasks.js';
import { validateConfig, stageAt } from '../../src/experiments/long-context/config.js';
import { CurriculumBatches, answerRows, modelConfig, trainLongContext } from '../../src/experiments/long-context/train.js';
import { evaluateLongContext } from '../../src/experiments/long-context/eval.js';

const tasks = new LongContextTasks(trainLongContextTokenizer(2100, 7));
const wordTasks = new LongContextTasks(trainLongContextTokenizer(2100, 7), undefined, { values: 'word', digits: 6 });

function tinyConfig(out: string, steps = 3) {
  return validateConfig({
    model: { d: 16, layers: 1, heads: 2, kvHeads: 1, ffn: 32 }, tokenizer: { vocabSize: 2100, seed: 7 },
    mix: { 'needle-single': 1, 'needle-multikey': 1, 'most-frequent': 1 },
    stages: [{ steps, context: 128, batch: 2 }, { steps: 1, context: 256, batch: 1 }],
    lmRows: 8, lmWeight: 0.2, lr: 3e-3, warmup: 1, seed: 3, evalEvery: 0, evalExamples: 2, evalContext: 256,
    out, modelDir: join(out, 'model'),
  });
}

test('train.js: --help and unknown options never start training (a run ends by exporting over models/long-context)', () => {
  const script = fileURLToPath(new URL('../../src/experiments/long-context/train.js', import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 20_000 });
  const help = run('--help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /--config PATH/);
  assert.equal(help.stderr, '', 'nothing but the help (training would log and outlive the 20 s timeout)');
  const bad = run('--stop-at', '5', '--bogus');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown option --bogus/);
});

test('row-gathered logits equal LlamaTrain.forward rows; the loss equals a plain cross-entropy', () => {
  const V = 37, B = 2, T = 24;
  const config = llamaTrainConfig({ vocab_size: V, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
  const mem = new TrainMemory({ bytes: 32 << 20, kernels: 'wasm' });
  const tape = new Tape(mem);
  const model = new LongContextModel(config, new Params(mem, 11));
  const r = new Rng(2);
  const ids = Int32Array.from({ length: B * T }, () => r.int(V));
  const full = Float32Array.from(model.llama.forward(tape, ids, B, T).data);                 // (B·T, V)
  tape.reset();
  const ans = { rows: Int32Array.of(5, 30, 47), targets: Int32Array.of(1, 2, 3) };
  const lm = { rows: Int32Array.of(0, 23, 24), targets: Int32Array.of(4, 5, 6) };
  const picked = model.rowLogits(tape, model.hidden(tape, ids, B, T), ans.rows).data;
  ans.rows.forEach((row, i) => {
    for (let v = 0; v < V; v++) assert.ok(Math.abs(picked[i * V + v] - full[row * V + v]) < 1e-5, `row ${row} logit ${v}`);
  });
  tape.reset();
  const ce = (s: { rows: Int32Array; targets: Int32Array }) => {
    let sum = 0;
    s.rows.forEach((row, i) => {
      const l = full.subarray(row * V, (row + 1) * V), m = Math.max(...l);
      sum += Math.log(l.reduce((z, x) => z + Math.exp(x - m), 0)) + m - l[s.targets[i]];
    });
    return sum / s.rows.length;
  };
  const loss = model.loss(tape, ids, B, T, ans, lm, 0.2).data[0];
  assert.ok(Math.abs(loss - (ce(ans) + 0.2 * ce(lm))) < 1e-4, `${loss} vs ${ce(ans) + 0.2 * ce(lm)}`);
});

test('curriculum batches: stage shapes, answer + EOS are the only scored targets, LM rows are next tokens, deterministic', () => {
  const cfg = tinyConfig('unused');
  const data = new CurriculumBatches(cfg, tasks);
  const b0 = data.next(), b1 = data.next(), b2 = data.next(), b3 = data.next();
  assert.deepEqual([b0.B, b0.T, b3.B, b3.T], [2, 128, 1, 256]);
  assert.deepEqual(stageAt(cfg, 3), { steps: 1, context: 256, batch: 1 });
  for (const b of [b0, b1, b2, b3]) {
    const a = answerRows(b);
    for (let s = 0; s < b.B; s++) {
      const rows = Array.from(a.rows).filter((r) => Math.floor(r / b.T) === s);
      assert.ok(rows.length >= 2, 'answer and EOS');
      for (let i = 1; i < rows.length; i++) assert.equal(rows[i], rows[i - 1] + 1, 'answers are consecutive');
      const answer = tasks.enc.decode(rows.map((r) => b.targets[r]));
      assert.match(answer, /^ (\d{6}(, \d{6})*|[a-z]+)<\|endoftext\|>$/, answer);
      // the scored answer is the task's own (the input ends where the answer starts)
      assert.equal(b.ids[rows[0] + 1], b.targets[rows[0]]);
    }
    b.lm.rows.forEach((r, i) => assert.equal(b.ids[r + 1], b.lm.targets[i]));
  }
  data.setState({ step: 1 });
  assert.deepEqual(data.next().ids, b1.ids);
  assert.throws(() => validateConfig({ ...cfg, mix: { 'needle-typo': 1 } }), /unknown task "needle-typo"/);
  assert.throws(() => validateConfig({ ...cfg, stages: [] }), /stages must be a non-empty list/);
  assert.deepEqual(cfg.needle, { values: 'number', digits: 6 }, 'default needle values');
  assert.deepEqual(validateConfig({ ...cfg, needle: { values: 'word' } }).needle, { values: 'word', digits: 6 });
  assert.throws(() => validateConfig({ ...cfg, needle: { values: 'uuid' } }), /needle.values = "uuid" must be "number" or "word"/);
  assert.equal(validateConfig({ ...cfg, decayFrom: 7 }).decayFrom, 7);
  assert.throws(() => validateConfig({ ...cfg, decayFrom: -1 }), /decayFrom = -1 must be an integer/);
});

test('multikey training examples ask about every needle; each scored answer is that key\'s value in the haystack', () => {
  for (const seed of [1, 2, 3]) {
    const ex = tasks.example('needle-multikey', 512, seed, { extraQuestions: true });
    const text = tasks.enc.decode(Array.from(ex.tokens));
    const valueOf = new Map([...text.matchAll(/The special magic number for ([a-z]+-[a-z]+) is (\d{6})\./g)].map((m) => [m[1], m[2]]));
    assert.equal(valueOf.size, 4);
    const asked = [...text.matchAll(/Answer: The special magic number for ([a-z]+-[a-z]+) is/g)].map((m) => m[1]);
    assert.deepEqual([...asked].sort(), [...valueOf.keys()].sort(), 'every key asked once');
    const answers = tasks.enc.decode(Array.from(ex.answerPositions, (p) => ex.tokens[p])).split('<|endoftext|>').slice(0, -1);
    assert.deepEqual(answers, asked.map((k) => ` ${valueOf.get(k)}`));
    assert.equal(asked[0], ex.task.input.match(/for ([a-z]+-[a-z]+)\?/)![1], 'the first question is the evaluation question');
    assert.ok(ex.tokens.length <= 513);
  }
});

test('word-valued needles: one-token names; multikey training examples ask every key and score each name', () => {
  for (const seed of [1, 2]) {
    const ex = wordTasks.example('needle-multikey', 512, seed, { extraQuestions: true });
    const text = wordTasks.enc.decode(Array.from(ex.tokens));
    const valueOf = new Map([...text.matchAll(/The special magic word for ([a-z]+-[a-z]+) is ([A-Z][a-z]+)\./g)].map((m) => [m[1], m[2]]));
    assert.equal(valueOf.size, 4);
    const asked = [...text.matchAll(/Answer: The special magic word for ([a-z]+-[a-z]+) is/g)].map((m) => m[1]);
    assert.deepEqual([...asked].sort(), [...valueOf.keys()].sort());
    const answers = Array.from(ex.answerPositions, (p) => wordTasks.enc.decode([ex.tokens[p]]));
    assert.deepEqual(answers, asked.flatMap((k) => [` ${valueOf.get(k)}`, '<|endoftext|>']), 'each answer is one name token + EOS');
  }
  assert.throws(() => new LongContextTasks(trainLongContextTokenizer(2100, 7), undefined, { values: 'uuid' as 'word', digits: 6 }), /needle values "uuid"/);
});

test('copy examples: the scored answer is the list again, whose length and offset vary with the seed', () => {
  const offsets = new Set<number>();
  for (const kind of ['copy-digits', 'copy-words'] as const) {
    for (const seed of [1, 2, 3, 4]) {
      const ex = tasks.example(kind, 256, seed);
      assert.ok(ex.tokens.length <= 257);
      const list = ex.task.input.split('Here is a list of words:\n')[1].split('\nRepeat the list:')[0];
      assert.equal(tasks.enc.decode(Array.from(ex.answerPositions, (p) => ex.tokens[p])), ` ${list}<|endoftext|>`);
      if (kind === 'copy-digits') assert.match(list, /^\d+$/);
      offsets.add(ex.answerPositions.length);
    }
  }
  assert.ok(offsets.size >= 6, 'list lengths differ');
});

test('tiny training run exports a folder that loadModel runs with the training model\'s logits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lc-train-'));
  try {
    const cfg = tinyConfig(dir, 3);
    const res = await trainLongContext(cfg, { progress: false, log: () => {} });
    assert.equal(res.step, 4);
    assert.ok(res.history.every((r) => Number.isFinite(r.loss) && r.loss > 0));
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(cfg.modelDir, f)), f);
    // the training forward with the exported weights …
    const mem = new TrainMemory({ bytes: 64 << 20, kernels: 'wasm' });
    const params = new Params(mem, 0);
    const model = new LongContextModel(modelConfig(cfg, tasks.vocabSize, tasks.eot), params);
    params.load(readSafetensorsF32(join(cfg.modelDir, 'model.safetensors')));
    const ex = tasks.example('needle-multikey', 256, 99);
    const T = ex.tokens.length - 1, last = ex.answerPositions[0] - 1;
    const tape = new Tape(mem);
    const train = model.rowLogits(tape, model.hidden(tape, ex.tokens.subarray(0, T), 1, T), [last]).data;  // (1, V)
    // … equals the inference engine's logits at the answer position
    const loaded = await loadModel(cfg.modelDir, { threads: 1 });
    try {
      const V = tasks.vocabSize;
      const inf = evaluateLogits(loaded.model, Array.from(ex.tokens.subarray(0, last + 1))).subarray(last * V, (last + 1) * V);
      let maxDiff = 0;
      for (let v = 0; v < V; v++) maxDiff = Math.max(maxDiff, Math.abs(inf[v] - train[v]));
      assert.ok(maxDiff < 1e-3, `max logit difference ${maxDiff}`);
      assert.deepEqual(loaded.tokenizer.encode(ex.task.input, { addSpecialTokens: true }), Array.from(ex.tokens.subarray(0, last + 1)));
    } finally {
      loaded.model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const SHIPPED = 'models/long-context';
test('the shipped long-context model retrieves needles and finds the most frequent name at 2048 tokens above chance (inference engine, dense)', { skip: !existsSync(join(SHIPPED, 'model.safetensors')) }, async () => {
  const [single, frequent] = await evaluateLongContext({ model: SHIPPED, n: 20, contexts: [2048], tasks: ['needle-single', 'most-frequent-name'], seed: 1 });
  // chance: a blind guess is 1/96 (names); among the 10 names of a list 1/10. These 20 held-out
  // examples are fixed (greedy decoding): measured 85% and 35% (50 examples: 94% and 38%).
  assert.ok(single.accuracy >= 0.7, `needle-single ${single.accuracy}`);
  assert.ok(frequent.accuracy >= 0.25, `most-frequent-name ${frequent.accuracy}`);
  assert.ok(single.meanPromptTokens > 2000 && frequent.meanPromptTokens > 2000, 'prompts fill the 2048-token window');
  // The same question when the most frequent name leads by two shares instead of half of one
  // (3.2× the runner-up's count instead of 1.5×; RULER's cwe uses 10×): measured 18 of 20 (100 examples: 91%).
  const [clear] = await evaluateLongContext({ model: SHIPPED, n: 20, contexts: [2048], tasks: ['most-frequent-name'], seed: 1, counting: { distinctWords: 10, marginFraction: 2 } });
  assert.ok(clear.accuracy >= 0.7, `most-frequent-name, margin 2: ${clear.accuracy}`);
});

const LC4K = 'models/long-context-4k';
test('the 4096-token long-context model retrieves needles at 4096 tokens (inference engine, dense)', { skip: !existsSync(join(LC4K, 'model.safetensors')) }, async () => {
  const [single] = await evaluateLongContext({ model: LC4K, n: 6, contexts: [4096], tasks: ['needle-single'], seed: 1 });
  // chance: a blind guess is 1/96. These 6 held-out examples are fixed (greedy): measured 5 of 6
  // (50 examples: 94%); the 2048-token model (models/long-context) finds 0 of them (50 examples: 6%).
  assert.ok(single.accuracy >= 4 / 6, `needle-single at 4096: ${single.accuracy}`);
  assert.ok(single.meanPromptTokens > 4000, 'prompts fill the 4096-token window');
});
