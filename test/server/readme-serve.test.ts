// The README's server example, run as written (only the port is a free one instead of 8080): the
// `npx tessera serve` line starts the server, and every curl line gets a good answer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { until } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('README "Server" example: serve starts, each curl line is answered', async () => {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const block = /## Server \(OpenAI-compatible\)\n```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README has the Server section with a sh block');
  const lines = block[1]!.trim().split('\n');
  const serve = lines[0]!;
  assert.match(serve, /^npx tessera serve .*--port 8080$/);
  const args = serve.replace(/^npx tessera /, '').replace('--port 8080', '--port 0').split(' ');
  const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args, '--threads', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  try {
    assert.ok(await until(() => /ready: model/.test(log), 30_000), log);
    const address = /listening on http:\/\/([^ ]+)/.exec(log)![1]!;
    const curls = lines.slice(1);
    assert.ok(curls.length >= 4 && curls.every((l) => l.startsWith('curl ') && l.includes('127.0.0.1:8080')));
    const out = curls.map((l) => {
      const r = spawnSync('bash', ['-c', l.replaceAll('127.0.0.1:8080', address)], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${l}\n${r.stderr}`);
      return r.stdout;
    });
    assert.deepEqual(JSON.parse(out[0]!), { status: 'ok' });
    const chat = JSON.parse(out[1]!);
    assert.equal(chat.object, 'chat.completion');
    assert.ok(chat.choices[0].message.content.length > 0);
    assert.match(out[2]!, /^data: \{.*"text_completion"[\s\S]*"usage":\{"prompt_tokens":\d+[\s\S]*\n\ndata: \[DONE\]\n\n$/);
    assert.match(out[3]!, /^# HELP tessera:num_requests_running/);
    assert.match(out[3]!, /tessera:generation_tokens_total [1-9]/);
  } finally { child.kill('SIGTERM'); }
});
