// Ctrl-C always stops `tessera generate`: whatever the process is doing when SIGINT arrives
// (starting Node, loading, tokenising, prefilling, decoding, printing), one signal ends it within a
// bounded time. Before the handler is installed the default action ends the process; once it is
// installed, the signal aborts the generation (the text so far and the stats are printed, exit 0;
// a second one exits 130 at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Bound from the signal to the process's exit (generous: the machine may be loaded). */
const BOUND_MS = 10_000;

interface Ended { code: number | null; signal: NodeJS.Signals | null; afterSignalMs: number; stderr: string }

/** Starts a generation that would run for many seconds (7,500 tokens, eos ignored, in a context
 *  stretched past the trained 2,048 — fine here: only the time matters), sends SIGINT after
 *  `delayMs` (or, with `onText`, once the first generated text arrives) and reports how the process ended. */
function interrupt(delayMs: number, onText = false): Promise<Ended> {
  const p = spawn(process.execPath, [MAIN, 'generate', '--model', join(ROOT, 'models/default'), '--prompt', 'Once upon a time '.repeat(60),
    '--ctx', '8192', '--max-tokens', '7500', '--ignore-eos', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '', sentAt = 0, done = false;
  p.stdout.on('data', () => { if (onText) send(); });
  const send = () => {
    if (sentAt || done) return;
    sentAt = Date.now();
    p.kill('SIGINT');
  };
  p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  if (!onText) setTimeout(send, delayMs);
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`still running ${BOUND_MS} ms after SIGINT (sent: ${sentAt > 0}); stderr:\n${stderr}`)); }, BOUND_MS + 60_000);
    p.on('exit', (code, signal) => {
      done = true;
      clearTimeout(guard);
      resolve({ code, signal, afterSignalMs: sentAt ? Date.now() - sentAt : -1, stderr });
    });
  });
}

test('one SIGINT stops generate at every stage, within a bound', async () => {
  // delays spread over start-up, loading, prefill and decoding (a full run takes several seconds)
  for (const delayMs of [0, 30, 100, 200, 400, 700, 1000, 1500]) {
    const r = await interrupt(delayMs);
    if (r.afterSignalMs < 0) assert.fail(`delay ${delayMs} ms: the generation finished before the signal; make it longer`);
    assert.ok(r.afterSignalMs < BOUND_MS, `delay ${delayMs} ms: exited ${r.afterSignalMs} ms after SIGINT`);
    // killed by the default action (before the handler), or stopped cleanly by it
    if (r.signal !== null) assert.equal(r.signal, 'SIGINT', `delay ${delayMs} ms`);
    else {
      assert.equal(r.code, 0, `delay ${delayMs} ms: ${r.stderr}`);
      assert.match(r.stderr, /finish: abort/, `delay ${delayMs} ms: a stopped generation says so`);
    }
  }
});

test('SIGINT once decoding has started: the stats of the stopped generation, exit 0', async () => {
  const r = await interrupt(0, true);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /generated: \d+ tokens .*finish: abort/);
  assert.ok(r.afterSignalMs < BOUND_MS);
});
