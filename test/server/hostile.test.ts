// The server against clients that misbehave (docs/RELIABILITY.md "Requests"): disconnects at every
// stage free the sequence and its KV pages within one scheduler step; a full queue answers 503 with
// Retry-After; a missing key 401; a large body 413; bad fields 400 naming them; context overflow
// names both numbers; limits on n, max_tokens, stop strings and messages; slow and stalled
// connections are cut off; /health is 503 until the model is ready; SIGTERM exits 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { TesseraServer } from '../../src/server/server.js';
import { Scheduler } from '../../src/generation/scheduler.js';
import { MODEL, post, startServer, until, type Running } from './harness.js';
import { sseData } from '../../src/testing/sse-events.js';

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ messages: [{ role: 'user', content }], ...extra });

/** Streams a completion and drops the connection once `drop(chunks seen, done)` says so; returns
 *  the scheduler step count at the moment the server saw the connection close. */
async function disconnectAfter(s: Running, body: Record<string, unknown>, drop: (contentChunks: number) => boolean): Promise<number> {
  let stepsAtClose = -1;
  const seen = new Promise<void>((resolve) => {
    s.server.http.once('request', (_req, res) => res.once('close', () => { stepsAtClose = s.steps(); resolve(); }));
  });
  const ctl = new AbortController();
  const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal: ctl.signal });
  let chunks = 0;
  if (!drop(0)) {
    for await (const data of sseData(r.body!)) {
      if (data.startsWith('{') && (JSON.parse(data).choices[0]?.text ?? '') !== '') chunks++;
      if (drop(chunks)) break;
    }
  }
  ctl.abort();
  await seen;
  return stepsAtClose;
}

test('a client that disconnects before the first token, mid-stream or at the last token frees its sequence and KV pages within one step', async () => {
  const s = await startServer({}, { promptCache: 0 });
  try {
    const long = 'The Congress '.repeat(150);             // ~hundreds of tokens of prefill
    const body = { prompt: long, max_tokens: 64, temperature: 0 };
    const full = await post(`${s.url}/v1/completions`, { ...body, logprobs: 0 });
    const total = full.json.choices[0].logprobs.tokens.length as number;
    assert.ok(total >= 3, `the greedy completion has ${total} tokens`);
    assert.equal(s.pages(), 0, 'no prompt cache: nothing is held between requests');
    const cases: [string, (chunks: number) => boolean][] = [
      ['before the first token', () => true],
      ['mid-stream', (c) => c >= 2],
      ['at the last token', (c) => c >= total],
    ];
    for (const [when, drop] of cases) {
      const atClose = await disconnectAfter(s, body, drop);
      assert.ok(await until(() => s.pages() === 0), `${when}: KV pages back to 0 (${s.pages()} in use)`);
      assert.ok(s.steps() - atClose <= 1, `${when}: freed ${s.steps() - atClose} steps after the server saw the disconnect`);
      assert.ok(await until(() => s.server.metrics.render({ running: 0, waiting: 0 }).length > 0 && s.t.model.kvPages!.used === 0));
    }
    // the server still answers, with the same text
    const again = await post(`${s.url}/v1/completions`, { ...body, logprobs: 0 });
    assert.equal(again.json.choices[0].text, full.json.choices[0].text);
  } finally { await s.close(); }
});

test('a client that disconnects while its stream waits for the socket to drain ends its request: nothing is left for shutdown to wait on', async () => {
  const s = await startServer({}, { promptCache: 0 });
  let ended = false;
  try {
    // a reader slower than the stream: every write reports a full socket and no 'drain' follows, so
    // the server waits while the scheduler queues the next chunks, until the client goes away
    s.server.http.prependListener('request', (_req, res) => {
      const write = res.write.bind(res) as (chunk: string) => boolean;
      res.write = ((chunk: string) => { write(chunk); return false; }) as typeof res.write;
    });
    const ctl = new AbortController();
    const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'The Congress', max_tokens: 64, temperature: 0, ignore_eos: true, stream: true }), signal: ctl.signal });
    for await (const data of sseData(r.body!)) if (data.startsWith('{')) break;     // the first chunk arrived
    await new Promise((resolve) => setTimeout(resolve, 300));                         // chunks queue up behind it
    ctl.abort();
    // a generation request observes its end-to-end latency when it ends, however it ends
    ended = await until(() => s.server.metrics.e2e.count === 1);
    assert.ok(ended, 'the request never ended after its client disconnected: shutdown would wait for it forever');
    assert.ok(await until(() => s.pages() === 0), `KV pages back to 0 (${s.pages()} in use)`);
  } finally {
    if (ended) await s.close();
    else { s.server.http.closeAllConnections(); s.server.http.close(); s.t.dispose(); }   // shutdown() would wait forever
  }
});

test('past parallel + queue sequences: 503 with Retry-After in the OpenAI error shape; the others finish', async () => {
  const s = await startServer({ maxQueued: 1, retryAfterSeconds: 2 }, { parallel: 2 });
  try {
    const body = { prompt: 'The Congress '.repeat(100), max_tokens: 48, temperature: 0 };
    const first = [1, 2, 3].map(() => post(`${s.url}/v1/completions`, { ...body, max_tokens: 400, ignore_eos: true }));
    await until(() => s.server.metrics.render({ running: 0, waiting: 0 }).length > 0, 50);
    const over = await post(`${s.url}/v1/completions`, body);
    assert.equal(over.status, 503);
    assert.equal(over.headers.get('retry-after'), '2');
    assert.equal(over.json.error.code, 'service_unavailable');
    assert.match(over.json.error.message, /busy: 3 sequences.*limit 3/);
    // more choices than the server ever holds at once: no retry could succeed, so 400 naming n, not 503
    const n = await post(`${s.url}/v1/completions`, { ...body, n: 4 });
    assert.equal(n.status, 400);
    assert.equal(n.json.error.param, 'n');
    assert.match(n.json.error.message, /needs 4 sequences.*\(3: --parallel 2 \+ --queue 1\)/);
    assert.equal(n.headers.get('retry-after'), null);
    // while full, a bad request still gets its 400 naming the problem, not a 503 (checked before admission)
    for (const [bad, param, re] of [
      [{ ...body, n: 17 }, 'n', /1 to 16/], [{ ...body, n: -1 }, 'n', /1 to 16/], [{ ...body, n: 2.5 }, 'n', /integer/],
      [{ ...body, prompt: Array(s.t.contextLength + 1).fill(100) }, 'prompt', /exceeds the context length/],
    ] as const) {
      const r = await post(`${s.url}/v1/completions`, bad);
      assert.equal(r.status, 400, `${JSON.stringify(bad).slice(0, 60)}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.param, param);
      assert.match(r.json.error.message, re);
    }
    const chatN = await post(`${s.url}/v1/chat/completions`, chat('hi', { n: 0 }));
    assert.equal(chatN.status, 400);
    assert.equal(chatN.json.error.param, 'n');
    assert.equal((await post(`${s.url}/v1/completions`, body)).status, 503, 'the server was full throughout');
    for (const r of await Promise.all(first)) assert.equal(r.status, 200);
    assert.equal((await post(`${s.url}/v1/completions`, body)).status, 200);
  } finally { await s.close(); }
});

test('API key (401 without it, /health open), body limit (413), bad JSON, bad fields and limits (400 naming the field), context overflow naming both numbers, unknown routes', async () => {
  const s = await startServer({ apiKey: 'sesame', maxBodyBytes: 200 * 1024 }, { contextLength: 128 });
  const key = { Authorization: 'Bearer sesame' };
  try {
    const no = await post(`${s.url}/v1/chat/completions`, chat('hi'));
    assert.equal(no.status, 401);
    assert.equal(no.json.error.code, 'invalid_api_key');
    assert.equal((await post(`${s.url}/v1/chat/completions`, chat('hi'), { Authorization: 'Bearer sesam' })).status, 401);
    assert.equal((await fetch(`${s.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${s.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    assert.equal((await post(`${s.url}/v1/chat/completions`, chat('hi', { max_tokens: 2 }), key)).status, 200);

    const big = await post(`${s.url}/v1/chat/completions`, chat('x'.repeat(210 * 1024)), key);
    assert.equal(big.status, 413);
    assert.match(big.json.error.message, /204800 bytes/);

    const bad: [unknown, string | null, RegExp][] = [
      ['{"messages": [', null, /could not parse the JSON/],
      ['{"messages": [], "messages": []}', null, /duplicate key/],
      ['', null, /empty/],
      [chat('hi', { max_tokens: -1 }), 'max_tokens', /integer ≥ 1/],
      [chat('hi', { max_tokens: 1.5 }), 'max_tokens', /integer/],
      [chat('hi', { max_tokens: '9' }), 'max_tokens', /got a string/],
      [chat('hi', { n: 17 }), 'n', /1 to 16/],
      [chat('hi', { n: -1 }), 'n', /1 to 16/],
      [chat('hi', { top_k: -7 }), 'top_k', /≥ -1/],
      [chat('hi', { top_p: 0 }), 'top_p', /greater than 0/],
      ['{"messages": [{"role": "user", "content": "hi"}], "temperature": 1e309}', 'temperature', /between 0 and 2/],
      [chat('hi', { logprobs: true, top_logprobs: 21 }), 'top_logprobs', /0 to 20/],
      [chat('hi', { stop: ['a', 'b', 'c', 'd', 'e'] }), 'stop', /expected at most 4 stop sequences, but got 5\./],
      [chat('hi', { stop: ['y'.repeat(300)] }), 'stop[0]', /at most 256 characters/],
      [{ messages: Array(4097).fill({ role: 'user', content: 'x' }) }, 'messages', /at most 4096/],
      [chat('hi', { attention: 'magicpig' }), 'attention', /loaded with "dense"/],
      [chat('hi', { speculate: 'draft=oracle' }), 'speculate', /unknown draft/],
      [chat('hi', { file: '/etc/passwd' }), 'file', /Unrecognized/],
      [{ prompt: [[1, 2], [99999]] }, 'prompt', /prompt\[0\] = 99999 is not a token id|is not a token id/],
      [{ prompt: [1.5] }, 'prompt', /is not a token id/],
      [{ prompt: [] }, 'prompt', /empty array/],
      // echoed in every streamed chunk: bounded, so a request cannot multiply its own size
      [chat('hi', { model: 'm'.repeat(300) }), 'model', /at most 256 characters, but got 300/],
      [chat('hi', { user: 'u'.repeat(300) }), 'user', /at most 256 characters/],
      [chat('hi', { speculate: 'draft=' + 'p'.repeat(300) }), 'speculate', /at most 256 characters/],
      // past these, a logit divided or multiplied by the penalty overflows mid-stream
      [chat('hi', { repetition_penalty: 1e-300 }), 'repetition_penalty', /0\.01 to 100/],
      [chat('hi', { repetition_penalty: 3e38 }), 'repetition_penalty', /0\.01 to 100/],
      // choice i samples with seed + i
      [chat('hi', { seed: Number.MAX_SAFE_INTEGER, n: 3 }), 'seed', /seed \+ n − 1/],
      [{ prompt: 'x', n: 5, logprobs: 9 }, 'logprobs', /0 to 5/],
      [{ prompt: Array(17).fill('a') }, 'prompt', /at most 16 prompts/],
      [{ prompt: ['a', 'b', 'c', 'd', 'e'], n: 4 }, 'n', /at most 16 choices/],
    ];
    for (const [body, param, re] of bad) {
      const route = typeof body === 'object' && body !== null && 'prompt' in body ? '/v1/completions' : '/v1/chat/completions';
      if (typeof body === 'string' && /temperature/.test(body)) assert.equal(JSON.parse(body).temperature, Infinity);
      const r = await post(`${s.url}${route}`, body, key);
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
      assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type'], JSON.stringify(r.json));
      assert.equal(r.json.error.param, param, JSON.stringify(body).slice(0, 80));
      assert.match(r.json.error.message, re);
    }
    // context 128: prompt of n_ctx − 1, n_ctx, n_ctx + 1 tokens, and prompt + max_tokens past n_ctx
    const ids = (k: number) => Array.from({ length: k }, () => 100);
    assert.equal((await post(`${s.url}/v1/completions`, { prompt: ids(127), max_tokens: 1 }, key)).status, 200);
    for (const [k, m] of [[128, 1], [129, 1], [100, 40]] as const) {
      const r = await post(`${s.url}/v1/completions`, { prompt: ids(k), max_tokens: m }, key);
      assert.equal(r.status, 400);
      assert.equal(r.json.error.code, 'context_length_exceeded');
      assert.equal(r.json.error.param, 'prompt');
      assert.match(r.json.error.message, new RegExp(`prompt \\(${k} tokens\\) \\+ max tokens \\(${m}\\) = ${k + m} exceeds the context length of 128`));
    }
    const long = await post(`${s.url}/v1/chat/completions`, chat('The Congress '.repeat(60), { max_tokens: 8 }), key);
    assert.equal(long.status, 400);
    assert.match(long.json.error.message, /maximum context length is 128 tokens.*requested \d+ tokens/);
    assert.equal((await fetch(`${s.url}/v1/nothing`, { headers: key })).status, 404);
    assert.equal((await fetch(`${s.url}/v1/chat/completions`, { headers: key })).status, 405);
    assert.equal((await post(`${s.url}/detokenize`, { tokens: [1, -1] }, key)).json.error.param, 'tokens[1]');
    assert.equal((await post(`${s.url}/tokenize`, { prompt: 'The Congress' }, key)).json.count > 0, true);
    // a text that cannot fit the context is refused from its length, not tokenized on the event loop
    const huge = await post(`${s.url}/tokenize`, { prompt: 'x'.repeat(150_000) }, key);
    assert.equal(huge.status, 400);
    assert.equal(huge.json.error.code, 'context_length_exceeded');
    assert.equal(huge.json.error.param, 'prompt');
    assert.match(huge.json.error.message, /150000 characters, more than a text that fits the context of 128 tokens can have/);
  } finally { await s.close(); }
});

/** Opens a raw connection, writes `parts` with pauses, and resolves with the ms until the server closed it. */
function rawClient(port: number, write: (sock: import('node:net').Socket) => void): Promise<{ ms: number; data: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let data = '';
    const sock = connect(port, '127.0.0.1', () => write(sock));
    sock.on('data', (d) => { data += d.toString(); });
    sock.on('close', () => resolve({ ms: Date.now() - t0, data }));
    sock.on('error', () => {});
  });
}

test('slow-loris headers, a half-sent body and a silent connection are cut off by the timeouts; the server keeps answering', async () => {
  const s = await startServer({ headersTimeoutMs: 400, requestTimeoutMs: 800, idleTimeoutMs: 1500, timeoutCheckMs: 100 });
  const port = Number(new URL(s.url).port);
  try {
    const timers: NodeJS.Timeout[] = [];
    const loris = rawClient(port, (sock) => {
      sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
      let i = 0;
      timers.push(setInterval(() => { if (!sock.destroyed) sock.write(`X-Slow-${i++}: y\r\n`); }, 100));   // never ends the headers
    });
    const halfBody = rawClient(port, (sock) => sock.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"prompt": "'));
    const silent = rawClient(port, () => {});                  // connects, sends nothing
    const [a, b, c] = await Promise.all([loris, halfBody, silent]);
    timers.forEach(clearInterval);
    assert.ok(a.ms < 3000, `slow-loris closed after ${a.ms} ms`);
    assert.ok(b.ms < 3000, `half-sent body closed after ${b.ms} ms`);
    assert.match(b.data, /^HTTP\/1\.1 408/);
    assert.ok(c.ms < 4000, `silent connection closed after ${c.ms} ms`);
    const ok = await post(`${s.url}/v1/completions`, { prompt: 'The Congress', max_tokens: 4, temperature: 0 });
    assert.equal(ok.status, 200);
  } finally { await s.close(); }
});

test('/health is 503 until the model is ready, then 200; every other route is 503 with Retry-After meanwhile', async () => {
  const server = new TesseraServer();
  const { port } = await server.listen(0, '127.0.0.1');
  try {
    const h = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(h.status, 503);
    const r = await post(`http://127.0.0.1:${port}/v1/completions`, { prompt: 'x' });
    assert.equal(r.status, 503);
    assert.equal(r.headers.get('retry-after'), '1');
    assert.match(r.json.error.message, /loading/);
  } finally { await server.shutdown(100); }
});

test('shutdown(grace): a stream that ends within the grace time ends normally, and shutdown waits for it', async () => {
  const s = await startServer();
  try {
    const r = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'The Congress', max_tokens: 24, stream: true, temperature: 0, ignore_eos: true }) });
    const reader = r.body!.getReader();
    await reader.read();
    let stopped = false;
    const stopping = s.server.shutdown(60_000).then(() => { stopped = true; });
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    assert.doesNotMatch(text, /shutting down/);
    assert.match(text, /"finish_reason":"length"[\s\S]*data: \[DONE\]\n\n$/);
    await stopping;
    assert.ok(stopped);
  } finally { s.t.dispose(); }
});

test('tessera serve: SIGTERM during a streamed request stops admitting, cancels it once the grace time is over and exits 0', async () => {
  // --grace 0: the request is cancelled at once, however fast the model decodes (with a grace of 1 s
  // the 2,000 tokens below sometimes finished first, and the stream ended normally)
  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'serve', '--model', MODEL, '--port', '0', '--grace', '0', '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    assert.ok(await until(() => /ready: model/.test(log), 20000), log);
    const url = /listening on (http:\/\/[^ ]+)/.exec(log)![1]!;
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: 'The Congress', max_tokens: 2000, stream: true, temperature: 1, ignore_eos: true }) });
    const reader = r.body!.getReader();
    await reader.read();
    child.kill('SIGTERM');
    let tail = '';
    for (;;) {                                   // the stream ends when the server cancels it
      const { value, done } = await reader.read();
      if (done) break;
      tail = (tail + new TextDecoder().decode(value)).slice(-2000);
    }
    assert.match(tail, /shutting down.*"code":"service_unavailable".*\n\ndata: \[DONE\]\n\n$/s);
    const code = await exited;
    assert.equal(code, 0, log);
    assert.match(log, /SIGTERM: finishing running requests/);
    assert.match(log, /stopped/);
  } finally { child.kill('SIGKILL'); }
});

test('a streamed answer to a Connection: close request closes the connection at [DONE] (no keep-alive wait)', async () => {
  const s = await startServer();
  try {
    const body = JSON.stringify({ prompt: 'The Congress', max_tokens: 2, temperature: 0, stream: true });
    const r = await rawClient(Number(new URL(s.url).port), (sock) => sock.write(
      `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`));
    assert.match(r.data, /^HTTP\/1\.1 200[\s\S]*data: \[DONE\]/);
    assert.ok(r.ms < 2500, `closed after ${r.ms} ms (the keep-alive timeout is 5 s)`);
  } finally { await s.close(); }
});

test('--speculate as the server default: requests without the field speculate, a logprobs request is answered without it, a bad spec fails at start', async () => {
  assert.throws(() => new TesseraServer({ speculate: 'draft=oracle' }), /unknown draft/);
  const s = await startServer({ speculate: 'draft=prompt-lookup,gamma=3' });
  try {
    const prompt = 'the Congress and the Congress and the Congress and the';
    const plain = await post(`${s.url}/v1/completions`, { prompt, max_tokens: 8, temperature: 0 });
    assert.equal(plain.status, 200);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /tessera:spec_decode_num_drafts_total [1-9]/);
    const lp = await post(`${s.url}/v1/completions`, { prompt, max_tokens: 8, temperature: 0, logprobs: 1 });
    assert.equal(lp.status, 200, JSON.stringify(lp.json));
    assert.equal(lp.json.choices[0].text, plain.json.choices[0].text);          // greedy speculation is lossless
  } finally { await s.close(); }
});

test('--cors: a preflight from the allowed origin gets 204 with the CORS headers and needs no key; other origins get none', async () => {
  const s = await startServer({ cors: 'https://app.example', apiKey: 'k' });
  try {
    const pre = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.match(pre.headers.get('access-control-allow-headers')!, /Authorization/);
    const ok = await fetch(`${s.url}/v1/models`, { headers: { Origin: 'https://app.example', Authorization: 'Bearer k' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
    const other = await fetch(`${s.url}/v1/models`, { headers: { Origin: 'https://evil.example', Authorization: 'Bearer k' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const noKey = await fetch(`${s.url}/v1/models`, { headers: { Origin: 'https://app.example' } });
    assert.equal(noKey.status, 401);
  } finally { await s.close(); }
});

test('a request still without its answer when the connection has been silent for the idle timeout gets a 504 saying why and is cancelled; a streamed one keeps its connection busy and finishes', async () => {
  const s = await startServer({ idleTimeoutMs: 150, timeoutCheckMs: 50 }, { promptCache: 0 });
  try {
    // ~2000 tokens of the small default model: several hundred ms, far past 150 ms of silence
    const body = { prompt: 'The', max_tokens: 1900, ignore_eos: true, temperature: 0 };
    const r = await post(`${s.url}/v1/completions`, body);
    assert.equal(r.status, 504, JSON.stringify(r.json));
    assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(r.json.error.code, 'timeout');
    assert.match(r.json.error.message, /No answer within the server's idle timeout \(0\.15 s without data on the connection\).*stream: true.*--timeout/);
    assert.ok(await until(() => Scheduler.of(s.t.model).stats.running === 0 && s.pages() === 0), 'the generation was cancelled and its pages freed');
    const stream = await fetch(`${s.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
    const events: string[] = [];
    for await (const data of sseData(stream.body!)) events.push(data);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(JSON.parse(events.at(-2)!).choices[0].finish_reason, 'length', events.at(-2));
  } finally { await s.close(); }
});
