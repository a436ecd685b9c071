// The training pipelines end to end at toy sizes: config validation, `runTraining` on a corpus and on
// a synthetic task for both families (resume == uninterrupted run; the exported folder runs in the
// inference engine and scores exactly what the training graph scored), the `tessera train` and
// `tessera eval-ppl` commands, and the two experiments' --quick modes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, overrideConfig, parseTrainConfig, parityFfn, type TrainConfig } from '../../src/training/train-config.js';
import { runTraining } from '../../src/training/train-run.js';
import { evalPerplexity } from '../../src/eval/perplexity.js';
import { runLmExperiment } from '../../src/experiments/lm-sotu.js';
import { runRecallExperiment } from '../../src/experiments/recall.js';
import { markdownTable, REPO_ROOT } from '../../src/experiments/report.js';
import { loadModel } from '../../src/models/load.js';
import { CHAT_TEMPLATE } from '../../src/data/chat-examples.js';

const tmp = mkdtempSync(join(tmpdir(), 'tessera-exp-test-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const quiet = () => {};

function corpusConfig(family: 'llama' | 'mosaic', out: string, extra: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    family, model: { d: 16, layers: 1, heads: 2 }, data: { corpus: 'sotu', vocabSize: 300 },
    steps: 4, batch: 2, context: 16, warmup: 1, evalEvery: 2, evalBatches: 1, checkpointEvery: 2, out, ...extra,
  }, 'test');
}

test('config: defaults, parity FFN, overrides, and errors that name the field', () => {
  const c = corpusConfig('llama', join(tmp, 'x'));
  assert.equal(c.minLr, c.lr / 10);
  assert.equal(c.accumulate, 1);
  assert.equal(parityFfn(128), 344);                 // 3·128·344 = 132,096 ≈ 8·128² = 131,072
  const o = overrideConfig({ model: { d: 8 }, steps: 1, family: 'llama' }, { 'model.layers': '4', steps: 9, family: 'mosaic' });
  assert.deepEqual(o, { model: { d: 8, layers: 4 }, steps: 9, family: 'mosaic' });
  const bad = (raw: Record<string, unknown>, re: RegExp) => assert.throws(() => parseTrainConfig({
    family: 'llama', model: { d: 16, layers: 1, heads: 2 }, data: { corpus: 'sotu' }, steps: 2, out: 'x', ...raw }, 'cfg.json'),
  (e: unknown) => e instanceof ConfigError && re.test((e as Error).message));
  bad({ family: 'gpt' }, /family = "gpt"/);
  bad({ stpes: 3 }, /unknown field stpes/);
  bad({ model: { d: 10, layers: 1, heads: 4 } }, /not divisible by model.heads/);
  bad({ data: { corpus: 'wiki' } }, /data.corpus = "wiki"/);
  bad({ data: { task: 'recall', vocabSize: 64 }, context: 33 }, /must be even/);
  bad({ lr: 2 }, /lr = 2/);
  bad({ data: { corpus: 'sotu', chat: { fraction: 1, maxReplyTokens: 80 } } }, /fraction = 1 must be in \(0, 1\)/);
  bad({ data: { corpus: 'sotu', chat: { fraction: 0.5 } } }, /data\.chat\.maxReplyTokens = undefined must be an integer/);
  bad({ data: { corpus: 'sotu', chat: { fraction: 0.5, maxReplyTokens: 80, turns: 2 } } }, /unknown field data\.chat\.turns/);
  bad({ init: 3 }, /init must be the path of a model folder/);
});

test('a chat fine-tune: starts from a run\'s model, adds the chat tokens, exports a folder whose chat template and end-of-turn id work in the engine', async () => {
  const base = await runTraining(corpusConfig('llama', join(tmp, 'chat-base'), { steps: 2 }), { progress: false, log: quiet, finalEvalWindows: 2 });
  const cfg = corpusConfig('llama', join(tmp, 'chat-tuned'), {
    init: base.modelDir, steps: 2,
    data: { corpus: 'sotu', tokenizer: join(base.modelDir, 'tokenizer.json'), chat: { fraction: 0.5, maxReplyTokens: 24 } },
  });
  const tuned = await runTraining(cfg, { progress: false, log: quiet, finalEvalWindows: 2 });
  assert.equal(tuned.vocabSize, base.vocabSize + 3);
  const m = await loadModel(tuned.modelDir, { threads: 1 });
  try {
    const t = m.tokenizer;
    assert.equal(t.chatTemplate, CHAT_TEMPLATE);
    const [user, assistant, end] = ['<|user|>', '<|assistant|>', '<|end|>'].map((s) => t.encode(s, { addSpecialTokens: false }));
    assert.deepEqual([user.length, assistant.length, end.length], [1, 1, 1]);
    // <|endoftext|>, <|end|> and the role tokens all end a reply
    assert.deepEqual(t.eosTokenIds, [base.vocabSize - 1, end[0], user[0], assistant[0]]);
    assert.equal(m.model.vocabSize, base.vocabSize + 3);
  } finally { m.model.dispose(); }
});

for (const family of ['llama', 'mosaic'] as const) {
  test(`${family} on a corpus: resume equals an uninterrupted run; the exported folder scores the same in the inference engine`, async () => {
    const a = await runTraining(corpusConfig(family, join(tmp, `${family}-a`)), { progress: false, log: quiet, finalEvalWindows: 6 });
    const bOut = join(tmp, `${family}-b`);
    await runTraining(corpusConfig(family, bOut), { progress: false, log: quiet, stopAt: 2, finalEvalWindows: 6 });
    const b = await runTraining(corpusConfig(family, bOut), { progress: false, log: quiet, resume: true, finalEvalWindows: 6 });
    assert.deepEqual(b.history.map((h) => h.loss), a.history.map((h) => h.loss));
    assert.equal(b.final.loss, a.final.loss);
    assert.ok(a.history[3].loss < a.history[0].loss, `training lowers the loss: ${a.history.map((h) => h.loss)}`);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(existsSync(join(a.modelDir, f)), f);
    for (const f of ['loss.json', 'loss.svg', 'per-position.svg', 'result.json', 'checkpoint/model.safetensors']) assert.ok(existsSync(join(tmp, `${family}-a`, f)), f);

    // The inference engine (HF tokenizer from tokenizer.json, incremental forward) on the same 6
    // validation windows must give the loss the training graph (BpeEncoder tokens) gave.
    const r = await evalPerplexity(a.modelDir, { corpus: 'sotu', ctx: 16, maxWindows: 6, threads: 1 });
    assert.equal(r.tokens, 6 * 16);
    assert.ok(Math.abs(r.loss - a.final.loss) < 2e-4, `engine ${r.loss} vs training graph ${a.final.loss}`);
    const perPos = a.final.perPosition;
    for (let t = 0; t < 16; t++) assert.ok(Math.abs(r.perPosition[t] - perPos[t]) < 1e-3, `position ${t}: ${r.perPosition[t]} vs ${perPos[t]}`);

    const m = await loadModel(a.modelDir, { threads: 1 });
    try {
      assert.equal(m.model.vocabSize, a.vocabSize);
      assert.equal(m.tokenizer.bosTokenId, m.tokenizer.eosTokenIds[0]);    // <|endoftext|> starts and ends documents
      assert.ok(m.tokenizer.encode('The Congress')[0] === m.tokenizer.bosTokenId);
    } finally { m.model.dispose(); }
  });
}

test('synthetic task: answers only are scored, held-out accuracy is reported, resume is exact', async () => {
  const cfg = (out: string) => parseTrainConfig({ family: 'mosaic', model: { d: 16, layers: 1, heads: 2 }, data: { task: 'recall', vocabSize: 32, queries: 4 },
    steps: 4, batch: 4, context: 24, warmup: 1, evalEvery: 2, evalBatches: 2, checkpointEvery: 2, out }, 'test');
  const a = await runTraining(cfg(join(tmp, 'task-a')), { progress: false, log: quiet });
  assert.equal(a.final.count, 2 * 4 * 4);            // evalBatches × batch × queries
  assert.ok(a.final.accuracy >= 0 && a.final.accuracy <= 1);
  assert.ok(!existsSync(join(a.modelDir, 'tokenizer.json')));
  await runTraining(cfg(join(tmp, 'task-b')), { progress: false, log: quiet, stopAt: 2 });
  const b = await runTraining(cfg(join(tmp, 'task-b')), { progress: false, log: quiet, resume: true });
  assert.deepEqual(b.history.map((h) => h.loss), a.history.map((h) => h.loss));
  await assert.rejects(runTraining({ ...cfg(join(tmp, 'task-b')), lr: 1e-2 }, { progress: false, log: quiet, resume: true }), /differs from this config/);
});

test('tessera train and tessera eval-ppl commands', () => {
  const cfgPath = join(tmp, 'cli.json');
  writeFileSync(cfgPath, JSON.stringify({ family: 'llama', model: { d: 16, layers: 1, heads: 2 }, data: { corpus: 'sotu', vocabSize: 300 },
    steps: 2, batch: 2, context: 16, warmup: 1, evalEvery: 0, evalBatches: 1, checkpointEvery: 0, out: join(tmp, 'cli-run') }));
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, 'dist/src/cli/main.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  const t = cli('train', '--config', cfgPath, '--steps', '3', '--quiet', '--json');
  assert.equal(t.status, 0, t.stderr);
  const res = JSON.parse(t.stdout) as { steps: number; modelDir: string };
  assert.equal(res.steps, 3);                          // the flag overrode the config
  const e = cli('eval-ppl', '--model', res.modelDir, '--corpus', 'sotu', '--ctx', '16', '--windows', '2', '--json');
  assert.equal(e.status, 0, e.stderr);
  const ppl = JSON.parse(e.stdout) as { loss: number; perplexity: number; perPosition: number[] };
  assert.ok(Math.abs(ppl.perplexity - Math.exp(ppl.loss)) < 1e-6 * ppl.perplexity);
  assert.equal(ppl.perPosition.length, 16);
  const g = cli('generate', '--model', res.modelDir, '--prompt', 'The Congress', '--max-tokens', '4', '--temperature', '0');
  assert.equal(g.status, 0, g.stderr);
  const bad = cli('train', '--config', cfgPath, '--family', 'gpt');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--family must be one of llama, mosaic/);
  writeFileSync(cfgPath, JSON.stringify({ family: 'llama' }));
  const bad2 = cli('train', '--config', cfgPath);
  assert.equal(bad2.status, 1);
  assert.match(bad2.stderr, /model must be an object/);
});

test('experiments --quick: LM (4 runs) and recall (6 runs) write tables, plots and results', async () => {
  const args = { quick: true, runsDir: join(tmp, 'q-runs'), docsDir: join(tmp, 'q-docs') };
  const lm = await runLmExperiment(args, quiet);
  assert.deepEqual(lm.map((r) => `${r.config.family}-${r.config.model.layers}`), ['llama-1', 'mosaic-1', 'llama-4', 'mosaic-4']);
  // Matched parameters within 2% at each depth (the full configs: see docs/EXPERIMENTS.md).
  for (const [x, y] of [[lm[0], lm[1]], [lm[2], lm[3]]]) assert.ok(Math.abs(x.result.parameters / y.result.parameters - 1) < 0.02);
  const rc = await runRecallExperiment(args, quiet);
  assert.equal(rc.length, 6);
  for (const f of ['experiments/lm-sotu.md', 'experiments/lm-sotu.json', 'plots/lm-sotu-eval-loss.svg', 'plots/lm-sotu-per-position.svg',
    'experiments/recall.md', 'plots/recall-loss.svg', 'plots/induction-loss.svg']) assert.ok(existsSync(join(args.docsDir, f)), f);
  const md = readFileSync(join(args.docsDir, 'experiments/lm-sotu.md'), 'utf8');
  assert.equal(md.split('\n').filter((l) => /^\| (transformer|mosaic) L\d/.test(l)).length, 8);   // two tables × four runs
});

test('markdownTable aligns numbers right', () => {
  assert.equal(markdownTable(['a', 'b'], [['x', 1.5], ['y', '2%']]), '| a | b |\n|---|---:|\n| x | 1.5 |\n| y | 2% |\n');
});
