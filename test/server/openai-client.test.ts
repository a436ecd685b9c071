// The server through the official `openai` client, as users' programs talk to it: completions, chat,
// streaming, usage, stop, seed, n, logprobs; streamed text = non-streamed text; a seed gives the same
// tokens alone or among 8 concurrent requests; a second chat turn reuses the first one's prefix.

import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, type Running } from './harness.js';

let s: Running;
let client: OpenAI;
before(async () => {
  s = await startServer({}, { promptCache: 4 });
  client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await s.close(); });

const messages = [{ role: 'user' as const, content: 'Tell me about the railroads.' }];

test('GET /v1/models lists the model', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['default']);
});

test('completions: text, finish reason, usage; streamed text equals the non-streamed text (greedy and seeded)', async () => {
  for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 7 }]) {
    const r = await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 24, ...sampling });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0]!;
    assert.ok(c.text.length > 0);
    assert.ok(c.finish_reason === 'length' || c.finish_reason === 'stop');
    const promptTokens = (await (await fetch(`${s.url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: 'The Congress' }) })).json()).count;
    assert.equal(r.usage!.prompt_tokens, promptTokens);
    assert.ok(r.usage!.completion_tokens >= 1 && r.usage!.completion_tokens <= 24);
    assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
    const stream = await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 24, ...sampling, stream: true, stream_options: { include_usage: true } });
    let text = '', usage: OpenAI.CompletionUsage | undefined | null, finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
    }
    assert.equal(text, c.text, JSON.stringify(sampling));
    assert.equal(finish, c.finish_reason);
    assert.equal(usage!.completion_tokens, r.usage!.completion_tokens);
  }
});

test('chat: assistant message, usage; streaming gives role first, the same content, finish reason and a usage chunk', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages, max_tokens: 32, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  const m = r.choices[0]!.message;
  assert.equal(m.role, 'assistant');
  assert.ok((m.content ?? '').length > 0);
  assert.ok(r.usage!.prompt_tokens > 0 && r.usage!.completion_tokens > 0);
  const stream = await client.chat.completions.create({ model: 'default', messages, max_tokens: 32, temperature: 0, stream: true, stream_options: { include_usage: true } });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, m.content);
  assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, r.choices[0]!.finish_reason);
  assert.deepEqual(chunks.at(-1)!.choices, []);
  assert.equal(chunks.at(-1)!.usage!.completion_tokens, r.usage!.completion_tokens);
});

test('stop: the text ends before the stop string, finish_reason stop', async () => {
  const full = (await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 40, temperature: 0 })).choices[0]!.text;
  assert.ok(full.length >= 10, JSON.stringify(full));
  const stopAt = full.slice(5, 9);
  const r = await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 40, temperature: 0, stop: [stopAt] });
  assert.equal(r.choices[0]!.text, full.slice(0, full.indexOf(stopAt)));
  assert.ok(r.choices[0]!.text.length < full.length);
  assert.equal(r.choices[0]!.finish_reason, 'stop');
});

test('seed and n: choice i of a seeded request is the seed + i request; seeded output is the same alone and among 8 concurrent requests', async () => {
  const ask = (seed: number, n = 1, prompt = 'The Congress') => client.completions.create({ model: 'default', prompt, max_tokens: 20, temperature: 1, seed, n, logprobs: 0 });
  const alone = await ask(11);
  const tokensOf = (c: OpenAI.CompletionChoice) => c.logprobs!.tokens!.join('|');
  const again = await ask(11);
  assert.equal(tokensOf(again.choices[0]!), tokensOf(alone.choices[0]!));
  const three = await ask(11, 3);
  assert.deepEqual(three.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(tokensOf(three.choices[0]!), tokensOf(alone.choices[0]!));
  assert.equal(tokensOf(three.choices[1]!), tokensOf((await ask(12)).choices[0]!));
  assert.equal(three.usage!.completion_tokens, three.choices.reduce((a, c) => a + c.logprobs!.tokens!.length, 0));
  // eight at once, with other seeds and prompts mixed in: the seeded one is unchanged
  const batch = await Promise.all([ask(11), ask(1, 1, 'We the people'), ask(2), ask(3, 2, 'Our nation'), ask(11), ask(4), ask(5, 1, 'Tonight'), ask(6)]);
  assert.equal(tokensOf(batch[0]!.choices[0]!), tokensOf(alone.choices[0]!));
  assert.equal(tokensOf(batch[4]!.choices[0]!), tokensOf(alone.choices[0]!));
  assert.ok(s.t.model.parallel >= 8);
});

test('logprobs: chat content entries per token with sorted top_logprobs; the greedy token is the top one; completions arrays', async () => {
  const r = await client.chat.completions.create({ model: 'default', messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0]!.logprobs!.content!;
  assert.equal(content.length, r.usage!.completion_tokens);
  assert.equal(content.map((c) => c.token).join(''), r.choices[0]!.message.content);
  for (const c of content) {
    assert.equal(c.top_logprobs.length, 3);
    assert.ok(c.logprob <= 0 && Number.isFinite(c.logprob));
    for (let i = 1; i < 3; i++) assert.ok(c.top_logprobs[i - 1]!.logprob >= c.top_logprobs[i]!.logprob);
    assert.equal(c.top_logprobs[0]!.token, c.token);                  // greedy: the sampled token is the most likely
    assert.equal(c.top_logprobs[0]!.logprob, c.logprob);
    assert.deepEqual(c.bytes, [...Buffer.from(c.token)]);
  }
  const p = Math.exp(content[0]!.top_logprobs[0]!.logprob) + Math.exp(content[0]!.top_logprobs[1]!.logprob);
  assert.ok(p <= 1 + 1e-9);
  const stream = await client.chat.completions.create({ model: 'default', messages, max_tokens: 12, temperature: 0, logprobs: true, stream: true });
  const streamed: number[] = [];
  for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []).map((x) => x.logprob));
  // the same tokens; the values agree to float32 rounding (this request's prompt came from the prompt
  // cache, so its prefill ran in different chunks)
  assert.equal(streamed.length, content.length);
  streamed.forEach((x, i) => assert.ok(Math.abs(x - content[i]!.logprob) < 1e-5, `${x} vs ${content[i]!.logprob}`));
  const t = await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 6, temperature: 0, logprobs: 2 });
  const lp = t.choices[0]!.logprobs!;
  assert.equal(lp.tokens!.length, t.usage!.completion_tokens);
  assert.equal(lp.tokens!.join(''), t.choices[0]!.text);
  assert.deepEqual(lp.text_offset, lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join('').length));
  lp.top_logprobs!.forEach((top, i) => { assert.equal(Object.keys(top).length, 2); assert.equal(Math.max(...Object.values(top)), lp.token_logprobs![i]); });
});

test('a second chat turn reuses the first turn\'s prefix from the prompt cache (cached_tokens)', async () => {
  const first = await client.chat.completions.create({ model: 'default', messages, max_tokens: 16, temperature: 0 });
  const next = [...messages, { role: 'assistant' as const, content: first.choices[0]!.message.content! }, { role: 'user' as const, content: 'And the farms?' }];
  const second = await client.chat.completions.create({ model: 'default', messages: next, max_tokens: 8, temperature: 0 });
  const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
  assert.ok(cached >= first.usage!.prompt_tokens, `cached ${cached} of ${second.usage!.prompt_tokens}, the first turn's prompt had ${first.usage!.prompt_tokens}`);
  assert.ok(cached < second.usage!.prompt_tokens);
});

test('errors reach the client as OpenAI errors: 400 naming the param, context overflow naming both numbers', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'default', messages, temperature: 5 }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal((e.error as { param: string }).param, 'temperature');
    return true;
  });
  await assert.rejects(client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 5000 }), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.match(e.message, /max tokens \(5000\).*context length of 2048/);
    return true;
  });
});

test('/metrics: Prometheus text (HELP, TYPE, samples), cumulative histograms, token counters that add up, speculative counters once a request speculated', async () => {
  const scrape = async () => {
    const r = await fetch(`${s.url}/metrics`);
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    return r.text();
  };
  const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  const before = await scrape();
  const r = await client.completions.create({ model: 'default', prompt: 'The Congress', max_tokens: 8, temperature: 0, ignore_eos: true } as never);
  const spec = await client.completions.create({ model: 'default', prompt: 'the Congress and the Congress and the Congress and the', max_tokens: 8, temperature: 0, speculate: 'draft=prompt-lookup,gamma=3' } as never);
  const text = await scrape();
  assert.ok(text.endsWith('\n'));
  for (const line of text.trimEnd().split('\n')) {
    assert.match(line, /^(# (HELP|TYPE) tessera:[a-z0-9_]+ .+|tessera:[a-z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\d+(\.\d+)?(e[+-]?\d+)?|\+Inf|NaN))$/, line);
  }
  for (const h of ['time_to_first_token_seconds', 'inter_token_latency_seconds', 'e2e_request_latency_seconds']) {
    assert.match(text, new RegExp(`# TYPE tessera:${h} histogram`));
    const buckets = [...text.matchAll(new RegExp(`^tessera:${h}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map((m) => Number(m[2]));
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, `${h} buckets are cumulative`);
    assert.equal(buckets.at(-1), value(text, `tessera:${h}_count`));
    assert.ok(value(text, `tessera:${h}_count`) > 0);
  }
  const finished = (x: string) => [...x.matchAll(/^tessera:request_success_total\{finished_reason="[a-z]+"\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
  assert.equal(finished(text) - finished(before), 2);
  await assert.rejects(client.completions.create({ model: 'default', prompt: 'x', max_tokens: -1 }));
  assert.equal(finished(await scrape()), finished(text), 'a refused request finishes no choice');
  const generated = value(text, 'tessera:generation_tokens_total') - value(before, 'tessera:generation_tokens_total');
  assert.equal(generated, r.usage!.completion_tokens + spec.usage!.completion_tokens);
  assert.equal(value(text, 'tessera:prompt_tokens_total') - value(before, 'tessera:prompt_tokens_total'), r.usage!.prompt_tokens + spec.usage!.prompt_tokens);
  assert.equal(value(text, 'tessera:kv_pages_used') + value(text, 'tessera:kv_pages_free'), s.t.model.kvPages!.pages);
  assert.equal(value(text, 'tessera:num_requests_running'), 0);
  assert.doesNotMatch(before, /spec_decode/);                       // no request had speculated before
  assert.ok(value(text, 'tessera:spec_decode_num_drafts_total') > 0);
  assert.ok(value(text, 'tessera:spec_decode_num_draft_tokens_total') >= value(text, 'tessera:spec_decode_num_accepted_tokens_total'));
});
