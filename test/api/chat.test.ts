import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, DEFAULT_REPLY_TOKENS, Tessera, validateChatRequest, type ChatCompletionChunk, type ChatCompletionRequest } from '../../src/api/index.js';
import { ByteTokenizer, EOS, FakeModel, bytesOf } from '../generation/fake-model.js';

const tok = new ByteTokenizer();
const render = (messages: { role: string; content: string }[]) => messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant: ';
const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Hi?' }];
const promptLength = bytesOf(render(messages)).length;

/** A Tessera whose fake model answers `reply` (then eos) to `messages`. */
function make(reply: string, opts: { eos?: boolean; contextLength?: number } = {}) {
  const model = new FakeModel({ script: [...bytesOf(reply), ...(opts.eos === false ? [] : [EOS])], promptLength, contextLength: opts.contextLength });
  return { model, t: new Tessera({ model, tokenizer: tok }, { name: 'fake-model', renderChat: render }) };
}

test('non-streaming: OpenAI chat.completion shape, content and usage', async () => {
  const { t } = make('Hello there!');
  const r = await t.chat.completions.create({ messages, temperature: 0 });
  assert.match(r.id, /^chatcmpl-[0-9a-f]{32}$/);
  assert.equal(r.object, 'chat.completion');
  assert.ok(Number.isInteger(r.created) && Math.abs(r.created - Date.now() / 1000) < 60);
  assert.equal(r.model, 'fake-model');
  assert.deepEqual(r.choices, [{ index: 0, message: { role: 'assistant', content: 'Hello there!' }, finish_reason: 'stop', logprobs: null }]);
  assert.deepEqual(r.usage, { prompt_tokens: promptLength, completion_tokens: 12, total_tokens: promptLength + 12, prompt_tokens_details: { cached_tokens: 0 } });
  const short = await make('Hello there!').t.chat.completions.create({ messages, temperature: 0, max_tokens: 5, model: 'x' });
  assert.equal(short.choices[0].message.content, 'Hello');
  assert.equal(short.choices[0].finish_reason, 'length');
  assert.equal(short.model, 'x');
  const stopped = await make('Hello there!').t.chat.completions.create({ messages, temperature: 0, stop: 'there' });
  assert.equal(stopped.choices[0].message.content, 'Hello ');
  assert.equal(stopped.choices[0].finish_reason, 'stop');
});

test('streaming: role first, content deltas, finish_reason last, usage chunk on request; same text as non-streaming', async () => {
  const reply = 'Grüße, 世界!';
  const chunks: ChatCompletionChunk[] = [];
  const stream = await make(reply).t.chat.completions.create({ messages, temperature: 0, stream: true, stream_options: { include_usage: true } });
  for await (const c of stream) chunks.push(c);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
  const last = chunks.at(-2)!;
  assert.equal(last.choices[0].finish_reason, 'stop');
  assert.deepEqual(last.choices[0].delta, {});
  assert.ok(chunks.slice(0, -2).every((c) => c.choices[0].finish_reason === null));
  const usage = chunks.at(-1)!;
  assert.deepEqual(usage.choices, []);
  assert.equal(usage.usage!.completion_tokens, bytesOf(reply).length);
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  const whole = await make(reply).t.chat.completions.create({ messages, temperature: 0 });
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(text, reply);
});

test('validation errors name the param (table)', () => {
  const ok = { messages: [{ role: 'user', content: 'x' }] };
  const cases: [Record<string, unknown>, string | null, RegExp][] = [
    [{}, 'messages', /Missing required parameter/],
    [{ messages: 'hi' }, 'messages', /expected an array/],
    [{ messages: [] }, 'messages', /empty array/],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role', /one of/],
    [{ messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /string or an array/],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 'messages[0].content[0]', /text/],
    [{ messages: [{ role: 'user', content: 'x', foo: 1 }] }, 'messages[0].foo', /Unrecognized/],
    [{ ...ok, max_tokens: -5 }, 'max_tokens', /integer ≥ 1.*-5/],
    [{ ...ok, max_tokens: 0 }, 'max_tokens', /integer ≥ 1/],
    [{ ...ok, max_tokens: 2.5 }, 'max_tokens', /integer/],
    [{ ...ok, max_tokens: '10' }, 'max_tokens', /expected an integer, but got a string/],
    [{ ...ok, max_completion_tokens: -1 }, 'max_completion_tokens', /≥ 1/],
    [{ ...ok, temperature: 3 }, 'temperature', /between 0 and 2/],
    [{ ...ok, temperature: -0.5 }, 'temperature', /between 0 and 2/],
    [{ ...ok, temperature: true }, 'temperature', /expected a number, but got a boolean/],
    [{ ...ok, top_p: 0 }, 'top_p', /greater than 0/],
    [{ ...ok, top_p: 1.01 }, 'top_p', /at most 1/],
    [{ ...ok, top_k: -2 }, 'top_k', /≥ -1/],
    [{ ...ok, top_k: 1.5 }, 'top_k', /integer/],
    [{ ...ok, min_p: 2 }, 'min_p', /between 0 and 1/],
    [{ ...ok, frequency_penalty: 2.5 }, 'frequency_penalty', /-2 and 2/],
    [{ ...ok, seed: 1.5 }, 'seed', /integer/],
    [{ ...ok, n: 17 }, 'n', /from 1 to 16/],
    [{ ...ok, n: 0 }, 'n', /from 1 to 16/],
    [{ ...ok, top_logprobs: 3 }, 'top_logprobs', /needs 'logprobs'/],
    [{ ...ok, logprobs: true, top_logprobs: 21 }, 'top_logprobs', /0 to 20/],
    [{ ...ok, logprobs: true, speculate: 'prompt-lookup' }, 'logprobs', /cannot be combined/],
    [{ ...ok, speculate: 'draft=magic' }, 'speculate', /unknown draft/],
    [{ ...ok, messages: Array(4097).fill({ role: 'user', content: 'x' }) }, 'messages', /at most 4096/],
    [{ ...ok, stop: ['x'.repeat(257)] }, 'stop[0]', /at most 256 characters/],
    [{ ...ok, stop: 5 }, 'stop', /string or an array/],
    [{ ...ok, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', /at most 4/],
    [{ ...ok, stop: [''] }, 'stop[0]', /non-empty/],
    [{ ...ok, stream: 'yes' }, 'stream', /boolean/],
    [{ ...ok, stream_options: { include_usage: true } }, 'stream_options', /only allowed when 'stream'/],
    [{ ...ok, tools: [] }, 'tools', /not supported/],
    [{ ...ok, logprobs: 'yes' }, 'logprobs', /boolean/],
    [{ ...ok, frobnicate: 1 }, 'frobnicate', /Unrecognized request argument/],
    [{ ...ok, model: 7 }, 'model', /string/],
  ];
  for (const [body, param, re] of cases) {
    assert.throws(() => validateChatRequest(body), (e: unknown) => {
      assert.ok(e instanceof ApiError, JSON.stringify(body));
      assert.equal(e.param, param, JSON.stringify(body));
      assert.match(e.message, re);
      assert.equal(e.status, 400);
      const j = e.toJSON();
      assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(j.error.type, 'invalid_request_error');
      return true;
    });
  }
  // A hostile value is quoted cut short, not echoed whole (a 1 MB role would make a 1 MB error).
  assert.throws(() => validateChatRequest({ messages: [{ role: 'x'.repeat(1 << 20), content: 'x' }] }), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.param, 'messages[0].role');
    assert.ok(e.message.length < 300, `message of ${e.message.length} characters`);
    return true;
  });
  assert.throws(() => validateChatRequest(null), /JSON object/);
  assert.throws(() => validateChatRequest([]), /JSON object/);
});

test('valid requests map onto sampling options', () => {
  const v = validateChatRequest({
    messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }, { role: 'assistant', content: null }],
    max_tokens: 10, temperature: 0.5, top_p: 0.9, top_k: -1, min_p: 0.05, seed: 3, stop: 'END', stream: null, n: 1, presence_penalty: 0.1,
  });
  assert.deepEqual(v.messages, [{ role: 'user', content: 'ab' }, { role: 'assistant', content: '' }]);
  assert.deepEqual(v.sampling, { temperature: 0.5, topP: 0.9, topK: 0, minP: 0.05, seed: 3, presencePenalty: 0.1 });
  assert.equal(v.maxTokens, 10);
  assert.deepEqual(v.stop, ['END']);
  assert.equal(v.stream, false);
});

test('create() rejects invalid requests and context overflow with ApiError naming both numbers', async () => {
  const { t } = make('x', { contextLength: 64 });
  await assert.rejects(t.chat.completions.create({ messages, max_tokens: -1 } as ChatCompletionRequest), (e: unknown) => e instanceof ApiError && e.param === 'max_tokens');
  await assert.rejects(t.chat.completions.create({ messages, max_tokens: 100 }), (e: unknown) =>
    e instanceof ApiError && e.code === 'context_length_exceeded' && e.message.includes('64 tokens') && e.message.includes(`${promptLength + 100} tokens`));
  await assert.rejects(t.chat.completions.create({ messages, max_tokens: 100, stream: true }), (e: unknown) => e instanceof ApiError && e.code === 'context_length_exceeded');
});

test('an aborted request rejects with an AbortError (non-streaming and streaming)', async () => {
  const model = new FakeModel({ delayMs: 2, suppress: [EOS], contextLength: 50_000 });
  const t = new Tessera({ model, tokenizer: tok }, { renderChat: render });
  await assert.rejects(t.chat.completions.create({ messages, signal: AbortSignal.timeout(20) }), (e: Error) => e.name === 'TimeoutError' || e.name === 'AbortError');
  const ac = new AbortController();
  const stream = await t.chat.completions.create({ messages, stream: true, signal: ac.signal });
  let n = 0;
  await assert.rejects((async () => { for await (const _ of stream) { void _; if (++n === 3) ac.abort(); } })(), (e: Error) => e.name === 'AbortError');
  // the instance is still usable afterwards
  const after = await t.chat.completions.create({ messages, max_tokens: 2 });
  assert.equal(after.usage.completion_tokens, 2);
});

test('no chat template: a clear error', async () => {
  const t = new Tessera({ model: new FakeModel(), tokenizer: tok });
  await assert.rejects(t.chat.completions.create({ messages }), /no chat template/);
});

test("the checkpoint's Jinja chat template is rendered with its bos token, and chatTemplate overrides it", async () => {
  const withTemplate = new ByteTokenizer();
  withTemplate.chatTemplate = "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
  const t = new Tessera({ model: new FakeModel(), tokenizer: withTemplate });
  assert.equal(await t.applyChatTemplate(messages), '<s>[system]Be brief.[user]Hi?[assistant]');
  assert.equal(await t.applyChatTemplate(messages, { addGenerationPrompt: false }), '<s>[system]Be brief.[user]Hi?');
  const o = new Tessera({ model: new FakeModel(), tokenizer: withTemplate }, { chatTemplate: '{% for m in messages %}{{ m.content }};{% endfor %}' });
  assert.equal(await o.applyChatTemplate(messages), 'Be brief.;Hi?;');
});

test('without max_tokens a reply is bounded: DEFAULT_REPLY_TOKENS, generation_config max_new_tokens, or the room left', async () => {
  // a model that never ends its turn, in a context far longer than the bound
  const model = new FakeModel({ suppress: [EOS], contextLength: 4096 });
  const t = new Tessera({ model, tokenizer: tok }, { renderChat: render });
  const r = await t.chat.completions.create({ messages, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, DEFAULT_REPLY_TOKENS);
  const g = new Tessera({ model, tokenizer: tok, generationConfig: { max_new_tokens: 7 } }, { renderChat: render });
  assert.equal((await g.chat.completions.create({ messages, temperature: 0 })).usage.completion_tokens, 7);
  assert.equal(g.defaultReplyTokens(4090), 6);   // never past the context
  assert.equal(g.defaultReplyTokens(4096), 1);   // a full context is refused by the caller, not by a 0 here
  // a context shorter than the bound: the reply fills the room, as before
  const small = new Tessera({ model: new FakeModel({ suppress: [EOS], contextLength: 64 }), tokenizer: tok }, { renderChat: render });
  assert.equal((await small.chat.completions.create({ messages, temperature: 0 })).usage.completion_tokens, 64 - promptLength);
});

test("generation_config.json's sampling fields are the defaults of requests that leave them out", async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const reply = async (t: Tessera, extra: Record<string, unknown>) =>
    (await t.chat.completions.create({ messages, max_tokens: 12, ...extra, stream: false } as ChatCompletionRequest & { stream: false })).choices[0].message.content;
  const plain = new Tessera({ model, tokenizer: tok }, { renderChat: render });
  const greedy = await reply(plain, { temperature: 0 });
  // control: without the file, seeds 1 and 2 sample different replies (the engine's default temperature is 1)
  assert.notEqual(await reply(plain, { seed: 1 }), await reply(plain, { seed: 2 }));
  // temperature 0 in the file: an omitted temperature is greedy, whatever the seed
  const cold = new Tessera({ model, tokenizer: tok, generationConfig: { temperature: 0, do_sample: true } }, { renderChat: render });
  assert.equal(await reply(cold, { seed: 1 }), greedy);
  assert.equal(await reply(cold, { seed: 2 }), greedy);
  // a field the request sets wins over the file
  assert.equal(await reply(cold, { seed: 1, temperature: 1 }), await reply(plain, { seed: 1 }));
  // top_k 1 in the file is greedy too (the file's temperature alone would sample)
  const k1 = new Tessera({ model, tokenizer: tok, generationConfig: { temperature: 1.5, top_k: 1, top_p: null } }, { renderChat: render });
  assert.deepEqual(k1.samplingDefaults, { temperature: 1.5, topK: 1 });
  assert.equal(await reply(k1, { seed: 3 }), greedy);
  // a value no request could set is refused at load, naming the file and the field
  for (const [config, re] of [
    [{ temperature: -1 }, /generation_config\.json: temperature = -1 must be a number ≥ 0/],
    [{ top_p: 0 }, /top_p = 0 must be a number greater than 0/],
    [{ top_k: 2.5 }, /top_k = 2\.5 must be an integer/],
    [{ min_p: 'high' }, /min_p = "high" must be a number between 0 and 1/],
    [{ repetition_penalty: 0 }, /repetition_penalty = 0 must be a number greater than 0/],
  ] as [Record<string, unknown>, RegExp][]) {
    assert.throws(() => new Tessera({ model, tokenizer: tok, generationConfig: config }), re);
  }
});
