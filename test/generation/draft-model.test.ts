// A separate draft model is lossless too: greedy output token-identical to plain greedy (runs
// accepted, rejected at the first draft, eos / stop / token limit inside a run; alone and in a batch
// mixed with plain and prompt-lookup requests), draft caches freed at the end, a draft with another
// vocabulary refused by name, and sampled output following the target's processed distribution when
// the draft's token is drawn from the draft's processed distribution q (chi-square over 30,000 draws;
// verification given the draft's raw softmax instead of the processed q — the classic bug — fails it).
// A draft out of KV pages or sequence slots leaves output unchanged and fails nothing; any other
// drafter error fails the request.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateText } from '../../src/generation/generate.js';
import { SequenceState } from '../../src/generation/sequence.js';
import { processDistribution, type SamplingOptions } from '../../src/generation/sampler.js';
import { verifyDraft } from '../../src/generation/speculative.js';
import { DraftModel, drawDraftToken } from '../../src/generation/draft-model.js';
import { loadModel } from '../../src/models/load.js';
import { OutOfKVMemoryError } from '../../src/attention/kv-pages.js';
import type { LanguageModel } from '../../src/models/types.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';
import { chi2Critical, chiSquare } from './chi-square.js';

const tok = new ByteTokenizer();

/** A fake model whose greedy continuation of `prompt` is `reply`, then eos. */
const scripted = (prompt: string, reply: string) => new FakeModel({ script: [...bytesOf(reply), EOS], promptLength: tok.encode(prompt).length });

test('greedy with a draft model == plain greedy: all accepted, rejections (first draft token too), eos / stop / max tokens inside a run', async () => {
  const prompt = 'the cat sat on the mat. the cat sat on the';
  const reply = ' mat. the cat sat on the mat.';
  const cases: [string, SamplingOptions & { maxTokens?: number; stop?: string[] }][] = [
    [reply, {}],                                               // the draft says what the target says: every run accepted, eos at the end
    [' hat. the dog sat in the hat!', {}],                     // the draft diverges at many places, the very first token included
    [reply, { maxTokens: 7 }],                                 // the token limit inside an accepted run
    [reply, { stop: ['cat s'] }],                              // a stop string completed inside a run
  ];
  for (const [draftReply, o] of cases) {
    const opts = { temperature: 0, ...o };
    const what = `draft ${JSON.stringify(draftReply)} ${JSON.stringify(o)}`;
    const plain = await generateText(scripted(prompt, reply), tok, prompt, opts);
    const draftModel = scripted(prompt, draftReply);
    const drafter = new DraftModel(draftModel);
    const spec = await generateText(scripted(prompt, reply), tok, prompt, { ...opts, speculate: { draft: drafter, gamma: 4 } });
    assert.deepEqual(spec.tokens, plain.tokens, what);
    assert.equal(spec.text, plain.text, what);
    assert.equal(spec.finishReason, plain.finishReason, what);
    const s = spec.speculative!;
    assert.ok(s.steps > 0, `${what}: speculation ran`);
    if (draftReply === reply && o.maxTokens === undefined && o.stop === undefined) {
      assert.equal(s.accepted, s.drafted, `${what}: a draft that agrees is always accepted`);
      assert.ok(s.meanAcceptedLength > 4, `${what}: ${JSON.stringify(s)}`);
    }
    if (draftReply !== reply) {
      assert.ok(s.accepted < s.drafted, `${what}: rejections were exercised`);
      assert.ok(s.perPosition[0]! < 1, `${what}: the first draft token was rejected somewhere`);
    }
    assert.equal(drafter.sequences, 0, `${what}: the draft's state was dropped`);
    assert.equal(draftModel.live.size, 0, `${what}: the draft cache was released`);
  }
});

test('adopt: a draft cache started from a prefilled prefix feeds only the rest and drafts what a fresh one drafts; a wrong prefix is cut back', () => {
  const prompt = tok.encode('the cat sat on the mat. the cat sat on the');
  const seqOf = () => {
    const seq = new SequenceState(tok, prompt.slice(-1), { temperature: 0, maxTokens: 16, context: prompt.slice(0, -1) }, 258);
    seq.fitContext(prompt.length - 1, 512);
    return seq;
  };
  const target = new FakeModel();
  const draft = (seeded?: number[]) => {
    const model = new FakeModel(), drafter = new DraftModel(model), seq = seqOf();
    if (seeded) {
      const shared = model.createCache();
      model.forward(seeded, shared);
      drafter.adopt(seq, shared.fork(), seeded);
      shared.release();
    }
    model.calls.length = 0;
    const out = drafter.propose([{ seq, cache: target.createCache(), gamma: 4 }])[0]!;
    const first = model.calls[0]!;
    drafter.forget(seq);
    return { tokens: out.tokens, first, live: model.live.size };
  };
  const fresh = draft();
  assert.equal(fresh.first.start, 0, 'a fresh draft cache feeds the whole context');
  assert.equal(fresh.tokens.length, 4);
  const seeded = draft(prompt.slice(0, 30));
  assert.deepEqual(seeded.tokens, fresh.tokens, 'same drafts from the adopted prefix');
  assert.equal(seeded.first.start, 30, 'only the context past the adopted prefix is fed');
  assert.deepEqual(seeded.first.tokens, prompt.slice(30));
  assert.equal(seeded.live, 0, 'forget() released the adopted cache');
  const wrong = [...prompt.slice(0, 30)];
  wrong[10] = wrong[10]! ^ 1;
  const cut = draft(wrong);
  assert.deepEqual(cut.tokens, fresh.tokens, 'a prefix that differs from the context still drafts right');
  assert.equal(cut.first.start, 10, 'cut back to the common prefix, then refed');
  const model = new FakeModel(), c = model.createCache();
  model.forward(prompt.slice(0, 5), c);
  assert.throws(() => new DraftModel(model).adopt(seqOf(), c, prompt.slice(0, 6)), /cache holds 5 positions but 6 tokens/);
});

test('a draft model whose vocabulary differs is refused, naming both sizes', async () => {
  const target = new FakeModel();
  const drafter = new DraftModel(new FakeModel({ vocabSize: 300 }));
  await assert.rejects(generateText(target, tok, 'hi', { temperature: 0, maxTokens: 3, speculate: { draft: drafter } }),
    /draft model has a vocabulary of 300 tokens but the model has 258/);
});

test('greedy with a draft model == plain greedy on real models, alone and in a batch of 4 with plain and prompt-lookup requests', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-draft-'));
  const models: LanguageModel[] = [];
  try {
    const targetPath = writeTestCheckpoint(join(dir, 't'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const otherPath = writeTestCheckpoint(join(dir, 'd'), 'smollm2-tiny', { formats: ['hf'] }).hfDir!;
    const { model, tokenizer } = await loadModel(targetPath, { threads: 2, contextLength: 256 });
    models.push(model);
    // the target itself with a short attention window: agrees while the window covers what matters, not always
    const windowed = (await loadModel(targetPath, { threads: 2, contextLength: 256, attention: 'streaming:sinks=4,window=16' })).model;
    const other = (await loadModel(otherPath, { threads: 2, contextLength: 256 })).model;   // random: mostly rejected
    models.push(windowed, other);
    const base = randomIds(11, 12, 500);
    const prompts = [[...base, ...base, ...base], randomIds(12, 40, 500), [...base, ...base], randomIds(13, 70, 500)];
    const plain: number[][] = [];
    for (const p of prompts) plain.push((await generateText(model, tokenizer, p, { temperature: 0, maxTokens: 40 })).tokens);

    const near = new DraftModel(windowed), far = new DraftModel(other);
    for (const [name, d] of [['windowed', near], ['other', far]] as const) {
      const alone = await generateText(model, tokenizer, prompts[3]!, { temperature: 0, maxTokens: 40, speculate: { draft: d, gamma: 5 } });
      assert.deepEqual(alone.tokens, plain[3], `${name} draft alone`);
      assert.ok(alone.speculative!.drafted > 0, `${name} drafted`);
    }
    const together = await Promise.all(prompts.map((p, i) => generateText(model, tokenizer, p, {
      temperature: 0, maxTokens: 40 - 7 * i,                              // rows finish at different steps
      speculate: i === 0 ? { draft: near, gamma: 4 } : i === 1 ? undefined : i === 2 ? { draft: 'prompt-lookup' } : { draft: far, gamma: 3 },
    })));
    together.forEach((r, i) => assert.deepEqual(r.tokens, plain[i]!.slice(0, 40 - 7 * i), `request ${i} in a batch`));
    const nearStats = together[0]!.speculative!;
    assert.ok(nearStats.accepted > 0 && nearStats.accepted < nearStats.drafted, `the windowed draft is partly accepted: ${JSON.stringify(nearStats)}`);
    assert.equal(near.sequences + far.sequences, 0);
    for (const m of models) assert.equal((m as unknown as { kvPages: { used: number } }).kvPages.used, 0, 'every KV page is back');
  } finally {
    for (const m of models) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a draft model out of KV memory or sequence slots: the requests it cannot serve decode without drafts, output unchanged, nothing fails', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-draft-oom-'));
  const models: LanguageModel[] = [];
  try {
    const targetPath = writeTestCheckpoint(join(dir, 't'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const { model, tokenizer } = await loadModel(targetPath, { threads: 2, contextLength: 256, parallel: 4 });
    models.push(model);
    // drafts from the target itself: 3 KV pages of 64 tokens hold one 100-token prompt and its
    // drafts, not two; a draft loaded for one sequence has one slot for the four requests
    const pages = (await loadModel(targetPath, { threads: 2, contextLength: 256, parallel: 4, kvBudget: 192 })).model;
    const slots = (await loadModel(targetPath, { threads: 2, contextLength: 256, parallel: 1 })).model;
    models.push(pages, slots);
    const prompts = [0, 1, 2, 3].map((i) => randomIds(40 + i, 100, 500));
    const plain: number[][] = [];
    for (const p of prompts) plain.push((await generateText(model, tokenizer, p, { temperature: 0, maxTokens: 40 })).tokens);
    for (const [name, draftModel] of [['out of KV pages', pages], ['out of slots', slots]] as const) {
      const drafter = new DraftModel(draftModel);
      const out = await Promise.all(prompts.map((p) => generateText(model, tokenizer, p, { temperature: 0, maxTokens: 40, speculate: { draft: drafter, gamma: 4 } })));
      out.forEach((r, i) => assert.deepEqual(r.tokens, plain[i], `${name}: request ${i}`));
      const drafted = out.map((r) => r.speculative!.drafted);
      // request 0 is admitted first and drafts every step; the others wait for its pages or slot,
      // then draft once it has finished
      assert.ok(drafted.every((n) => n > 0), `${name}: every request drafted once it could: ${drafted}`);
      assert.ok(drafted.slice(1).every((n) => n < drafted[0]!), `${name}: the others waited: ${drafted}`);
      assert.equal(drafter.sequences, 0, `${name}: every draft cache released`);
      assert.equal(draftModel.kvPages!.used, 0, `${name}: the draft's pages are back`);
    }
    assert.equal(model.kvPages!.used, 0);
  } finally {
    for (const m of models) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a draft forward that still runs out of KV memory stops that sequence drafting for good, its draft cache released; output unchanged', async () => {
  const prompt = 'the cat sat on the mat. the cat sat on the';
  const reply = ' mat. the cat sat on the mat.';
  const plain = await generateText(scripted(prompt, reply), tok, prompt, { temperature: 0 });
  const draftModel = scripted(prompt, reply);
  let calls = 0;
  const forward = draftModel.forwardBatch.bind(draftModel);
  draftModel.forwardBatch = (batch) => { if (++calls === 3) throw new OutOfKVMemoryError(4, 64); return forward(batch); };
  const drafter = new DraftModel(draftModel);
  const spec = await generateText(scripted(prompt, reply), tok, prompt, { temperature: 0, speculate: { draft: drafter, gamma: 4 } });
  assert.deepEqual(spec.tokens, plain.tokens);
  assert.equal(calls, 3, 'no draft forward after the failure');
  assert.equal(draftModel.live.size, 0, 'the draft cache was released');
  assert.ok(spec.speculative!.drafted > 0 && spec.speculative!.drafted < spec.tokens.length, `drafted before the failure only: ${JSON.stringify(spec.speculative)}`);
  // any other error is a broken drafter: the request fails with it
  const broken = scripted(prompt, reply);
  broken.forwardBatch = () => { throw new TypeError('draft exploded'); };
  await assert.rejects(generateText(scripted(prompt, reply), tok, prompt, { temperature: 0, speculate: { draft: new DraftModel(broken), gamma: 4 } }), /draft exploded/);
});

const V = 8;
const TARGET = [Float32Array.of(2.0, 1.2, 0.3, -0.5, 1.9, -2, 0.8, 0.1), Float32Array.of(0.5, 2.2, -1, 1.1, 0.2, 1.8, -0.3, 0.9),
  Float32Array.of(-1, 0.4, 1.3, 0.2, 2.5, 0.6, -0.2, 1.0)];
// the draft disagrees with the target: other favourites, and mass on tokens top-k / top-p may cut
const DRAFT = [Float32Array.of(0.1, 2.4, 0.3, 1.5, 0.2, 1.1, -1, 2.0), Float32Array.of(1.5, 0.2, 0.9, -0.4, 2.1, 0.3, 1.2, -1)];
const SETTINGS: SamplingOptions[] = [{ temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, topP: 0.8 }, { temperature: 1, minP: 0.2 }];

/** softmax of raw logits (V): the distribution the draft's logits give before the sampling settings. */
function rawSoftmax(l: Float32Array): Float64Array {
  const m = Math.max(...l), e = Float64Array.from(l, (x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

/** n trials: a 2-token draft drawn from the draft's processed distributions (drawDraftToken, as
 *  DraftModel does), verified against fixed target rows. `rawQ` hands verification the draft's raw
 *  softmax instead (the classic bug: q not the distribution the token was drawn from). */
function trials(o: SamplingOptions, n: number, rawQ = false) {
  const seq = new SequenceState(tok, [1, 2, 3], { ...o, seed: 4242, maxTokens: 10 }, V);
  seq.fitContext(0, 64);
  const rows = new Float32Array(3 * V);
  TARGET.forEach((l, i) => rows.set(l, i * V));
  const first = new Array<number>(V).fill(0), second = new Map<number, number[]>();
  for (let t = 0; t < n; t++) {
    const d1 = drawDraftToken(seq, DRAFT[0]!.slice(), []);
    const d2 = drawDraftToken(seq, DRAFT[1]!.slice(), [d1.token]);
    const { tokens } = verifyDraft(seq, rows.slice(), V, [d1.token, d2.token], rawQ ? [rawSoftmax(DRAFT[0]!), rawSoftmax(DRAFT[1]!)] : [d1.q, d2.q]);
    first[tokens[0]!]++;
    if (tokens.length > 1) {                                  // the second token, given the first
      const c = second.get(tokens[0]!) ?? new Array<number>(V).fill(0);
      c[tokens[1]!]++;
      second.set(tokens[0]!, c);
    }
  }
  return { first, second };
}

const dense = (d: { ids: Int32Array; probs: Float64Array }) => { const x = new Float64Array(V); d.ids.forEach((id, i) => { x[id] = d.probs[i]!; }); return x; };

test('sampling with a draft model is lossless: q from the draft\'s processed distribution (30,000 draws per setting)', () => {
  const N = 30_000, history = [1, 2, 3];
  for (const o of SETTINGS) {
    const P1 = dense(processDistribution(TARGET[0]!, history, o));
    const { first, second } = trials(o, N);
    const c1 = chiSquare(first, P1, N);
    assert.ok(c1.stat < chi2Critical(c1.df), `${JSON.stringify(o)} first token: chi2 ${c1.stat.toFixed(1)} ≥ ${chi2Critical(c1.df).toFixed(1)}`);
    let checked = 0;
    for (const [t1, counts] of second) {
      const n2 = counts.reduce((a, b) => a + b, 0);
      if (n2 < 2000) continue;
      // the second row scores the token after the draft's first; only runs where that draft was accepted reach it
      const c2 = chiSquare(counts, dense(processDistribution(TARGET[1]!, [...history, t1], o)), n2);
      assert.ok(c2.stat < chi2Critical(c2.df), `${JSON.stringify(o)} second token after ${t1}: chi2 ${c2.stat.toFixed(1)} over ${n2}`);
      checked++;
    }
    assert.ok(checked > 0, `${JSON.stringify(o)}: some second tokens were tested`);
  }
});

test('negative control: verifying with the draft\'s raw softmax instead of its processed q fails the same test', () => {
  const o = SETTINGS[1]!, N = 30_000;
  const { first } = trials(o, N, true);
  const c = chiSquare(first, dense(processDistribution(TARGET[0]!, [1, 2, 3], o)), N);
  assert.ok(c.stat > chi2Critical(c.df), `the raw q passed: chi2 ${c.stat.toFixed(1)}`);
});
