// Speculative decoding is lossless: greedy output is token-identical to plain greedy (alone, in a
// batch, with eos / stop strings / the token limit falling inside an accepted run), and sampled
// output has the target's processed distribution (chi-square over 30,000 seeded draws per setting,
// zero-probability tokens never emitted), which a classic wrong acceptance rule fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateText } from '../../src/generation/generate.js';
import { SequenceState } from '../../src/generation/sequence.js';
import { processDistribution, type SamplingOptions } from '../../src/generation/sampler.js';
import { promptLookupDraft, verifyDraft } from '../../src/generation/speculative.js';
import { loadModel } from '../../src/models/load.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomIds } from '../../src/testing/random-model.js';
import { BOS, ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';
import { chi2Critical, chiSquare } from './chi-square.js';

const tok = new ByteTokenizer();
const SPEC = { draft: 'prompt-lookup' as const, gamma: 4 };

test('prompt lookup: the tokens after the most recent earlier match of the longest suffix', () => {
  assert.deepEqual(promptLookupDraft([1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3], 3), [7, 8, 1]);     // 3-gram, most recent
  assert.deepEqual(promptLookupDraft([5, 6, 7, 6], 2), [7, 6]);                                 // 1-gram fallback
  assert.deepEqual(promptLookupDraft([1, 2, 3, 4], 4), []);                                     // nothing repeats
  assert.deepEqual(promptLookupDraft([4, 4], 5), [4]);                                          // stops at the end
});

/** A fake model whose greedy continuation of `prompt` is `reply` (then eos unless told otherwise). */
function scripted(prompt: string, reply: string, eos = true): FakeModel {
  return new FakeModel({ script: [...bytesOf(reply), ...(eos ? [EOS] : [])], promptLength: tok.encode(prompt).length });
}

test('greedy speculation == plain greedy: runs accepted, rejected at the first draft, eos / stop / max tokens inside a run', async () => {
  const prompt = 'the cat sat on the mat. the cat sat on the';
  const cases: [string, SamplingOptions & { maxTokens?: number; stop?: string[] }][] = [
    [' mat. the cat sat on the mat.', {}],                     // copies the prompt: long accepted runs, eos at the end
    [' hat. the cat ran to the bat.', {}],                     // drafts diverge: rejections mid-run and at the first token
    [' mat. the cat sat on the mat.', { maxTokens: 7 }],       // the token limit inside an accepted run
    [' mat. the cat sat on the mat.', { stop: ['cat s'] }],    // a stop string completed inside a run
    [' mat. the dog', { stop: ['zz'] }],                       // eos right after a partly accepted run
  ];
  for (const [reply, o] of cases) {
    const opts = { temperature: 0, ...o };
    const plain = await generateText(scripted(prompt, reply), tok, prompt, opts);
    const spec = await generateText(scripted(prompt, reply), tok, prompt, { ...opts, speculate: SPEC });
    const what = `reply ${JSON.stringify(reply)} ${JSON.stringify(o)}`;
    assert.deepEqual(spec.tokens, plain.tokens, what);
    assert.equal(spec.text, plain.text, what);
    assert.equal(spec.finishReason, plain.finishReason, what);
    assert.ok(spec.speculative && spec.speculative.steps > 0, `${what}: speculation ran`);
  }
  const copy = await generateText(scripted(prompt, ' mat. the cat sat on the mat.'), tok, prompt, { temperature: 0, speculate: SPEC });
  const s = copy.speculative!;
  assert.ok(s.accepted >= 10 && s.meanAcceptedLength > 2, `copying the prompt accepts long runs: ${JSON.stringify(s)}`);
  const diverge = await generateText(scripted(prompt, ' hat. the cat ran to the bat.'), tok, prompt, { temperature: 0, speculate: SPEC });
  assert.ok(diverge.speculative!.accepted < diverge.speculative!.drafted, 'rejections were exercised');
});

test('greedy speculation == plain greedy on a real model, alone and in a batch with plain requests', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-spec-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const { model, tokenizer } = await loadModel(path, { threads: 2, contextLength: 256 });
    try {
      const base = randomIds(11, 12, 500);
      const prompts = [[...base, ...base, ...base], randomIds(12, 30, 500), [...base, ...base]];
      const plain: { tokens: number[] }[] = [];
      for (const p of prompts) plain.push(await generateText(model, tokenizer, p, { temperature: 0, maxTokens: 40 }));
      const alone = await generateText(model, tokenizer, prompts[0]!, { temperature: 0, maxTokens: 40, speculate: SPEC });
      assert.deepEqual(alone.tokens, plain[0]!.tokens);
      const together = await Promise.all(prompts.map((p, i) => generateText(model, tokenizer, p, { temperature: 0, maxTokens: 40, speculate: i === 1 ? undefined : SPEC })));
      together.forEach((r, i) => assert.deepEqual(r.tokens, plain[i]!.tokens, `request ${i} in a batch`));
      assert.ok(together[0]!.speculative!.drafted > 0);
      assert.equal((model as unknown as { kvPages: { used: number } }).kvPages.used, 0);
    } finally { model.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

const V = 8;
const LOGITS = [Float32Array.of(2.0, 1.2, 0.3, -0.5, 1.9, -2, 0.8, 0.1), Float32Array.of(0.5, 2.2, -1, 1.1, 0.2, 1.8, -0.3, 0.9),
  Float32Array.of(-1, 0.4, 1.3, 0.2, 2.5, 0.6, -0.2, 1.0)];
const SETTINGS: SamplingOptions[] = [{ temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, topP: 0.8 }, { temperature: 1, minP: 0.2 }];

/** n trials of a 2-token draft [d1, d2] verified against fixed rows: the first emitted token, and the
 *  second when d1 was accepted. `wrong` swaps in the classic bug (on rejection, sample from p
 *  instead of the residual). */
function trials(o: SamplingOptions, draft: [number, number], n: number, wrong = false) {
  const seq = new SequenceState(tok, [1, 2, 3], { ...o, seed: 12345, maxTokens: 10 }, V);
  seq.fitContext(0, 64);
  const rows = new Float32Array(3 * V);
  LOGITS.forEach((l, i) => rows.set(l, i * V));
  const first = new Array<number>(V).fill(0), second = new Array<number>(V).fill(0);
  for (let t = 0; t < n; t++) {
    let tokens: number[];
    if (!wrong) tokens = verifyDraft(seq, rows.slice(), V, draft).tokens;
    else {
      const p = seq.distribution(rows.slice(0, V));
      tokens = seq.sampler.uniform() < p[draft[0]]! ? [draft[0]] : [seq.sample(rows.slice(0, V))];
    }
    first[tokens[0]!]++;
    if (tokens[0] === draft[0] && tokens.length > 1) second[tokens[1]!]++;
  }
  return { first, second };
}

test('sampling speculation is lossless: first and second tokens follow the processed target distribution (30,000 draws per setting)', () => {
  const N = 30_000;
  const history = [1, 2, 3];
  for (const o of SETTINGS) {
    const p1 = processDistribution(LOGITS[0]!, history, o), p2 = processDistribution(LOGITS[1]!, [...history, 4], o);
    const dense = (d: { ids: Int32Array; probs: Float64Array }) => { const x = new Float64Array(V); d.ids.forEach((id, i) => { x[id] = d.probs[i]!; }); return x; };
    const P1 = dense(p1), P2 = dense(p2);
    const { first, second } = trials(o, [4, 5], N);
    const c1 = chiSquare(first, P1, N);
    assert.ok(c1.stat < chi2Critical(c1.df), `${JSON.stringify(o)} first token: chi2 ${c1.stat.toFixed(1)} ≥ ${chi2Critical(c1.df).toFixed(1)}`);
    const n2 = second.reduce((a, b) => a + b, 0);
    if (n2 > 1000) {
      const c2 = chiSquare(second, P2, n2);
      assert.ok(c2.stat < chi2Critical(c2.df), `${JSON.stringify(o)} second token: chi2 ${c2.stat.toFixed(1)} over ${n2}`);
    }
  }
});

test('negative control: the same test rejects a wrong acceptance rule (rejection resamples from p, not the residual)', () => {
  const o = SETTINGS[0]!, N = 30_000;
  const P = processDistribution(LOGITS[0]!, [1, 2, 3], o);
  const dense = new Float64Array(V);
  P.ids.forEach((id, i) => { dense[id] = P.probs[i]!; });
  const { first } = trials(o, [4, 5], N, true);
  const c = chiSquare(first, dense, N);
  assert.ok(c.stat > chi2Critical(c.df), `the wrong rule passed: chi2 ${c.stat.toFixed(1)}`);
});

test('--speculate specs: draft and gamma parsed, unknown drafts / keys / auto named', async () => {
  const { parseSpeculateSpec } = await import('../../src/generation/speculative.js');
  assert.deepEqual(parseSpeculateSpec('draft=prompt-lookup,gamma=6'), { draft: 'prompt-lookup', gamma: 6 });
  assert.deepEqual(parseSpeculateSpec('prompt-lookup'), { draft: 'prompt-lookup', gamma: 4 });
  assert.throws(() => parseSpeculateSpec('draft=lookahead'), /unknown draft "lookahead".*prompt-lookup/);
  assert.throws(() => parseSpeculateSpec('prompt-lookup,gamma=0'), /gamma must be an integer in \[1, 64\]/);
  assert.throws(() => parseSpeculateSpec('prompt-lookup,depth=2'), /unknown key "depth"/);
  assert.deepEqual(parseSpeculateSpec('auto'), { draft: 'prompt-lookup', gamma: 'auto' });
  assert.deepEqual(parseSpeculateSpec('draft=model:m/d,gamma=auto'), { draft: { model: 'm/d' }, gamma: 'auto' });
  assert.deepEqual(parseSpeculateSpec('draft=model:/x/draft.gguf,gamma=3,attention=streaming:sinks=4,window=64'),
    { draft: { model: '/x/draft.gguf', attention: 'streaming:sinks=4,window=64' }, gamma: 3 });
  assert.throws(() => parseSpeculateSpec('draft=model:'), /needs the draft model's path/);
  assert.throws(() => parseSpeculateSpec('prompt-lookup,attention=dense'), /applies to a draft model/);
  assert.throws(() => parseSpeculateSpec('draft=model:m,attention='), /needs an attention spec/);
});

test('metrics as the field defines them: rate, 1 + accepted / drafts, per-position over all drafts; aggregates from counts', async () => {
  const { SpeculativeMeter, combineSpeculativeStats } = await import('../../src/generation/speculative.js');
  const a = new SpeculativeMeter();
  a.record(4, 2); a.record(4, 4); a.record(2, 0);
  assert.deepEqual(a.stats, { steps: 3, drafted: 10, accepted: 6, rejected: 2, acceptanceRate: 0.6, meanAcceptedLength: 3, perPosition: [2 / 3, 2 / 3, 1 / 3, 1 / 3], acceptedAt: [2, 2, 1, 1] });
  const b = new SpeculativeMeter();
  b.record(1, 1);
  const all = combineSpeculativeStats([a.stats, b.stats]);
  assert.deepEqual(all, { steps: 4, drafted: 11, accepted: 7, rejected: 2, acceptanceRate: 7 / 11, meanAcceptedLength: 1 + 7 / 4, perPosition: [3 / 4, 2 / 4, 1 / 4, 1 / 4], acceptedAt: [3, 2, 1, 1] });
  assert.deepEqual(combineSpeculativeStats([]), { steps: 0, drafted: 0, accepted: 0, rejected: 0, acceptanceRate: 0, meanAcceptedLength: 0, perPosition: [], acceptedAt: [] });
});
