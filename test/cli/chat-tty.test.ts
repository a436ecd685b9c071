// `tessera chat` in a real pseudo-terminal (python3's pty module drives it as a user's keyboard would):
// Ctrl-C drops a half-typed line, and Ctrl-C at an empty prompt quits with the cursor on a fresh line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

// Runs argv in a pty; for each step waits until the output holds `wait` (a prompt), then types `send`.
// Prints {"out": everything the terminal showed, "status": exit status}.
const DRIVER = String.raw`
import json, os, pty, select, sys, time
argv, steps = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, seen = b'', 0
def read(until, timeout):
    global out
    end = time.time() + timeout
    while time.time() < end:
        if until is not None and until(out): return True
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try: chunk = os.read(fd, 4096)
            except OSError: return until is None
            if not chunk: return until is None
            out += chunk
    return False
for wait, send in steps:
    count = out.count(wait.encode())
    if not read(lambda o: o.count(wait.encode()) > count, 60): break
    time.sleep(0.2)
    os.write(fd, send.encode())
read(None, 60)
_, status = os.waitpid(pid, 0)
print(json.dumps({'out': out.decode('utf-8', 'replace'), 'status': os.waitstatus_to_exitcode(status)}))
`;

function hasPython(): boolean {
  return spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;
}

test('Ctrl-C drops a half-typed line; Ctrl-C at the empty prompt quits and leaves the terminal on a fresh line', { skip: hasPython() ? false : 'python3 with pty is needed to drive a pseudo-terminal' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-chat-tty-'));
  try {
    const ck = writeTestCheckpoint(dir, 'smollm2-tiny', { formats: ['hf'] });
    const argv = [process.execPath, MAIN, 'chat', '--model', ck.hfDir!, '--threads', '1', '--stats'];
    // the prompt is '> ': type half a line, Ctrl-C, then Ctrl-C again at the fresh empty prompt
    const steps = [['> ', 'never sent'], ['never sent', '\x03'], ['> ', '\x03']];
    const r = spawnSync('python3', ['-c', DRIVER, JSON.stringify(argv), JSON.stringify(steps)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { out: string; status: number };
    const out = shown.out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''); // readline's cursor moves
    const status = shown.status;
    assert.equal(status, 0, out);
    assert.doesNotMatch(out, /prompt: \d+ tokens/, 'the half-typed line was not sent to the model');
    const prompts = out.split('> ').length - 1;
    assert.ok(prompts >= 2, `a fresh prompt after the first Ctrl-C: ${JSON.stringify(out)}`);
    // after the last prompt the terminal got a line break: the shell's prompt starts on its own line
    const tail = out.slice(out.lastIndexOf('> ') + 2);
    assert.match(tail, /^\r?\n/, `after the last prompt: ${JSON.stringify(tail)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
