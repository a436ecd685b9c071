// A prompt that cannot fit the context is refused before it costs time or memory (docs/RELIABILITY.md):
// a text prompt longer than context × the longest token's characters is refused before it is
// tokenized, and a chat template stops rendering once its text is that long (a template that doubles
// a string 23 times would otherwise build hundreds of MB). One row per hostile input: what is asked,
// the error and message it must give, and the bound it holds (the tokenizer never called; the
// largest string built at most twice the cap).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tessera } from '../../src/api/index.js';
import { ApiError } from '../../src/api/validate.js';
import { ContextOverflowError, PromptTooLongError } from '../../src/generation/generate.js';
import { ByteTokenizer, FakeModel } from '../generation/fake-model.js';

const CONTEXT = 512;
const LONGEST = '</s>'.length; // ByteTokenizer's longest token text
const CAP = CONTEXT * LONGEST;

/** A ByteTokenizer that counts the characters it was asked to encode. */
class CountingTokenizer extends ByteTokenizer {
  encodedChars = 0;
  override encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    this.encodedChars += text.length;
    return super.encode(text, opts);
  }
}

const DOUBLING = "{% set ns = namespace(s='0123456789abcdef') %}{% for i in range(23) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}";
const ECHO = "{% for m in messages %}{{ m['content'] }}{% endfor %}";

const ROWS: [what: string, template: string, run: (t: Tessera) => Promise<unknown>, check: (e: unknown) => void][] = [
  ['a 30 MB text prompt', ECHO, (t) => t.complete('x'.repeat(30_000_000), { maxTokens: 1 }), (e) => {
    assert.ok(e instanceof PromptTooLongError && e instanceof ContextOverflowError);
    assert.match(e.message, /the prompt of 30000000 characters is at least 7500000 tokens \(no token of this vocabulary covers more than 4 characters\), more than the context length of 512 tokens/);
  }],
  ['a chat template that doubles a 16-character string 23 times', DOUBLING, (t) => t.applyChatTemplate([{ role: 'user', content: 'hi' }]), (e) => {
    assert.ok(e instanceof PromptTooLongError, String(e));
    assert.ok(e.promptChars > CAP && e.promptChars <= 2 * CAP, `built a string of ${e.promptChars} characters`);
    assert.match(e.message, /more than the context length of 512 tokens/);
  }],
  ['a chat completion whose messages hold 30 MB', ECHO, (t) => t.chat.completions.create({ messages: [{ role: 'user', content: 'y'.repeat(30_000_000) }] }), (e) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.code, 'context_length_exceeded');
    assert.equal(e.param, 'messages');
  }],
];

test('prompts that cannot fit the context are refused before tokenizing, with the context named', async () => {
  for (const [what, template, run, check] of ROWS) {
    const tokenizer = new CountingTokenizer();
    const t = new Tessera({ model: new FakeModel({ contextLength: CONTEXT }), tokenizer }, { chatTemplate: template });
    await assert.rejects(run(t), (e: unknown) => { check(e); return true; }, what);
    assert.equal(tokenizer.encodedChars, 0, `${what}: the tokenizer was given ${tokenizer.encodedChars} characters`);
  }
});

test('control: a prompt of exactly context × longest-token characters is tokenized and checked by its tokens', async () => {
  const tokenizer = new CountingTokenizer();
  const t = new Tessera({ model: new FakeModel({ contextLength: CONTEXT }), tokenizer });
  // CAP one-byte characters are CAP tokens: over the context, found by counting tokens, not characters.
  await assert.rejects(t.complete('x'.repeat(CAP), { maxTokens: 1 }), (e: unknown) => e instanceof ContextOverflowError && !(e instanceof PromptTooLongError));
  assert.equal(tokenizer.encodedChars, CAP);
  const ok = await t.complete('x'.repeat(100), { maxTokens: 2, temperature: 0 });
  assert.equal(ok.promptTokens, 101);
});
