// Draft budgets chosen by the cost model (MagicDec: γ *and* the draft's KV budget). A model loaded
// with several draft attentions attends through the one a batch item names, each exactly as a model
// loaded with it alone; `gamma: 'auto'` measures T_D per budget, tracks α per budget and sequence,
// and takes the (budget, γ) of lowest predicted T_SD/T_AR — trying every budget, so a larger one
// that accepts more is found; greedy output stays token-identical to plain decoding.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoSpeculation, GammaTuner, PROBE_EVERY, bestDraft, bestGamma, type StepTimes, type TunedRow } from '../../src/generation/speculation-cost.js';
import { Scheduler } from '../../src/generation/scheduler.js';
import { SequenceState, type GenerationResult } from '../../src/generation/sequence.js';
import { generateText } from '../../src/generation/generate.js';
import { selfDrafter } from '../../src/generation/self-draft.js';
import type { Drafter } from '../../src/generation/drafter.js';
import { loadModel } from '../../src/models/load.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';

const times = (target: number, draft: number, verify: (g: number) => number): StepTimes =>
  ({ target, draft, verify: new Map([1, 2, 3, 4, 6, 8].map((g) => [g, verify(g)])) });

test('the best draft budget: the cheaper one at equal α, the dearer one where it accepts enough more, plain where none pays', () => {
  const small = times(1, 0.02, (g) => 1 + 0.05 * g), large = times(1, 0.2, (g) => 1 + 0.05 * g);
  assert.equal(bestDraft([0.8, 0.8], [small, large]).budget, 0, 'same α: the cheaper draft');
  const pick = bestDraft([0.3, 0.95], [small, large]);
  assert.equal(pick.budget, 1, 'the larger budget accepts far more');
  assert.deepEqual({ gamma: pick.gamma, ratio: pick.ratio }, bestGamma(0.95, large), 'its γ is the best for that budget');
  assert.deepEqual(bestDraft([0.9, 0.9], [times(1, 0.5, (g) => g + 1), times(1, 0.6, (g) => g + 1)]), { budget: 0, gamma: 0, ratio: 1 });
});

test('AutoSpeculation: probes the budgets in turn while plain, explores the others every PROBE_EVERY steps while speculating', () => {
  // verification cheap enough to pay at α = 0.9 but not at the prior 1/2: every plain step's choice is
  // 0 but the probes, which take the least recently verified budget (the cheaper first)
  const t = [times(1, 0.001, (g) => 1 + 0.6 * g), times(1, 0.01, (g) => 1 + 0.6 * g)];
  const a = new AutoSpeculation(2);
  const first = a.choose(t);
  assert.equal(first.budget, 0);
  assert.ok(first.gamma > 0, 'the first step probes');
  a.record(0, first.gamma, 0);                                           // budget 0 rejected at once
  for (let i = 1; i < PROBE_EVERY; i++) assert.equal(a.choose(t).gamma, 0, `plain step ${i}`);
  const second = a.choose(t);
  assert.equal(second.budget, 1, 'the next probe tries the budget not yet verified');
  assert.ok(second.gamma > 0);
  a.record(1, second.gamma, second.gamma);
  // budget 1 fits: it is chosen from now on, and budget 0 is tried again once per PROBE_EVERY steps
  const used = [0, 0];
  for (let i = 0; i < 4 * PROBE_EVERY; i++) {
    const c = a.choose(t);
    if (c.gamma === 0) continue;
    used[c.budget]!++;
    a.record(c.budget, c.gamma, c.budget === 1 ? c.gamma : 0);
  }
  assert.ok(used[1]! >= 4 * PROBE_EVERY - 5, `budget 1 speculates: ${used.join(', ')}`);
  assert.ok(used[0]! >= 3 && used[0]! <= 5, `budget 0 explored once per ${PROBE_EVERY} steps: ${used.join(', ')}`);
  // speculating from the first step (cheap verification): the chosen budget, then each budget not yet
  // verified once, right away; then bestDraft's choice at the α each budget has
  const cheap = [times(1, 0.001, (g) => 1 + 0.05 * g), times(1, 0.002, (g) => 1 + 0.05 * g), times(1, 0.003, (g) => 1 + 0.05 * g)];
  const b = new AutoSpeculation(3), seen: number[] = [];
  for (let i = 0; i < 3; i++) { const c = b.choose(cheap); assert.ok(c.gamma > 0); seen.push(c.budget); b.record(c.budget, c.gamma, c.budget === 2 ? c.gamma : 0); }
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(b.choose(cheap).budget, 2, 'the one budget that accepted');
  assert.deepEqual(b.choose(cheap), { budget: bestDraft(b.alphas.map((a) => a.alpha), cheap).budget, gamma: bestDraft(b.alphas.map((a) => a.alpha), cheap).gamma });
  // no times (not calibrated, or stopped by the realised speed-up): plain, no probe
  assert.deepEqual(new AutoSpeculation(2).choose(undefined), { budget: 0, gamma: 0 });
});

const tok = new ByteTokenizer();
const prompt = 'the cat sat on the mat. the cat sat on the mat. the cat sat on the';
const reply = ' mat. the cat sat on the mat. the cat sat on the mat. the cat sat on the mat. the cat sat on the mat. the cat sat on the mat.';
const script = [...bytesOf(reply), EOS];

/** A tuner with fixed times per budget (no timing in the test). */
class BudgetTimes extends GammaTuner {
  readonly asked: number[] = [];
  constructor(readonly t: readonly StepTimes[]) { super(new FakeModel(), 3); }
  override times(_drafter: Drafter, _rows: readonly TunedRow[], budget = 0): StepTimes { this.asked[budget] = (this.asked[budget] ?? 0) + 1; return this.t[budget]!; }
}

test("gamma auto over two draft budgets on a scripted model: the one that fits is found and used, output == plain greedy", async () => {
  // draft attention 0 says something else at every position, draft attention 1 says what the target says
  const wrong = script.map((t) => (t + 1) % 256);
  const make = () => new FakeModel({ script, draftScripts: [wrong, script], promptLength: tok.encode(prompt).length });
  const plain = await generateText(make(), tok, prompt, { temperature: 0 });
  const model = make();
  assert.deepEqual(model.draftAttentions, ['fake draft 0', 'fake draft 1']);
  const tuner = new BudgetTimes([times(1, 0.001, (g) => 1 + 0.1 * g), times(1, 0.01, (g) => 1 + 0.1 * g)]);
  const seq = new SequenceState(tok, prompt, { temperature: 0 }, model.vocabSize);
  const it = new Scheduler(model, { tuner }).submit(seq, { speculate: { draft: 'self', gamma: 'auto' } });
  let r: IteratorResult<unknown, GenerationResult>;
  for (;;) { r = await it.next(); if (r.done) break; }
  const out = r.value;
  assert.deepEqual(out.tokens, plain.tokens);
  assert.ok(tuner.asked[0]! > 0 && tuner.asked[1]! > 0, 'times asked for both budgets');
  const by = out.speculative!.byBudget!;
  assert.ok(by['fake draft 0']!.steps >= 1 && by['fake draft 0']!.accepted === 0, JSON.stringify(by));
  assert.ok(by['fake draft 1']!.steps > by['fake draft 0']!.steps && by['fake draft 1']!.accepted > 0.9 * by['fake draft 1']!.drafted, JSON.stringify(by));
  assert.ok(model.draftRows[0]! > 0 && model.draftRows[1]! > model.draftRows[0]!, `draft rows per attention: ${model.draftRows.join(', ')}`);
  assert.equal(out.speculative!.steps, by['fake draft 0']!.steps + by['fake draft 1']!.steps);

  // a fixed γ cannot choose among budgets
  await assert.rejects(generateText(make(), tok, prompt, { temperature: 0, speculate: { draft: 'self', gamma: 4 } }), /2 draft budgets .* needs gamma 'auto'/);
});

test('the tuner measures T_T and T_V once per bucket and T_D once per draft budget', () => {
  const model = new FakeModel({ draftScripts: [[1], [2]], promptLength: 4 });
  const asked: (number | undefined)[] = [];
  const drafter: Drafter = { name: 'counting', budgets: ['a', 'b'], forget: () => {}, propose: (reqs) => reqs.map((q) => { asked.push(q.budget); return { tokens: [1] }; }) };
  const tuner = new GammaTuner(model, 2);
  const cache = model.createCache();
  model.forwardBatch([{ cache, tokens: [1, 2, 3, 4], phase: 'prefill' }]);
  const seq = new SequenceState(tok, [5], { temperature: 0, context: [1, 2, 3, 4] }, model.vocabSize);
  const rows: TunedRow[] = [{ cache, next: 5, ask: { seq, cache, gamma: 1 } }];
  const t0 = tuner.times(drafter, rows)!, t1 = tuner.times(drafter, rows, 1)!;
  assert.equal(tuner.calibrations, 1);
  assert.equal(t0.target, t1.target);
  assert.equal(t0.verify, t1.verify);
  assert.deepEqual(asked, [0, 0, 0, 1, 1, 1], 'a first call and 2 timed ones per budget');
  tuner.times(drafter, rows, 1);
  assert.equal(asked.length, 6, 'measured once');
  assert.equal(cache.length, 4, 'the cache is left as it was');
});

test('a model with several draft attentions: each draft row attends as a model loaded with that attention alone; greedy auto over the budgets == plain', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-budgets-'));
  const specs = ['streaming:sinks=2,window=16', 'snapkv:budget=24,window=8'];
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const both = await loadModel(path, { threads: 2, contextLength: 256, draftAttention: specs, parallel: 4 });
    try {
      assert.deepEqual(both.model.draftAttentions, specs);
      const p = randomIds(31, 100, 500);
      for (const [i, spec] of specs.entries()) {
        const alone = await loadModel(path, { threads: 2, contextLength: 256, draftAttention: spec, parallel: 2 });
        try {
          const a = both.model.createCache(), b = alone.model.createCache();
          for (const [m, c] of [[both.model, a], [alone.model, b]] as const) m.forwardBatch([{ cache: c, tokens: p, phase: 'prefill', logits: 'none' }]);
          for (let s = 0; s < 3; s++) {
            const la = both.model.forwardBatch([{ cache: a, tokens: [p[s]!], draft: i }])[0]!.slice();
            const lb = alone.model.forwardBatch([{ cache: b, tokens: [p[s]!], draft: true }])[0]!;
            assert.deepEqual(la, lb, `${spec}: draft step ${s} bit-identical`);
          }
          a.release(); b.release();
        } finally { alone.model.dispose(); }
      }
      const c = both.model.createCache();
      assert.throws(() => both.model.forwardBatch([{ cache: c, tokens: [1], draft: 2 }]), /draft 2 is not one of the model's 2 draft attentions/);
      c.release();
      assert.throws(() => selfDrafter(both.model, [2]), /not among the model's 2/);
      assert.equal(selfDrafter(both.model, [1]).name, `self (${specs[1]})`);

      // greedy auto over both budgets, in one batch: fixed cheap times, so both are drafted with
      const prompts = [randomIds(41, 120, 500), randomIds(42, 80, 500)];
      const plain = await Promise.all(prompts.map((q) => generateText(both.model, both.tokenizer, q, { temperature: 0, maxTokens: 40, ignoreEos: true })));
      const scheduler = new Scheduler(both.model, { tuner: new BudgetTimes([times(1, 0.01, (g) => 1 + 0.05 * g), times(1, 0.02, (g) => 1 + 0.05 * g)]) });
      const spec = await Promise.all(prompts.map(async (q) => {
        const it = scheduler.submit(new SequenceState(both.tokenizer, q, { temperature: 0, maxTokens: 40, ignoreEos: true }, both.model.vocabSize), { speculate: { draft: 'self', gamma: 'auto' } });
        for (;;) { const r = await it.next(); if (r.done) return r.value; }
      }));
      spec.forEach((r, i) => assert.deepEqual(r.tokens, plain[i]!.tokens, `request ${i}`));
      const by = spec.map((r) => r.speculative!.byBudget ?? {});
      assert.ok(by.every((b) => specs.every((name) => (b[name]?.steps ?? 0) > 0)), `both budgets drafted for each request: ${JSON.stringify(by)}`);
      assert.equal((both.model as unknown as { kvPages: { used: number } }).kvPages.used, 0, 'every page returned');
    } finally { both.model.dispose(); }

    // the most draft attentions a model holds, of every kind, planned into the arenas: every slot
    // taken and each attention drafted through; one more is refused
    const eight = ['snapkv:budget=24,window=8', 'streaming:sinks=2,window=16', 'quest:budget=0.2', 'topk:k=8', 'oracle-sampling',
      'magicpig:K=4,L=8,dense=none', 'magicpig:K=6,L=12,dense=none', 'streaming:sinks=4,window=8'];
    const many = await loadModel(path, { threads: 1, contextLength: 300, draftAttention: eight, parallel: 4 });
    try {
      const caches = Array.from({ length: 4 }, () => many.model.createCache());
      for (const c of caches) many.model.forwardBatch([{ cache: c, tokens: randomIds(51, 200, 500), phase: 'prefill', logits: 'none' }]);
      for (let i = 0; i < eight.length; i++) {
        const out = many.model.forwardBatch([{ cache: caches[i % 4]!, tokens: [7], draft: i }])[0]!;
        assert.ok(out.every(Number.isFinite), eight[i]);
      }
    } finally { many.model.dispose(); }
    await assert.rejects(loadModel(path, { threads: 1, contextLength: 300, draftAttention: [...eight, 'topk:k=4'] }), /draftAttention lists 9 attentions; give 1 to 8/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
