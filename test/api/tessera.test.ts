import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tessera, evaluateLogits, generateText } from '../../src/api/index.js';
import { ByteTokenizer, EOS, FakeModel } from '../generation/fake-model.js';

const tok = new ByteTokenizer();

test('a follow-up prompt sharing a prefix only prefills the new tokens, with identical output', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const t = new Tessera({ model, tokenizer: tok });
  const opts = { maxTokens: 6, seed: 4, repetitionPenalty: 1.3, repetitionWindow: Infinity };
  const first = await t.complete('The first turn. ', opts);
  const second = [...tok.encode('The first turn. '), ...first.tokens, ...tok.encode(' And the second.', { addSpecialTokens: false })];
  model.calls = [];
  const r = await t.complete(second, opts);
  const fed = model.calls[0];
  const shared = tok.encode('The first turn. ').length + first.tokens.length - 1; // last sampled token was never fed
  assert.equal(fed.start, shared);
  assert.equal(r.promptTokens, second.length);
  assert.equal(r.cachedTokens, shared);
  // a fresh model run gives the same tokens (penalties saw the cached prefix as history too)
  const fresh = await generateText(new FakeModel({ suppress: [EOS] }), tok, second, opts);
  assert.deepEqual(r.tokens, fresh.tokens);
  // an unrelated prompt starts over at position 0 (after BOS, which is shared)
  model.calls = [];
  await t.complete('Zzz', { maxTokens: 2, seed: 1 });
  assert.equal(model.calls[0].start, 1);
});

test('concurrent completions run one at a time and each gets its own correct answer', async () => {
  const t = new Tessera({ model: new FakeModel({ suppress: [EOS] }), tokenizer: tok });
  const prompts = ['alpha', 'beta beta', 'gamma'];
  const got = await Promise.all(prompts.map((p) => t.complete(p, { temperature: 0, maxTokens: 5 })));
  for (let i = 0; i < prompts.length; i++) {
    const want = await generateText(new FakeModel({ suppress: [EOS] }), tok, prompts[i], { temperature: 0, maxTokens: 5 });
    assert.deepEqual(got[i].tokens, want.tokens);
  }
});

test('streaming via generate() and complete() agree; breaking the stream frees the instance', async () => {
  const t = new Tessera({ model: new FakeModel({ suppress: [EOS] }), tokenizer: tok });
  let text = '';
  for await (const c of t.generate('stream me', { seed: 2, maxTokens: 10 })) text += c.text;
  const r = await new Tessera({ model: new FakeModel({ suppress: [EOS] }), tokenizer: tok }).complete('stream me', { seed: 2, maxTokens: 10 });
  assert.equal(text, r.text);
  for await (const _ of t.generate('x', { maxTokens: 50 })) { void _; break; }
  const after = await t.complete('again', { maxTokens: 3, temperature: 0 });
  assert.equal(after.tokens.length, 3);
});

test('tokenize / detokenize / logits / dispose', async () => {
  let disposed = 0;
  const model = new FakeModel();
  model.dispose = () => { disposed++; };
  const t = new Tessera({ model, tokenizer: tok }, { name: 'n' });
  assert.deepEqual(t.tokenize('hé'), [256, 0x68, 0xc3, 0xa9]);
  assert.deepEqual(t.tokenize('h', { addSpecialTokens: false }), [0x68]);
  assert.equal(t.detokenize([256, 0x68, 0xc3, 0xa9]), 'hé');
  const ids = t.tokenize('abc');
  assert.deepEqual(await t.logits(ids), evaluateLogits(new FakeModel(), ids));
  assert.equal(t.contextLength, 512);
  t.dispose();
  t.dispose();
  assert.equal(disposed, 1);
  await assert.rejects(t.complete('x'), /disposed/);
});

test('context overflow through the API names both numbers', async () => {
  const t = new Tessera({ model: new FakeModel({ contextLength: 16 }), tokenizer: tok });
  await assert.rejects(t.complete('0123456789', { maxTokens: 10 }), /11 tokens.*\(10\).*16/);
});

test('logits() between completions leaves the instance usable; caches are independent and a released one refuses work', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeTestCheckpoint } = await import('../../src/testing/checkpoints.js');
  const { load } = await import('../../src/api/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-api-logits-'));
  try {
    const path = writeTestCheckpoint(dir, 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const t = await load(path, { threads: 1, contextLength: 128 });
    try {
      const opts = { maxTokens: 5, temperature: 0 };
      const first = await t.complete('Once upon a time', opts);
      const logits = await t.logits(t.tokenize('Once upon'));
      assert.equal(logits.length % t.tokenize('Once upon').length, 0);
      const again = await t.complete('Once upon a time', opts);   // threw "this cache is stale" before
      assert.deepEqual(again.tokens, first.tokens);
    } finally { t.dispose(); }
    const { loadModel } = await import('../../src/models/load.js');
    const { model } = await loadModel(path, { threads: 1, contextLength: 64 });
    try {
      // caches are independent: a second one leaves the first usable; a released one refuses work
      const first = model.createCache();
      const want = model.forward([1, 2, 3], first).slice();
      const other = model.createCache();
      model.forward([7, 7, 7, 7], other);
      first.truncate(2);
      assert.deepEqual(model.forward([3], first), want);
      first.release();
      assert.throws(() => first.truncate(0), /has been released/);
      assert.throws(() => model.forward([1], first), /has been released/);
    } finally { model.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
