// The README's JavaScript API example, run as written on the shipped default model: it must run, and
// its chat reply must end by itself (finish_reason 'stop', the model's end-of-turn token) within the
// default reply bound for most seeds — the model was fine-tuned for that (models/default/README.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_REPLY_TOKENS } from '../../src/api/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Reply { choices: { message: { content: string }; finish_reason: string }[]; usage: { completion_tokens: number } }

/** The README's ```js block. */
function readmeExample(): string {
  const m = /```js\n([\s\S]*?)```/.exec(readFileSync(`${ROOT}README.md`, 'utf8'));
  assert.ok(m, 'README.md has a ```js example');
  return m[1];
}

/** Runs the example from the repository root (where `import … from 'tessera'` and models/default
 *  resolve), once per seed (null: as written), and returns each run's `reply`. */
function runExample(seeds: (number | null)[]): Reply[] {
  const lines = readmeExample().split('\n');
  const imports = lines.filter((l) => l.startsWith('import ')).join('\n');
  const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
  const call = 't.chat.completions.create({';
  assert.equal(body.split(call).length, 2, `the example calls ${call}…) once`);
  const runs = seeds.map((seed) => `{\n${seed === null ? body : body.replace(call, `${call} seed: ${seed},`)}\nreplies.push(reply);\n}`);
  const script = `${imports}\nconst replies = [];\n${runs.join('\n')}\nprocess.stderr.write('\\nREPLIES ' + JSON.stringify(replies) + '\\n');\n`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `the README example failed:\n${r.stderr}`);
  const line = r.stderr.split('\n').find((l) => l.startsWith('REPLIES '));
  assert.ok(line, r.stderr);
  return JSON.parse(line.slice('REPLIES '.length)) as Reply[];
}

test('the README API example runs as written on models/default; its replies end by themselves within the bound', () => {
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  const replies = runExample([null, ...seeds]);
  for (const r of replies) {
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok(r.usage.completion_tokens <= DEFAULT_REPLY_TOKENS, `a reply of ${r.usage.completion_tokens} tokens`);
  }
  const stopped = replies.slice(1).filter((r) => r.choices[0].finish_reason === 'stop');
  // measured on the shipped model: all 8 seeds end with 'stop' (64 of 64 replies to 8 messages × 8 seeds at these
  // settings: node dist/src/experiments/chat-ends.js, models/default/README.md); "most" is asserted
  assert.ok(stopped.length >= 6, `only ${stopped.length} of ${seeds.length} seeded replies ended by themselves: ${JSON.stringify(replies.map((r) => r.choices[0]))}`);
});
