// Self-speculation (MagicDec): the model drafts through a sparse draft attention over its own K/V
// rows, then verifies with its full attention. Greedy output is token-identical to plain greedy for
// every draft attention, alone and in a batch that mixes plain and speculative requests finishing at
// different steps; the scheduler's edge cases (rejection at the first draft token, everything
// accepted, eos / a stop string / the token limit inside an accepted run) are pinned on a scripted
// model whose draft disagrees exactly where the test says; the StreamingLLM window evicts at W + 1;
// and sampling stays lossless with a real sparse draft's (non-one-hot) q.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateText } from '../../src/generation/generate.js';
import { SequenceState } from '../../src/generation/sequence.js';
import { draw, parseSpeculateSpec, verifyDraft } from '../../src/generation/speculative.js';
import type { SamplingOptions } from '../../src/generation/sampler.js';
import { describeModel, loadModel } from '../../src/models/load.js';
import type { LanguageModel } from '../../src/models/types.js';
import type { Tokenizer } from '../../src/tokenizer/types.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';
import { chi2Critical, chiSquare } from './chi-square.js';

const tok = new ByteTokenizer();
const SELF = { draft: 'self' as const, gamma: 4 };

/** A scripted model whose target says `reply` (then eos) and whose draft says `draft`. */
function scripted(prompt: string, reply: string, draft: string, eos = true): FakeModel {
  const end = eos ? [EOS] : [];
  return new FakeModel({ script: [...bytesOf(reply), ...end], draftScript: [...bytesOf(draft), ...end], promptLength: tok.encode(prompt).length });
}

test('self-speculation on a scripted model: all accepted, rejection at the first draft, eos / stop / max tokens inside a run', async () => {
  const prompt = 'the cat sat on the';
  const reply = ' mat. the cat sat on the mat.';
  const cases: [what: string, draft: string, o: { maxTokens?: number; stop?: string[] }, check: (s: { drafted: number; accepted: number; steps: number }) => boolean][] = [
    ['draft agrees everywhere: every run accepted', reply, {}, (s) => s.accepted === s.drafted],
    // every draft token differs from the target's (one bit off; one more token, so not even the eos agrees)
    ['draft disagrees at every position: rejection at the first draft token', reply.split('').map((c) => String.fromCharCode(c.charCodeAt(0) ^ 1)).join('') + 'X', {}, (s) => s.accepted === 0],
    ['draft agrees until the 10th token', reply.slice(0, 9) + 'X' + reply.slice(10), {}, (s) => s.accepted > 0 && s.accepted < s.drafted],
    ['token limit inside an accepted run', reply, { maxTokens: 7 }, (s) => s.accepted > 0],
    ['stop string completed inside an accepted run', reply, { stop: ['cat s'] }, (s) => s.accepted > 0],
  ];
  for (const [what, draft, o, check] of cases) {
    const opts = { temperature: 0, ...o };
    const plain = await generateText(scripted(prompt, reply, draft), tok, prompt, opts);
    const spec = await generateText(scripted(prompt, reply, draft), tok, prompt, { ...opts, speculate: SELF });
    assert.deepEqual(spec.tokens, plain.tokens, what);
    assert.equal(spec.text, plain.text, what);
    assert.equal(spec.finishReason, plain.finishReason, what);
    const s = spec.speculative!;
    assert.ok(s.steps > 0 && check(s), `${what}: ${JSON.stringify(s)}`);
  }
  // eos inside an accepted run: the draft proposes the eos itself, the run stops there
  const short = ' mat.';
  const plain = await generateText(scripted(prompt, short, short), tok, prompt, { temperature: 0 });
  const spec = await generateText(scripted(prompt, short, short), tok, prompt, { temperature: 0, speculate: SELF });
  assert.deepEqual(spec.tokens, plain.tokens);
  assert.equal(spec.finishReason, 'eos');
  assert.equal(plain.finishReason, 'eos');
  assert.ok(spec.speculative!.accepted >= 3, JSON.stringify(spec.speculative));
});

test('self-speculation on a scripted model: a draft of γ takes γ mini-steps and stops early at eos', async () => {
  const prompt = 'ab', reply = 'xyz';
  const m = scripted(prompt, reply, reply);
  const r = await generateText(m, tok, prompt, { temperature: 0, speculate: { draft: 'self', gamma: 8 } });
  assert.equal(r.text, reply);
  // prefill, then drafts of x (fed) → y, z, eos: 3 mini-steps (eos ends the draft before γ = 8), then one verification
  assert.deepEqual(m.steps, [[3], [1], [1], [1], [4]]);
  assert.deepEqual(r.speculative!.perPosition, [1, 1, 1]);
});

test('self-speculation needs a draft attention; --speculate parses draft attentions', async () => {
  const m = new FakeModel({});
  await assert.rejects(generateText(m, tok, 'ab', { temperature: 0, speculate: SELF }), /needs a model loaded with a draft attention/);
  assert.deepEqual(parseSpeculateSpec('draft=streaming:sinks=4,window=256,gamma=3'),
    { draft: 'self', gamma: 3, attention: [{ kind: 'streaming', params: { sinks: 4, window: 256 } }] });
  assert.deepEqual(parseSpeculateSpec('gamma=2,draft=snapkv:budget=512'), { draft: 'self', gamma: 2, attention: [{ kind: 'snapkv', params: { budget: 512 } }] });
  // draft budgets: one parameter lists values; the cost model chooses among them (gamma auto)
  assert.deepEqual(parseSpeculateSpec('draft=streaming:sinks=4,window=64/256'),
    { draft: 'self', gamma: 'auto', attention: [{ kind: 'streaming', params: { sinks: 4, window: 64 } }, { kind: 'streaming', params: { sinks: 4, window: 256 } }] });
  assert.throws(() => parseSpeculateSpec('draft=streaming:window=64/256,gamma=4'), /several draft budgets .* needs gamma=auto/);
  assert.throws(() => parseSpeculateSpec('draft=streaming:sinks=2/4,window=64/256'), /only one parameter may list alternatives/);
  assert.throws(() => parseSpeculateSpec('draft=streaming:window=64//256'), /empty alternative/);
  assert.throws(() => parseSpeculateSpec('draft=streaming:window=64/64'), /lists a value twice/);
  assert.throws(() => parseSpeculateSpec('draft=streaming:window=1/2/3/4/5/6/7/8/9'), /9 draft budgets .* at most 8/);
  assert.throws(() => parseSpeculateSpec('draft=snapkv:budget=64/16,window=32'), /window \(32\) must not exceed its budget \(16\)/);
  assert.throws(() => parseSpeculateSpec('draft=dense'), /unknown draft "dense".*streaming, snapkv, magicpig/);
  assert.throws(() => parseSpeculateSpec('draft=snapkv:budget=16,window=32'), /window \(32\) must not exceed its budget \(16\)/);
  assert.throws(() => parseSpeculateSpec('draft=streaming:width=3'), /streaming has no parameter "width"/);
});

/** Greedy outputs of `prompts` with per-request options, all submitted at once (one shared batch). */
async function together(model: LanguageModel, tokenizer: Tokenizer, prompts: number[][], opts: object[]) {
  return Promise.all(prompts.map((p, i) => generateText(model, tokenizer, p, { temperature: 0, ...opts[i] })));
}

const DRAFTS = ['streaming:sinks=2,window=16', 'snapkv:budget=24,window=8', 'magicpig:K=4,L=24,sinks=2,window=8,threshold=16,dense=none'];

test('greedy self-speculation == plain greedy for every draft attention, alone and in a mixed batch of 4', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-selfspec-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    for (const draftAttention of DRAFTS) {
      const { model, tokenizer } = await loadModel(path, { threads: 2, contextLength: 256, draftAttention, parallel: 4 });
      try {
        const prompts = [randomIds(21, 120, 500), randomIds(22, 90, 500), randomIds(23, 150, 500), randomIds(24, 60, 500)];
        const maxTokens = [40, 25, 33, 18];
        const plain: number[][] = [];
        for (const [i, p] of prompts.entries()) plain.push((await generateText(model, tokenizer, p, { temperature: 0, maxTokens: maxTokens[i], ignoreEos: true })).tokens);
        const alone = await generateText(model, tokenizer, prompts[0]!, { temperature: 0, maxTokens: 40, ignoreEos: true, speculate: SELF });
        assert.deepEqual(alone.tokens, plain[0], `${draftAttention} alone`);
        const s = alone.speculative!;
        assert.ok(s.drafted > 0 && s.accepted > 0, `${draftAttention}: drafts accepted ${JSON.stringify(s)}`);
        // plain, self (γ 4), prompt lookup, self (γ 2): each its own token limit, so they finish at different steps
        const opts = [{}, { speculate: SELF }, { speculate: { draft: 'prompt-lookup', gamma: 3 } }, { speculate: { draft: 'self', gamma: 2 } }]
          .map((o, i) => ({ ...o, maxTokens: maxTokens[i], ignoreEos: true }));
        const out = await together(model, tokenizer, prompts, opts);
        out.forEach((r, i) => assert.deepEqual(r.tokens, plain[i], `${draftAttention}: request ${i} in the batch`));
        assert.ok(out[1]!.speculative!.drafted > 0 && out[3]!.speculative!.drafted > 0);
        assert.equal((model as unknown as { kvPages: { used: number } }).kvPages.used, 0, 'every page returned');
      } finally { model.dispose(); }
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('draft rows: the StreamingLLM draft reads every key up to sinks + W positions and evicts from W + 1 on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-selfspec-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const sinks = 2, W = 16;
    const { model } = await loadModel(path, { threads: 2, contextLength: 128, draftAttention: `streaming:sinks=${sinks},window=${W}`, parallel: 2 });
    const ref = await loadModel(path, { threads: 2, contextLength: 128, attention: `streaming:sinks=${sinks},window=${W}`, parallel: 2 });
    try {
      const ids = randomIds(5, 80, 500);
      /** Largest |draft − dense| logit after the first n tokens (prompt n − 1, then one decode row). */
      const gap = (n: number) => {
        const c = model.createCache();
        model.forward(ids.slice(0, n - 1), c);
        const draft = model.forwardBatch([{ cache: c, tokens: [ids[n - 1]!], draft: true }])[0]!.slice();
        assert.equal(c.length, n, 'a draft row is stored at its position');
        c.truncate(n - 1);
        const dense = model.forward([ids[n - 1]!], c, { phase: 'decode' });
        c.release();
        let g = 0;
        for (let v = 0; v < dense.length; v++) g = Math.max(g, Math.abs(dense[v]! - draft[v]!));
        return { g, draft };
      };
      for (const n of [sinks + W - 1, sinks + W]) assert.ok(gap(n).g < 1e-4, `${n} positions: every key is in sinks + window (gap ${gap(n).g})`);
      assert.ok(gap(sinks + W + 1).g > 1e-3, `${sinks + W + 1} positions: one key evicted`);
      // far past the window the draft row equals a model whose attention *is* streaming (same rule, same positions)
      const far = gap(70).draft, c = ref.model.createCache();
      ref.model.forward(ids.slice(0, 69), c);
      const want = ref.model.forward([ids[69]!], c, { phase: 'decode' });
      c.release();
      for (let v = 0; v < want.length; v++) assert.ok(Math.abs(far[v]! - want[v]!) < 1e-5, `70 positions, logit ${v}`);
    } finally { model.dispose(); ref.model.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("the draft attention's per-sequence state is planned into the arenas, once per sequence slot", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-selfspec-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const plain = describeModel(path), drafted = describeModel(path, { draftAttention: 'streaming:window=16' });
    const extra = (parallel: number) => drafted.memoryNeeded(256, 1024, parallel) - plain.memoryNeeded(256, 1024, parallel);
    assert.ok(extra(1) > 0, `a draft attention costs arena bytes (${extra(1)})`);
    assert.equal(extra(8), 8 * extra(1), 'per sequence slot');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('sampling with a sparse draft is lossless: q from the draft attention, 30,000 draws; a wrong residual fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-selfspec-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const { model, tokenizer } = await loadModel(path, { threads: 2, contextLength: 128, draftAttention: 'streaming:sinks=1,window=32', parallel: 2 });
    try {
      // random weights give sharp logits: a high temperature makes p and q overlap in part
      const o: SamplingOptions = { temperature: 4, topK: 8 };
      const prompt = randomIds(9, 60, 500), V = model.vocabSize;
      const c = model.createCache();
      model.forward(prompt.slice(0, -1), c);
      const next = prompt.at(-1)!;
      const draftRow = model.forwardBatch([{ cache: c, tokens: [next], draft: true }])[0]!.slice();
      c.truncate(prompt.length - 1);
      const seq = new SequenceState(tokenizer, prompt, { ...o, seed: 7, maxTokens: 10 }, V);
      seq.fitContext(0, 128);
      const q = seq.distribution(draftRow.slice());
      // the target rows after `next` and after `next, d` for every d the draft can propose
      const rows = new Map<number, Float32Array>();
      for (let d = 0; d < V; d++) {
        if (q[d]! === 0) continue;
        rows.set(d, model.forward([next, d], c, { logits: 'all' }).slice());
        c.truncate(prompt.length - 1);
      }
      c.release();
      const p = seq.distribution(rows.values().next().value!.slice(0, V));
      let overlap = 0;
      for (let v = 0; v < V; v++) overlap += Math.min(p[v]!, q[v]!);
      assert.ok(overlap > 0.05 && overlap < 0.95, `draft and target differ but overlap (${overlap.toFixed(3)})`);
      const N = 30_000;
      const run = (wrong: boolean) => {
        const first = new Array<number>(V).fill(0);
        for (let t = 0; t < N; t++) {
          const d = draw(q, 1, seq.sampler.uniform());
          let token: number;
          if (!wrong) token = verifyDraft(seq, rows.get(d)!.slice(), V, [d], [q]).tokens[0]!;
          else token = seq.sampler.uniform() < Math.min(1, p[d]! / q[d]!) ? d : draw(p, 1, seq.sampler.uniform());
          first[token]++;
        }
        return chiSquare(first, p, N);
      };
      const good = run(false);
      assert.ok(good.df >= 3 && good.stat < chi2Critical(good.df), `chi2 ${good.stat.toFixed(1)} ≥ ${chi2Critical(good.df).toFixed(1)} (df ${good.df})`);
      const bad = run(true);
      assert.ok(bad.stat > chi2Critical(bad.df), `the wrong residual passed: chi2 ${bad.stat.toFixed(1)}`);
    } finally { model.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
