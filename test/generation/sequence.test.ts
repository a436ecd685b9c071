// SequenceState: a sequence's end conditions, streamed text, context fit and timing marks, without a
// model. Multi-token accepts (what speculative decoding does) must end exactly where one-by-one
// accepts would, and say how many of the run they consumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContextOverflowError, SequenceState, type GenerateOptions, type GenerationChunk } from '../../src/generation/sequence.js';
import { BOS, ByteTokenizer, EOS, bytesOf } from './fake-model.js';

const tok = new ByteTokenizer();

function placed(opts: GenerateOptions = {}, prompt: readonly number[] = [BOS, ...bytesOf('Q')]): SequenceState {
  const seq = new SequenceState(tok, prompt, opts, tok.vocabSize);
  seq.fitContext(0, 512);
  return seq;
}

test('acceptMany: a stop string completed inside the run ends it there, text cut before the stop', () => {
  const seq = placed({ stop: ['END'], maxTokens: 50 });
  const run = bytesOf('abENDxyz');
  const a = seq.acceptMany(run);
  assert.equal(a.done, 'stop');
  assert.equal(a.consumed, 5); // a b E N D: the D completed the stop string
  assert.deepEqual(a.chunk, { text: 'ab', tokens: bytesOf('abEND') });
  const { chunk, result } = seq.finish(a.done!);
  assert.equal(chunk, undefined);
  assert.equal(result.text, 'ab');
  assert.equal(result.finishReason, 'stop');
  assert.deepEqual(result.tokens, bytesOf('abEND'));
});

test('acceptMany: a stop string split across two runs', () => {
  const seq = placed({ stop: ['END'] });
  const first = seq.acceptMany(bytesOf('xE'));
  assert.deepEqual(first, { chunk: { text: 'x', tokens: bytesOf('xE') }, consumed: 2 });
  const second = seq.acceptMany(bytesOf('NDzz'));
  assert.equal(second.done, 'stop');
  assert.equal(second.consumed, 2);
  assert.equal(second.chunk.text, '');
});

test('acceptMany: eos inside the run ends it; the eos id is consumed but not kept; held text is flushed by finish', () => {
  const seq = placed({ stop: ['END'] });
  const a = seq.acceptMany([...bytesOf('hiEN'), EOS, ...bytesOf('zz')]);
  assert.equal(a.done, 'eos');
  assert.equal(a.consumed, 5);
  assert.deepEqual(a.chunk, { text: 'hi', tokens: bytesOf('hiEN') }); // 'EN' may start 'END': held
  const { chunk, result } = seq.finish('eos');
  assert.deepEqual(chunk, { text: 'EN', tokens: [] });
  assert.equal(result.text, 'hiEN');
  assert.equal(result.finishReason, 'eos');
  assert.deepEqual(result.tokens, bytesOf('hiEN'));
});

test('acceptMany: the token limit reached inside the run ends it at maxTokens', () => {
  const seq = placed({ maxTokens: 3 });
  const a = seq.acceptMany(bytesOf('abcdef'));
  assert.equal(a.done, 'length');
  assert.equal(a.consumed, 3);
  assert.deepEqual(a.chunk.tokens, bytesOf('abc'));
  assert.equal(seq.finish('length').result.finishReason, 'length');
  // Limit counted over earlier accepts too: 2 accepted one by one, then a run of 4 stops after 1.
  const later = placed({ maxTokens: 3 });
  later.accept(97); later.accept(98);
  assert.deepEqual({ done: later.acceptMany(bytesOf('cdef')).done, n: later.tokens.length }, { done: 'length', n: 3 });
});

test('acceptMany gives the same chunks text, tokens and result as one-by-one accept', () => {
  // Multi-byte characters split over runs, stop-string prefixes that are ruled out later, an end by stop.
  const said = [...bytesOf('naïve café 😀 ok, STO, STOP here')];
  const opts: GenerateOptions = { stop: ['STOP', 'é 😀 x'], seed: 3 };
  const one = placed(opts), many = placed(opts);
  const oneChunks: GenerationChunk[] = [];
  let oneDone;
  for (const t of said) {
    const a = one.accept(t);
    oneChunks.push(a.chunk);
    if (a.done) { oneDone = a.done; break; }
  }
  const manyChunks: GenerationChunk[] = [];
  let manyDone, at = 0;
  for (const size of [1, 3, 5, 2, 7, 4, 8, 6, 9, 100]) {
    const a = many.acceptMany(said.slice(at, at + size));
    manyChunks.push(a.chunk);
    at += a.consumed;
    if (a.done) { manyDone = a.done; break; }
  }
  assert.equal(oneDone, 'stop');
  assert.equal(manyDone, 'stop');
  assert.equal(at, one.tokens.length);
  assert.equal(manyChunks.map((c) => c.text).join(''), oneChunks.map((c) => c.text).join(''));
  assert.equal(one.text, 'naïve café 😀 ok, STO, ');
  const a = one.finish('stop').result, b = many.finish('stop').result;
  assert.deepEqual({ ...b, timings: undefined }, { ...a, timings: undefined });
});

test('timing marks are monotone: prefill start ≤ end ≤ first token ≤ each next token ≤ finish', () => {
  const seq = placed({ maxTokens: 20 });
  seq.startPrefill();
  seq.endPrefill();
  for (let i = 0; i < 5; i++) seq.accept(97 + i);
  seq.acceptMany(bytesOf('xyz'));
  const { result } = seq.finish('abort');
  const m = seq.marks;
  assert.equal(m.tokenTimes.length, seq.tokens.length);
  assert.equal(m.firstToken, m.tokenTimes[0]);
  const order = [m.prefillStart, m.prefillEnd, ...m.tokenTimes, performance.now()];
  for (let i = 1; i < order.length; i++) assert.ok(order[i - 1]! <= order[i]!, `mark ${i - 1} (${order[i - 1]}) > mark ${i} (${order[i]})`);
  assert.ok(result.timings.prefillMs >= 0 && result.timings.decodeMs >= 0);
  assert.equal(result.timings.prefillMs, m.prefillEnd - m.prefillStart);
});

test('fitContext: overflow throws ContextOverflowError; truncate start keeps BOS and the newest tokens', () => {
  const prompt = [BOS, ...bytesOf('0123456789')];
  const seq = new SequenceState(tok, prompt, { maxTokens: 4 }, tok.vocabSize);
  assert.throws(() => seq.fitContext(2, 14), (e: unknown) => e instanceof ContextOverflowError && e.contextLength === 12 && e.promptTokens === 11);
  const cut = new SequenceState(tok, prompt, { maxTokens: 4, truncate: 'start' }, tok.vocabSize);
  assert.deepEqual(cut.fitContext(2, 14), [BOS, ...bytesOf('3456789')]);
  assert.equal(cut.tokenLimit, 4);
  const room = new SequenceState(tok, prompt, {}, tok.vocabSize);
  room.fitContext(5, 20);
  assert.equal(room.tokenLimit, 20 - 5 - prompt.length);
  assert.throws(() => room.fitContext(0, 20), /already called/);
  assert.throws(() => new SequenceState(tok, prompt, {}, tok.vocabSize).accept(97), /call fitContext\(\) first/);
});

test('bad options and prompts are refused by the constructor with the option named', () => {
  assert.throws(() => new SequenceState(tok, [BOS], { maxTokens: 0 }, tok.vocabSize), /maxTokens = 0 is invalid/);
  assert.throws(() => new SequenceState(tok, [BOS], { prefillChunk: 1.5 }, tok.vocabSize), /prefillChunk = 1.5 is invalid/);
  assert.throws(() => new SequenceState(tok, [BOS], { temperature: -1 }, tok.vocabSize), /temperature = -1 is invalid/);
  assert.throws(() => new SequenceState(tok, [BOS], { stop: [''] }, tok.vocabSize), /stop strings must be non-empty/);
  assert.throws(() => new SequenceState(tok, [BOS, 999], {}, tok.vocabSize), /prompt\[1\] = 999 is not a token id/);
  assert.throws(() => new SequenceState(tok, [], {}, tok.vocabSize), /the prompt is empty/);
  assert.deepEqual(new SequenceState(tok, 'hi', {}, tok.vocabSize).prompt, [BOS, ...bytesOf('hi')]);
});

test('sample and distribution never pick ids past the tokenizer; a draft counts as history for the penalties', () => {
  const V = 300; // the model pads its vocabulary past the tokenizer's 258 ids
  const logits = (): Float32Array => { const x = new Float32Array(V); x[299] = 50; x[97] = 5; x[98] = 4.9; return x; };
  const seq = new SequenceState(tok, [BOS], { temperature: 0, repetitionPenalty: 2 }, V);
  seq.fitContext(0, 64);
  assert.equal(seq.sample(logits()), 97);
  const p = seq.distribution(logits());
  assert.equal(p.length, V);
  assert.equal(p.subarray(tok.vocabSize).reduce((a, b) => a + b, 0), 0);
  // With 97 drafted, the penalty makes 98 the argmax — as it does once 97 is accepted.
  assert.equal(seq.sample(logits(), [97]), 98);
  const drafted = seq.distribution(logits(), [97]);
  seq.accept(97);
  assert.deepEqual(seq.distribution(logits()), drafted);
  assert.equal(seq.sample(logits()), 98);
  seq.finish('abort');
  assert.throws(() => seq.accept(98), /the sequence has finished/);
});
