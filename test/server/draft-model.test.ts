// `tessera serve` with a separate draft model: loaded once, shared by every request (each sequence
// its own draft cache in the draft's own KV pages). Greedy output equals plain greedy, alone and in
// a batch that mixes draft-model, prompt-lookup and plain requests; a request can still choose
// another draft or none, never a file; a client that disconnects frees the pages of both models.
// The CLI loads the draft with --speculate draft=model:PATH and serves with it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { load } from '../../src/api/index.js';
import { DraftModel } from '../../src/generation/draft-model.js';
import { Scheduler } from '../../src/generation/scheduler.js';
import { TesseraServer } from '../../src/server/server.js';
import { sseData } from '../../src/testing/sse-events.js';
import { post, until } from './harness.js';

const TARGET = 'models/long-context';
const DRAFT = 'models/long-context-draft';

const specDrafts = async (url: string) => Number(/tessera:spec_decode_num_drafts_total (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);

test('serve with a draft model: greedy output equals plain, alone and mixed in a batch; requests may choose another draft; a disconnect frees both models\' pages', async () => {
  const t = await load(TARGET, { threads: 1, contextLength: 1024, parallel: 8, promptCache: 0 });
  const d = await load(DRAFT, { threads: 1, contextLength: 1024, parallel: 8 });
  const drafter = new DraftModel(d.model, { name: 'draft model' });
  const draftCaches = () => drafter.sequences;
  const server = new TesseraServer();
  const { port } = await server.listen(0, '127.0.0.1');
  server.ready(t, { draft: drafter, gamma: 3 });
  const url = `http://127.0.0.1:${port}`;
  try {
    const prompts = ['The key is 4417. Remember the key. The key is', 'Once upon a time there was a', 'alpha beta gamma alpha beta gamma alpha'];
    const ask = (prompt: string, extra: Record<string, unknown>) => post(`${url}/v1/completions`, { prompt, max_tokens: 24, temperature: 0, ...extra });
    // plain: `speculate: null` opts out of the server's default
    const plain = await Promise.all(prompts.map(async (p) => (await ask(p, { speculate: null })).json.choices[0].text as string));
    assert.equal(await specDrafts(url), 0, 'the plain requests did not speculate');
    for (const [i, p] of prompts.entries()) {
      const r = await ask(p, {});
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.choices[0].text, plain[i], `alone: ${p}`);
    }
    const drafts = await specDrafts(url);
    assert.ok(drafts > 0, 'the default requests speculated with the draft model');
    // a batch: every prompt with the draft model, with prompt lookup, and plain, at once
    const mixed = await Promise.all(prompts.flatMap((p) => [ask(p, {}), ask(p, { speculate: 'draft=prompt-lookup,gamma=2' }), ask(p, { speculate: null })]));
    mixed.forEach((r, k) => assert.equal(r.json.choices[0].text, plain[Math.floor(k / 3)], `batch, request ${k}`));
    assert.ok(await specDrafts(url) > drafts);
    assert.equal(draftCaches(), 0, 'every draft cache was released');
    assert.equal(d.model.kvPages!.used, 0);
    // a request may not name a file
    const file = await ask(prompts[0]!, { speculate: 'draft=model:/etc/passwd' });
    assert.equal(file.status, 400);
    assert.equal(file.json.error.param, 'speculate');
    assert.match(file.json.error.message, /cannot be named in a request/);

    // disconnect mid-stream: the sequence, its draft cache and both models' pages are freed
    const ctl = new AbortController();
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ prompt: prompts[1], max_tokens: 400, temperature: 0, ignore_eos: true, stream: true }), signal: ctl.signal });
    let chunks = 0;
    for await (const data of sseData(r.body!)) if (data.startsWith('{') && ++chunks >= 3) break;
    assert.ok(draftCaches() === 1 && d.model.kvPages!.used > 0, 'the draft cache was in use mid-stream');
    ctl.abort();
    assert.ok(await until(() => t.model.kvPages!.used === 0 && d.model.kvPages!.used === 0 && draftCaches() === 0),
      `pages in use after the disconnect: target ${t.model.kvPages!.used}, draft ${d.model.kvPages!.used}`);
    assert.equal(Scheduler.of(t.model).stats.running, 0);
  } finally {
    await server.shutdown(1000);
    drafter.dispose();
    d.dispose();
    t.dispose();
  }
});

test('a draft model is given to ready() once: not as a constructor spec, not twice', () => {
  assert.throws(() => new TesseraServer({ speculate: `draft=model:${DRAFT}` }), /pass the loaded DraftModel to ready\(\)/);
  const server = new TesseraServer({ speculate: 'draft=prompt-lookup' });
  assert.throws(() => server.ready({} as never, { draft: 'prompt-lookup' }), /not both/);
});

test('tessera serve --speculate draft=model:PATH loads the draft once and speculates with it; --help says so', async () => {
  const help = spawn(process.execPath, ['dist/src/cli/main.js', 'serve', '--help']);
  let text = '';
  help.stdout.on('data', (b) => { text += b; });
  await new Promise((resolve) => help.on('exit', resolve));
  assert.match(text, /draft=model:PATH/);

  const child = spawn(process.execPath, ['dist/src/cli/main.js', 'serve', '--model', TARGET, '--speculate', `draft=model:${DRAFT},gamma=3`, '--port', '0', '--threads', '1', '--ctx', '512'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (b) => { log += b; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    assert.ok(await until(() => /ready: model/.test(log), 30_000), log);
    assert.match(log, /speculating with draft model long-context-draft/);
    const url = /listening on (http:\/\/[^ ]+)/.exec(log)![1]!;
    const prompt = 'The key is 4417. Remember the key. The key is';
    const a = await post(`${url}/v1/completions`, { prompt, max_tokens: 16, temperature: 0 });
    const b = await post(`${url}/v1/completions`, { prompt, max_tokens: 16, temperature: 0, speculate: null });
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(a.json.choices[0].text, b.json.choices[0].text);
    assert.ok(await specDrafts(url) > 0);
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
  } finally { child.kill('SIGKILL'); }
});
