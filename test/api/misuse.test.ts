// API options that used to be accepted and ignored, or misread: each row is a call a careless caller
// makes and the error it must now raise (naming the argument), or the behaviour it must now have.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tessera } from '../../src/api/index.js';
import { ApiError } from '../../src/api/validate.js';
import { DEFAULT_CHATML_TEMPLATE } from '../../src/tokenizer/chat-template.js';
import { ByteTokenizer, EOS, FakeModel } from '../generation/fake-model.js';

const tok = new ByteTokenizer();
const bytes = (s: string) => [...Buffer.from(s)];

test('wrong-typed or unknown options are refused, naming the argument', async () => {
  const t = new Tessera({ model: new FakeModel({ suppress: [EOS] }), tokenizer: tok });
  const rows: [string, () => Promise<unknown>, RegExp, ErrorConstructor][] = [
    ['logits(5)', () => t.logits(5 as unknown as number[]), /tokens must be an array of token ids, got number 5/, TypeError],
    ['logits("abc")', () => t.logits('abc' as unknown as number[]), /tokens must be an array of token ids, got string abc/, TypeError],
    ['logits(null)', () => t.logits(null as unknown as number[]), /tokens must be an array of token ids, got null/, TypeError],
    ['complete(5)', () => t.complete(5 as unknown as number[]), /prompt must be an array of token ids, got number 5/, TypeError],
    ["truncate: 'middle'", () => t.complete('hello', { maxTokens: 2, truncate: 'middle' as 'start' }), /truncate = "middle" is invalid: expected 'error' \(the default\) or 'start'/, RangeError],
    ["truncate: 'middle' on an overlong prompt", () => t.complete('x'.repeat(600), { maxTokens: 2, truncate: 'middle' as 'start' }), /truncate = "middle" is invalid/, RangeError],
    ['signal: {}', () => t.complete('hello', { maxTokens: 2, signal: {} as AbortSignal }), /signal must be an AbortSignal/, TypeError],
    ['stop: 5', () => t.complete('hello', { maxTokens: 2, stop: 5 as unknown as string }), /stop must be a string or an array of strings/, TypeError],
  ];
  for (const [what, call, re, type] of rows) {
    await assert.rejects(call(), (e: Error) => { assert.ok(e instanceof type, `${what}: ${e.name}`); assert.match(e.message, re, what); return true; }, what);
  }
  // the instance is still usable after every refusal
  assert.equal((await t.complete('hello', { maxTokens: 2, temperature: 0 })).tokens.length, 2);
});

test("stop: 'ab' (a string) is one stop string, not the stop strings 'a' and 'b'", async () => {
  const prompt = [256, ...bytes('Q:')];
  const script = bytes('xaybab!');
  const run = (stop: string | string[]) => new Tessera({ model: new FakeModel({ script, promptLength: prompt.length }), tokenizer: tok })
    .complete(prompt, { temperature: 0, maxTokens: script.length, stop });
  const asString = await run('ab');
  assert.equal(asString.text, 'xayb');
  assert.equal(asString.finishReason, 'stop');
  const asList = await run(['ab']);
  assert.deepEqual([asList.text, asList.tokens], [asString.text, asString.tokens]);
  assert.equal((await run(['a', 'b'])).text, 'x'); // what a split string used to do
});

test('a repetition penalty that overflows a logit is named; the chat API refuses such a penalty up front (400 naming the field)', async () => {
  const prompt = bytes('aaaa'); // as the chat prompt below tokenizes (no BOS)
  const model = new FakeModel({ script: bytes('a'), promptLength: prompt.length });
  const t = new Tessera({ model, tokenizer: tok }, { renderChat: () => 'aaaa' });
  await assert.rejects(t.complete(prompt, { maxTokens: 2, repetitionPenalty: 1e-308 }),
    /sampling option repetitionPenalty = 1e-308 turns the logit 20 of token 97 into Infinity: use a penalty near 1/);
  await assert.rejects(t.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, repetition_penalty: 1e-308 }),
    (e: unknown) => e instanceof ApiError && e.status === 400 && e.param === 'repetition_penalty' && /a number from 0\.01 to 100/.test(e.message));
});

test('100,000 chat messages: a 400 that says the conversation is too long (the request limit on messages), not a template "runaway loop"', async () => {
  const t = new Tessera({ model: new FakeModel(), tokenizer: tok }, { chatTemplate: DEFAULT_CHATML_TEMPLATE });
  const messages = Array.from({ length: 100_000 }, (_, i) => ({ role: i % 2 ? 'assistant' as const : 'user' as const, content: 'hi' }));
  await assert.rejects(t.chat.completions.create({ messages, max_tokens: 1 }), (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, 'messages');
    assert.match(e.message, /expected at most 4096 messages, but got 100000\./);
    return true;
  });
  // a template that raises on these messages is the request's fault too
  const strict = new Tessera({ model: new FakeModel(), tokenizer: tok }, { chatTemplate: "{{ raise_exception('Conversation roles must alternate') }}" });
  await assert.rejects(strict.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof ApiError && e.status === 400 && /roles must alternate/.test(e.message));
});
