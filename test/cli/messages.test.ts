// Careless command lines, run as a user runs them: each row used to succeed with wrong output or fail
// with a message about something else (an internal function, the model path); now it must exit with
// the code shown and a message that names the real problem.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf, type GgufWriteType } from '../../src/formats/gguf-writer.js';
import type { GgufType, GgufValue } from '../../src/formats/gguf.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tessera-messages-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const ck = writeTestCheckpoint(join(dir, 'ck'), 'smollm2-tiny', { formats: ['hf', 'gguf-f32'] });
const model = ck.hfDir!;

/** The f32 GGUF with one metadata value replaced. */
function withMetadata(key: string, value: GgufValue, type: GgufType): string {
  const f = openGguf(ck.gguf.f32!);
  const metadata = new Map<string, { type: GgufType; value: GgufValue }>();
  for (const [k, v] of f.metadata) if (k !== 'general.alignment') metadata.set(k, { type: f.metadataTypes.get(k)!, value: v });
  metadata.set(key, { type, value });
  const tensors = [...f.tensors.values()].map((e) => {
    const data = new Uint8Array(e.byteLength);
    f.read(e, data);
    return { name: e.name, ggmlType: e.ggmlType as GgufWriteType, shape: e.shape, data };
  });
  f.close();
  const out = join(dir, `${key}.gguf`);
  writeGguf(out, metadata, tensors);
  return out;
}

function tessera(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000, input, stdio: ['pipe', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const gen = ['generate', '--threads', '1', '--max-tokens', '2', '--prompt', 'Once upon a time, in a small town near the sea, the quick brown fox'];

test('careless command lines: the exit code and a message naming the real problem', () => {
  const rows: { what: string; args: string[]; input?: string; code: number; stderr: RegExp; not?: RegExp }[] = [
    { what: 'GGUF context_length 0', args: [...gen, '--model', withMetadata('llama.context_length', 0, 'u32')], code: 1,
      stderr: /llama\.context_length = 0 must be a positive integer/, not: /got undefined/ },
    { what: '--ctx 1e15', args: [...gen, '--model', model, '--ctx', '1e15'], code: 1,
      stderr: /contextLength 1000000000000000 is more than the 16777216 tokens Tessera supports \(this model was trained for 512\)/, not: /planArena/ },
    { what: '--repeat-penalty 1e-308', args: [...gen, '--model', model, '--repeat-penalty', '1e-308', '--temperature', '0'], code: 1,
      stderr: /repetitionPenalty = 1e-308 turns the logit [\d.e+-]+ of token \d+ into Infinity: use a penalty near 1/, not: /no finite maximum/ },
    { what: 'chat --max-tokens 1e12', args: ['chat', '--model', model, '--threads', '1', '--max-tokens', '1e12'], input: 'hello\n', code: 1,
      stderr: /--max-tokens 1000000000000 leaves no room for the conversation in the context of 512 tokens/ },
    { what: 'chat on piped input that outgrows the context', args: ['chat', '--model', model, '--threads', '1', '--ctx', '24', '--max-tokens', '4', '--temperature', '0'],
      input: `${'word '.repeat(40)}\n`, code: 1, stderr: /the conversation no longer fits the context of 24 tokens/ },
    { what: '--ctx beyond max_position_embeddings', args: [...gen, '--model', model, '--ctx', '1024'], code: 0,
      stderr: /warning: --ctx 1024 is beyond the 512 positions this model was trained for/ },
    { what: 'info --ctx beyond max_position_embeddings', args: ['info', '--model', model, '--ctx', '1024'], code: 0,
      stderr: /warning: --ctx 1024 is beyond the 512 positions this model was trained for/ },
    { what: 'eval --operator --budgets -1,2', args: ['eval', '--model', model, '--operator', '--budgets', '-1,2', '--length', '64', '--out', join(dir, 'op')], code: 1,
      stderr: /budget -1 is not a fraction of the keys in \(0, 1\]/ },
    { what: 'eval --operator --budgets 0.1,2', args: ['eval', '--model', model, '--operator', '--budgets', '0.1,2', '--length', '64', '--out', join(dir, 'op')], code: 1,
      stderr: /budget 2 is not a fraction of the keys/ },
  ];
  for (const row of rows) {
    const r = tessera(row.args, row.input);
    assert.equal(r.code, row.code, `${row.what}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, row.stderr, row.what);
    if (row.not) assert.doesNotMatch(r.stderr, row.not, row.what);
  }
});
