// γ from the cost model: the formulas of PAPERS.md §2, the choice (0 where verification is too dear,
// long drafts where it is cheap and the draft fits), the per-sequence α estimate, and `gamma: 'auto'`
// in the scheduler: lossless (greedy == plain), γ = 0 with only the bounded probes when the measured
// times say speculation loses, speculating when they say it pays, and a real calibration on a model.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AcceptanceEstimate, CALIBRATE_MIN_REMAINING, GammaTuner, MIN_CONTEXT_BUCKET, PROBE_ALPHA, PROBE_EVERY, REALISED_MIN_STEPS, bestGamma, costRatio, expectedTokens, type StepTimes, type TunedRow } from '../../src/generation/speculation-cost.js';
import { Scheduler } from '../../src/generation/scheduler.js';
import { SequenceState, type GenerationResult } from '../../src/generation/sequence.js';
import { generateText } from '../../src/generation/generate.js';
import { DraftModel } from '../../src/generation/draft-model.js';
import type { Drafter } from '../../src/generation/drafter.js';
import { loadModel } from '../../src/models/load.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';
import type { BatchItem } from '../../src/models/types.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
const times = (target: number, draft: number, verify: (g: number) => number): StepTimes =>
  ({ target, draft, verify: new Map([1, 2, 3, 4, 6, 8].map((g) => [g, verify(g)])) });

test('Ω(γ, α) and T_SD/T_AR as the paper writes them', () => {
  close(expectedTokens(0, 0.7), 1, 'γ 0');
  close(expectedTokens(1, 0.5), 1.5, 'γ 1');
  close(expectedTokens(4, 0.8), (1 - 0.8 ** 5) / 0.2, 'γ 4');
  close(expectedTokens(3, 1), 4, 'α 1');
  const t = times(0.1, 0.01, (g) => 0.1 + 0.005 * g);
  close(costRatio(4, 0.8, t), (4 * 0.01 + 0.12) / (expectedTokens(4, 0.8) * 0.1), 'ratio');
  close(costRatio(0, 0.3, t), 1, 'plain');
  assert.throws(() => costRatio(5, 0.5, t), /T_V\(5\) was not measured/);
});

test('the best γ: long drafts when verification is cheap and α high, plain decoding when verification costs (γ + 1) steps', () => {
  const cheap = times(1, 0.02, () => 1.05);
  assert.equal(bestGamma(0.95, cheap).gamma, 8);
  assert.ok(bestGamma(0.95, cheap).ratio < 0.3);
  const g = bestGamma(0.5, cheap).gamma;
  assert.ok(g >= 1 && g < 8, `a middling α takes a middling γ: ${g}`);
  assert.equal(bestGamma(0.05, times(1, 0.3, () => 1.1)).gamma, 0, 'a draft that never fits is not worth its cost');
  const computeBound = times(1, 0.05, (γ) => γ + 1);                     // T_V(γ) = (γ + 1) T_T: a CPU with no multi-query gain
  for (const a of [0.5, 0.8, 0.95]) assert.deepEqual(bestGamma(a, computeBound), { gamma: 0, ratio: 1 }, `α ${a}`);
  assert.equal(bestGamma(0.95, cheap, 3).gamma, 3, 'maxGamma caps the choice');
});

test('α per sequence: the prior is 1/2, accepted runs raise it, rejections lower it, recent steps count more', () => {
  const a = new AcceptanceEstimate();
  close(a.alpha, 0.5, 'prior');
  for (let i = 0; i < 20; i++) a.record(4, 4);
  assert.ok(a.alpha > 0.95, `all accepted: ${a.alpha}`);
  for (let i = 0; i < 30; i++) a.record(4, 0);
  assert.ok(a.alpha < 0.2, `then all rejected: ${a.alpha}`);
  const b = new AcceptanceEstimate();
  for (let i = 0; i < 200; i++) b.record(4, 1);                          // one accepted, then a rejection: α = 1/2
  assert.ok(Math.abs(b.alpha - 0.5) < 0.01, `geometric estimate: ${b.alpha}`);
});

/** A tuner that reports fixed times (no timing in the test); `clock` for the steps' realised speed. */
class FixedTimes extends GammaTuner {
  asked = 0;
  constructor(readonly t: StepTimes, clock?: () => number) { super(new FakeModel(), 3, clock); }
  override times(_drafter: Drafter, _rows: readonly TunedRow[]): StepTimes { this.asked++; return this.t; }
}

const tok = new ByteTokenizer();
const prompt = 'the cat sat on the mat. the cat sat on the mat. the cat sat on the';
const reply = ' mat. the cat sat on the mat. the cat sat on the mat. the cat sat on the mat.';

const script = [...bytesOf(reply), EOS];
/** Drafts the target's own next tokens (`shift` 0), or always wrong ones (`shift` 1). */
const oracle = (shift: number): Drafter => ({
  name: `oracle+${shift}`, forget: () => {},
  propose: (reqs) => reqs.map((r) => ({ tokens: script.slice(r.seq.tokens.length, r.seq.tokens.length + r.gamma).map((t) => (t + shift) % 256) })),
});

async function run(tuner: GammaTuner, draft: 'prompt-lookup' | Drafter = 'prompt-lookup'): Promise<GenerationResult> {
  const model = new FakeModel({ script, promptLength: tok.encode(prompt).length });
  const seq = new SequenceState(tok, prompt, { temperature: 0 }, model.vocabSize);
  const it = new Scheduler(model, { tuner }).submit(seq, { speculate: { draft, gamma: 'auto' } });
  for (;;) { const r = await it.next(); if (r.done) return r.value; }
}

test('gamma auto follows the times: plain decoding with probes only where verification is dear, long runs where it is cheap; output == plain greedy', async () => {
  const model = new FakeModel({ script: [...bytesOf(reply), EOS], promptLength: tok.encode(prompt).length });
  const plain = await generateText(model, tok, prompt, { temperature: 0 });

  const dear = new FixedTimes(times(1, 0.01, (g) => g + 1));
  const slow = await run(dear);
  assert.deepEqual(slow.tokens, plain.tokens);
  assert.ok(dear.asked > 0);
  assert.equal(slow.speculative!.steps, 0, 'verification at (γ + 1) steps never pays, not even a probe');

  // verification cheap enough to pay at α = 0.9 but not at the prior 1/2: the first step probes, and
  // a draft that fits raises α so speculation takes over; one that never fits gets the probes only
  const marginal = () => new FixedTimes(times(1, 0.001, (g) => 1 + 0.6 * g));
  assert.equal(bestGamma(0.5, marginal().t).gamma, 0);
  assert.ok(bestGamma(PROBE_ALPHA, marginal().t).gamma > 0);
  const found = await run(marginal(), oracle(0));
  assert.deepEqual(found.tokens, plain.tokens);
  assert.ok(found.speculative!.steps > Math.ceil(plain.tokens.length / PROBE_EVERY) + 1 && found.speculative!.meanAcceptedLength > 1.5,
    `more than the probes speculated: ${JSON.stringify(found.speculative)}`);
  const probed = await run(marginal(), oracle(1));
  assert.deepEqual(probed.tokens, plain.tokens);
  const steps = probed.speculative!.steps;
  assert.ok(steps >= 1 && steps <= Math.ceil(plain.tokens.length / PROBE_EVERY) + 1 && probed.speculative!.accepted === 0,
    `only probes speculated: ${JSON.stringify(probed.speculative)} for ${plain.tokens.length} tokens`);

  const cheap = new FixedTimes(times(1, 0.001, () => 1.02));
  const fast = await run(cheap);
  assert.deepEqual(fast.tokens, plain.tokens);
  assert.ok(fast.speculative!.meanAcceptedLength > 4, `copying the prompt with cheap verification drafts long runs: ${JSON.stringify(fast.speculative)}`);
});

test('gamma auto stops speculating where its steps realise less than plain decoding, whatever the prediction said', async () => {
  // the calibration promises cheap verification (T_V(γ) = 1.02 T_T); on the clock the fake model
  // advances a step costs 1.5 ms per token fed less 0.5 ms per row: a plain step 1 ms, a verification
  // of γ + 1 = 9 tokens 13 ms, so even fully accepted drafts realise 9 / 13 ≈ 0.69× plain decoding
  let now = 0;
  class Timed extends FakeModel {
    override forwardBatch(batch: readonly BatchItem[]): Float32Array[] { now += 1.5 * batch.reduce((n, b) => n + b.tokens.length, 0) - 0.5 * batch.length; return super.forwardBatch(batch); }
  }
  const model = new Timed({ script, promptLength: tok.encode(prompt).length });
  const plain = await generateText(new FakeModel({ script, promptLength: tok.encode(prompt).length }), tok, prompt, { temperature: 0 });
  const tuner = new FixedTimes(times(0.001, 0.000001, () => 0.00102), () => now);
  assert.ok(bestGamma(0.5, tuner.t).gamma > 0, 'the prediction says speculation pays');
  const seq = new SequenceState(tok, prompt, { temperature: 0 }, model.vocabSize);
  const it = new Scheduler(model, { tuner }).submit(seq, { speculate: { draft: oracle(0), gamma: 'auto' } });
  let r; for (;;) { r = await it.next(); if (r.done) break; }
  assert.deepEqual(r.value.tokens, plain.tokens);
  // the 67-token prompt and its continuation lie in one context bucket (below MIN_CONTEXT_BUCKET): it
  // speculates REALISED_MIN_STEPS steps (γ = 8, 9 tokens each) and then decodes plainly, no probes
  assert.equal(tok.encode(prompt).length, 67);
  assert.equal(tuner.stopped, 1, 'the realised speed-up stopped speculation in the bucket');
  assert.equal(r.value.speculative!.steps, REALISED_MIN_STEPS, JSON.stringify(r.value.speculative));
  const fed = model.steps.slice(1).map((s) => s[0]!);                  // after the prompt's step
  assert.deepEqual(fed.slice(0, REALISED_MIN_STEPS), Array(REALISED_MIN_STEPS).fill(9));
  assert.ok(fed.slice(REALISED_MIN_STEPS).every((n) => n === 1), `plain steps after the stop: ${fed.join(' ')}`);

  // where the steps cost what the calibration said, speculation goes on
  now = 0;
  const fair = new FixedTimes(times(0.001, 0.000001, () => 0.00102), () => now);
  class Fair extends FakeModel {
    override forwardBatch(batch: readonly BatchItem[]): Float32Array[] { now += batch.some((b) => b.tokens.length > 1 && b.phase === 'decode') ? 1.02 : 1; return super.forwardBatch(batch); }
  }
  const fairModel = new Fair({ script, promptLength: tok.encode(prompt).length });
  const seq2 = new SequenceState(tok, prompt, { temperature: 0 }, fairModel.vocabSize);
  const it2 = new Scheduler(fairModel, { tuner: fair }).submit(seq2, { speculate: { draft: oracle(0), gamma: 'auto' } });
  let r2; for (;;) { r2 = await it2.next(); if (r2.done) break; }
  assert.deepEqual(r2.value.tokens, plain.tokens);
  assert.equal(fair.stopped, 0);
  assert.ok(r2.value.speculative!.steps > REALISED_MIN_STEPS && r2.value.speculative!.meanAcceptedLength > 4, JSON.stringify(r2.value.speculative));
});

test('gamma auto on a real model with a draft model: calibrates on the running caches, output == plain greedy, pages all returned', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-auto-'));
  try {
    const path = writeTestCheckpoint(join(dir, 't'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const { model, tokenizer } = await loadModel(path, { threads: 2, contextLength: 256 });
    const near = (await loadModel(path, { threads: 2, contextLength: 256, attention: 'streaming:sinks=4,window=16' })).model;
    try {
      const prompts = [randomIds(21, 60, 500), randomIds(22, 90, 500)];
      const plain = await Promise.all(prompts.map((p) => generateText(model, tokenizer, p, { temperature: 0, maxTokens: 30 })));
      const tuner = new GammaTuner(model, 3, undefined, 0);                // calibrates however few tokens are left
      const scheduler = new Scheduler(model, { tuner });
      const drafter = new DraftModel(near);
      const out = await Promise.all(prompts.map(async (p) => {
        const seq = new SequenceState(tokenizer, p, { temperature: 0, maxTokens: 30 }, model.vocabSize);
        const it = scheduler.submit(seq, { speculate: { draft: drafter, gamma: 'auto' } });
        for (;;) { const r = await it.next(); if (r.done) return r.value; }
      }));
      out.forEach((r, i) => assert.deepEqual(r.tokens, plain[i]!.tokens, `sequence ${i}`));
      assert.ok(tuner.calibrations >= 1, 'the tuner measured this batch');
      assert.equal(drafter.sequences, 0);
      // with the default tuner, 30 tokens are too few to pay for a calibration: plain decoding, same tokens
      const short = new GammaTuner(model), s2 = new Scheduler(model, { tuner: short });
      const seq = new SequenceState(tokenizer, prompts[0]!, { temperature: 0, maxTokens: 30 }, model.vocabSize);
      const it = s2.submit(seq, { speculate: { draft: drafter, gamma: 'auto' } });
      let r; for (;;) { r = await it.next(); if (r.done) break; }
      assert.deepEqual(r.value.tokens, plain[0]!.tokens);
      assert.equal(short.calibrations, 0);
      assert.equal(drafter.sequences, 0);
      for (const m of [model, near]) assert.equal((m as unknown as { kvPages: { used: number } }).kvPages.used, 0);
    } finally { model.dispose(); near.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('gamma auto: a batch that shrinks as its sequences finish reuses its calibration; a larger batch or another context calibrates', () => {
  const model = new FakeModel({ suppress: [EOS], contextLength: 8192 });
  const tuner = new GammaTuner(model, 1);
  const drafter: Drafter = { name: 'one', forget: () => {}, propose: (reqs) => reqs.map(() => ({ tokens: [1] })) };
  const row = (length: number): TunedRow => {
    const cache = model.createCache();
    model.forward(randomIds(length, length, 200), cache);
    const seq = new SequenceState(tok, 'x', {}, model.vocabSize);
    return { cache, next: 5, ask: { seq, cache, gamma: 1 } };
  };
  const rows = Array.from({ length: 8 }, () => row(100));
  const at = (n: number) => { tuner.times(drafter, rows.slice(0, n)); return tuner.calibrations; };
  assert.equal(at(4), 1);
  assert.equal(at(3), 1, 'batch 3 after batch 4: no new calibration');
  assert.equal(at(2), 1);
  assert.equal(at(1), 1);
  assert.equal(at(8), 2, 'a batch larger than any measured is calibrated');
  assert.equal(at(6), 2);
  assert.equal(rows[0]!.cache.length, 100, 'calibration leaves the caches as they were');
  assert.equal(tuner.times(drafter, [row(1000)]) !== undefined && tuner.calibrations, 2, `${MIN_CONTEXT_BUCKET - 24} tokens: the same bucket as 100 (below MIN_CONTEXT_BUCKET)`);
  assert.equal(tuner.times(drafter, [row(4000)]) !== undefined && tuner.calibrations, 3, 'another context bucket is calibrated');
});

test('gamma auto calibrates only where a row has CALIBRATE_MIN_REMAINING tokens left; times measured before serve any row', () => {
  const model = new FakeModel({ suppress: [EOS], contextLength: 2048 });
  const tuner = new GammaTuner(model, 1);
  const drafter: Drafter = { name: 'one', forget: () => {}, propose: (reqs) => reqs.map(() => ({ tokens: [1] })) };
  const row = (remaining: number | undefined): TunedRow => {
    const cache = model.createCache();
    model.forward(randomIds(3, 100, 200), cache);
    const seq = new SequenceState(tok, 'x', {}, model.vocabSize);
    return { cache, next: 5, ask: { seq, cache, gamma: 1 }, ...(remaining === undefined ? {} : { remaining }) };
  };
  assert.equal(tuner.times(drafter, [row(30), row(CALIBRATE_MIN_REMAINING - 1)]), undefined, 'too few tokens left: plain decoding, nothing measured');
  assert.equal(tuner.calibrations, 0);
  assert.ok(tuner.times(drafter, [row(30), row(CALIBRATE_MIN_REMAINING)]) !== undefined, 'one row with enough left: calibrated');
  assert.equal(tuner.calibrations, 1);
  assert.ok(tuner.times(drafter, [row(2)]) !== undefined, 'the bucket measured: its times serve a row with 2 tokens left');
  assert.equal(tuner.calibrations, 1);
  assert.ok(new GammaTuner(model, 1).times(drafter, [row(undefined)]) !== undefined, 'rows of unknown length (a benchmark\'s) calibrate');
});
