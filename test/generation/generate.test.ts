import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContextOverflowError, evaluateLogits, generate, generateText } from '../../src/generation/generate.js';
import { argmax } from '../../src/generation/sampler.js';
import { BOS, ByteTokenizer, EOS, FakeModel, bytesOf } from './fake-model.js';

const tok = new ByteTokenizer();

async function collect(it: AsyncGenerator<{ text: string; tokens: number[] }, unknown>) {
  const chunks: { text: string; tokens: number[] }[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) return { chunks, result: r.value as Awaited<ReturnType<typeof generateText>> };
    chunks.push(r.value);
  }
}

test('greedy generation equals a hand-rolled greedy loop over the model definition', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const prompt = tok.encode('Once upon');
  const r = await generateText(model, tok, prompt, { temperature: 0, maxTokens: 12 });
  const ctx = [...prompt];
  const want: number[] = [];
  for (let i = 0; i < 12; i++) { const t = argmax(model.logitsAt(ctx, ctx.length)); want.push(t); ctx.push(t); }
  assert.deepEqual(r.tokens, want);
  assert.equal(r.finishReason, 'length');
  assert.equal(r.promptTokens, prompt.length);
  // the last sampled token is never fed: 1 prefill call + 11 decode calls
  assert.equal(model.calls.length, 1 + 11);
});

test('chunked prefill gives the same tokens as one-shot and uses chunks of prefillChunk', async () => {
  const prompt = tok.encode('a longer prompt that spans several prefill chunks of seven');
  const oneShot = new FakeModel({ suppress: [EOS] });
  const chunked = new FakeModel({ suppress: [EOS] });
  const opts = { temperature: 0.9, seed: 5, maxTokens: 20 };
  const a = await generateText(oneShot, tok, prompt, { ...opts, prefillChunk: 1000 });
  const b = await generateText(chunked, tok, prompt, { ...opts, prefillChunk: 7 });
  assert.deepEqual(b.tokens, a.tokens);
  const prefillCalls = chunked.calls.filter((c) => c.tokens.length > 1 || c.start < prompt.length);
  assert.equal(prefillCalls.length, Math.ceil(prompt.length / 7));
  assert.deepEqual(prefillCalls.flatMap((c) => c.tokens), prompt);
  assert.ok(prefillCalls.every((c, i) => c.start === i * 7 && c.tokens.length <= 7));
});

test('eos ends generation; the eos id is not in tokens or text', async () => {
  const prompt = tok.encode('Q');
  const model = new FakeModel({ script: [...bytesOf('Hi!'), EOS], promptLength: prompt.length });
  const r = await generateText(model, tok, prompt, { temperature: 0, maxTokens: 50 });
  assert.equal(r.finishReason, 'eos');
  assert.equal(r.text, 'Hi!');
  assert.deepEqual(r.tokens, bytesOf('Hi!'));
  const ignored = await generateText(new FakeModel({ script: [...bytesOf('Hi!'), EOS], promptLength: prompt.length }), tok, prompt, { temperature: 0, maxTokens: 5, ignoreEos: true });
  assert.equal(ignored.finishReason, 'length');
  assert.equal(ignored.tokens[3], EOS);
});

test('stop strings across tokens end generation; streamed text == result text == decode up to the stop', async () => {
  const prompt = tok.encode('Q');
  const said = 'Answer: 42\nUser: more';
  const model = new FakeModel({ script: bytesOf(said), promptLength: prompt.length });
  const { chunks, result } = await collect(generate(model, tok, prompt, { temperature: 0, maxTokens: 100, stop: ['\nUser:'] }));
  assert.equal(result.finishReason, 'stop');
  assert.equal(result.text, 'Answer: 42');
  assert.equal(chunks.map((c) => c.text).join(''), result.text);
  assert.deepEqual(chunks.flatMap((c) => c.tokens), result.tokens);
  assert.deepEqual(result.tokens, bytesOf('Answer: 42\nUser:'));
});

test('streamed chunks concatenate to the non-streamed text, multi-byte characters included', async () => {
  const prompt = tok.encode('Q');
  const said = 'naïve café 😀 ok';
  const mk = () => new FakeModel({ script: bytesOf(said), promptLength: prompt.length });
  const streamed = await collect(generate(mk(), tok, prompt, { temperature: 0, maxTokens: bytesOf(said).length }));
  const whole = await generateText(mk(), tok, prompt, { temperature: 0, maxTokens: bytesOf(said).length });
  assert.equal(streamed.chunks.map((c) => c.text).join(''), whole.text);
  assert.equal(whole.text, said);
  assert.ok(streamed.chunks.every((c) => !c.text.includes('\uFFFD')));
  // random bytes (mostly invalid UTF-8): streaming and the result still agree, and a sampled run
  // streamed equals the same seed run without streaming
  const m2 = () => new FakeModel({ suppress: [EOS, BOS] });
  const s2 = await collect(generate(m2(), tok, prompt, { seed: 9, maxTokens: 40 }));
  const w2 = await generateText(m2(), tok, prompt, { seed: 9, maxTokens: 40 });
  assert.equal(s2.chunks.map((c) => c.text).join(''), w2.text);
  assert.deepEqual(s2.result.tokens, w2.tokens);
});

test('max tokens stops at exactly maxTokens; repeated runs with one seed agree', async () => {
  const prompt = tok.encode('x');
  const a = await generateText(new FakeModel({ suppress: [EOS] }), tok, prompt, { seed: 77, maxTokens: 9, topK: 20 });
  const b = await generateText(new FakeModel({ suppress: [EOS] }), tok, prompt, { seed: 77, maxTokens: 9, topK: 20 });
  assert.equal(a.tokens.length, 9);
  assert.deepEqual(a.tokens, b.tokens);
  assert.equal(a.seed, 77);
});

test('abort mid-decode ends with finishReason abort (timer-driven signal fires; no hang)', async () => {
  const model = new FakeModel({ delayMs: 2, suppress: [EOS], contextLength: 20_000 });
  const r = await generateText(model, tok, tok.encode('go'), { maxTokens: 10_000, signal: AbortSignal.timeout(30), seed: 1 });
  assert.equal(r.finishReason, 'abort');
  assert.ok(r.tokens.length > 0 && r.tokens.length < 10_000);
});

test('abort during prefill stops between chunks', async () => {
  const model = new FakeModel({ delayMs: 5, contextLength: 4096 });
  const prompt = Array.from({ length: 2000 }, (_, i) => i % 256);
  const ac = new AbortController();
  let progressCalls = 0;
  const r = await generateText(model, tok, prompt, {
    maxTokens: 5, prefillChunk: 16, signal: ac.signal,
    onPrefillProgress: (done) => { progressCalls++; if (done >= 64) ac.abort(); },
  });
  assert.equal(r.finishReason, 'abort');
  assert.equal(r.tokens.length, 0);
  assert.equal(progressCalls, 4);
  assert.equal(model.calls.length, 4); // 4 chunks of 16, then the abort was seen
  // already aborted: nothing is run at all
  const m2 = new FakeModel();
  const r2 = await generateText(m2, tok, 'x', { signal: AbortSignal.abort() });
  assert.equal(r2.finishReason, 'abort');
  assert.equal(m2.calls.length, 0);
});

test('breaking out of the stream stops generation', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  let n = 0;
  for await (const _ of generate(model, tok, 'hi', { maxTokens: 100, seed: 1 })) { void _; if (++n === 3) break; }
  assert.equal(model.calls.length, 1 + 2);
});

test('context overflow names both numbers; truncate: start keeps BOS and the newest tokens', async () => {
  const model = new FakeModel({ contextLength: 32, suppress: [EOS] });
  const prompt = tok.encode('x'.repeat(25)); // 26 tokens with BOS
  await assert.rejects(generateText(model, tok, prompt, { maxTokens: 10 }), (e: Error) =>
    e instanceof ContextOverflowError && /26 tokens/.test(e.message) && /\(10\)/.test(e.message) && /32/.test(e.message));
  const r = await generateText(model, tok, [BOS, ...bytesOf('abcdefghijklmnopqrstuvwxyz0123')], { maxTokens: 10, truncate: 'start', temperature: 0 });
  assert.equal(r.promptTokens, 22);
  assert.deepEqual(model.calls.at(-r.tokens.length)!.tokens.slice(0, 2), [BOS, bytesOf('j')[0]]);
  // default maxTokens = the rest of the context
  const full = await generateText(new FakeModel({ contextLength: 32, suppress: [EOS] }), tok, prompt, { temperature: 0 });
  assert.equal(full.tokens.length, 32 - 26);
});

test('bad prompts and options are refused with clear errors', async () => {
  const model = new FakeModel();
  await assert.rejects(generateText(model, tok, [], {}), /prompt is empty/);
  await assert.rejects(generateText(model, tok, [1, 9999], {}), /prompt\[1\] = 9999.*\[0, 257\]/);
  await assert.rejects(generateText(model, tok, 'x', { maxTokens: 0 }), /maxTokens = 0/);
  await assert.rejects(generateText(model, tok, 'x', { prefillChunk: 0 }), /prefillChunk/);
  await assert.rejects(generateText(model, tok, 'x', { temperature: -1 }), /temperature/);
});

test('a cache passed in is continued: the prompt is appended after what it holds', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const cache = model.createCache();
  const first = tok.encode('ab');
  await generateText(model, tok, first, { temperature: 0, maxTokens: 3, cache });
  assert.equal(cache.length, first.length + 2);
  const r = await generateText(model, tok, bytesOf('c'), { temperature: 0, maxTokens: 1, cache });
  const ctx = [...cache.tokens.slice(0, first.length + 2), bytesOf('c')[0]];
  assert.equal(r.tokens[0], argmax(model.logitsAt(ctx, ctx.length)));
});

test('evaluateLogits returns (n, V) rows equal to the per-position logits', () => {
  const model = new FakeModel();
  const tokens = tok.encode('hello there');
  const L = evaluateLogits(model, tokens, { chunk: 4 });
  assert.equal(L.length, tokens.length * model.vocabSize);
  for (let i = 0; i < tokens.length; i++) {
    assert.deepEqual(L.subarray(i * model.vocabSize, (i + 1) * model.vocabSize), model.logitsAt(tokens, i + 1));
  }
});

test('ids past the tokenizer vocabulary (padded embeddings) are never sampled', async () => {
  // 400 logits but a 258-token tokenizer: the 142 padding ids must be masked, whatever their scores.
  const model = new FakeModel({ vocabSize: 400, suppress: [EOS] });
  for (const temperature of [0, 1.5]) {
    const r = await generateText(model, tok, 'pad', { temperature, maxTokens: 200, seed: 3 });
    assert.equal(r.tokens.length, 200);
    assert.ok(r.tokens.every((t) => t < tok.vocabSize), `sampled ${r.tokens.find((t) => t >= tok.vocabSize)}`);
  }
  // control: the unmasked model does rank padding ids first sometimes
  const ctx = tok.encode('pad');
  let padWins = 0;
  for (let i = 0; i < 50; i++) { if (argmax(model.logitsAt([...ctx, i], ctx.length + 1)) >= tok.vocabSize) padWins++; }
  assert.ok(padWins > 0, 'the test model would pick padding ids without the mask');
});
