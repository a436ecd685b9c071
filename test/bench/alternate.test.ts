// `tessera bench --rounds`: Tessera and a llama.cpp child alternate decode blocks. The child here is a
// stand-in speaking bench-llamacpp.mjs's --rounds protocol (node-llama-cpp is not installed in CI),
// reporting block seconds the test chose, so the llama.cpp row's median and range are known exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchAlternating } from '../../src/bench/alternate.js';
import { formatTable } from '../../src/bench/run.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';

/** A fake bench-llamacpp.mjs: `ready` after "prefill" (at 123.5 tok/s), then a prefill
 *  per "prefill" line before the first block (seconds of PREFILL_LIST in turn), and one block per
 *  "decode" line with the seconds of SECONDS in turn; with FAIL_AT it dies at that block instead. */
const FAKE = `
import { createInterface } from 'node:readline';
const seconds = JSON.parse(process.env.SECONDS_LIST), failAt = Number(process.env.FAIL_AT ?? -1);
if (process.env.NOT_READY) { console.log(JSON.stringify({ hello: 1 })); process.exit(0); }
console.log('loading…');
console.log(JSON.stringify({ ready: true, prefillTokensPerSecond: 123.5, ctx: 1 }));
const prefills = JSON.parse(process.env.PREFILL_LIST ?? '[]');
let r = 0, p = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'prefill' && r === 0) { console.log(JSON.stringify({ prefillSeconds: prefills[p++] })); continue; }
  if (line !== 'decode') { process.stderr.write('bad line ' + line); process.exit(2); }
  if (r === failAt) { process.stderr.write('llama.cpp fell over at block ' + r); process.exit(3); }
  console.log(JSON.stringify({ round: r, decodeSeconds: seconds[r++] }));
}
`;

test('benchAlternating: median and range per engine, blocks alternating, the child\'s failures named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-alternate-'));
  const saved = { ...process.env };
  try {
    const file = writeTestCheckpoint(join(dir, 'm'), 'smollm2-tiny', { formats: ['gguf-f32'] }).gguf.f32!;
    const script = join(dir, 'fake-llamacpp.mjs');
    writeFileSync(script, FAKE);
    process.env.SECONDS_LIST = JSON.stringify([0.5, 0.1, 0.3, 0.2, 0.4]);
    const order: string[] = [];
    const o = { threads: 1, decodeTokens: 4, rounds: 5, cacheDType: 'f16' as const, script, onBlock: (e: string, r: number) => order.push(`${e} ${r}`) };
    const [ours, theirs] = await benchAlternating(file, 'tiny', 'f32', 16, o);
    assert.equal(theirs.engine, 'llama.cpp');
    assert.equal(theirs.prefillTps, 123.5);
    assert.ok(Math.abs(theirs.decodeTps - 4 / 0.3) < 1e-9, `median block 0.3 s: ${theirs.decodeTps}`);
    assert.deepEqual(theirs.decodeRange!.map((x) => Math.round(x * 1e6) / 1e6), [4 / 0.5, 4 / 0.1].map((x) => Math.round(x * 1e6) / 1e6));
    assert.equal(ours.engine, 'tessera');
    assert.ok(ours.decodeRange![0] <= ours.decodeTps && ours.decodeTps <= ours.decodeRange![1], JSON.stringify(ours));
    assert.ok(ours.prefillTps > 0 && ours.decodeBytesPerToken > 0);
    assert.deepEqual(order, ['tessera 0', 'llama.cpp 0', 'llama.cpp 1', 'tessera 1', 'tessera 2', 'llama.cpp 2', 'llama.cpp 3', 'tessera 3', 'tessera 4', 'llama.cpp 4']);

    // --prefill-rounds 4: three more prefills per engine, alternating before the blocks; the median
    // of llama.cpp's four (16/123.5 s from "ready"'s 123.5 tok/s, then 0.02, 0.04, 0.005 s) and their range
    process.env.PREFILL_LIST = JSON.stringify([0.02, 0.04, 0.005]);
    order.length = 0;
    const [ours4, theirs4] = await benchAlternating(file, 'tiny', 'f32', 16, { ...o, rounds: 2, prefillRounds: 4 });
    const theirSeconds = [16 / 123.5, 0.02, 0.04, 0.005].sort((a, b) => a - b);
    assert.ok(Math.abs(theirs4.prefillTps - 16 / ((theirSeconds[1]! + theirSeconds[2]!) / 2)) < 1e-6, `median prefill: ${theirs4.prefillTps}`);
    assert.deepEqual(theirs4.prefillRange!.map((x) => Math.round(x * 1e6)), [123.5, 16 / 0.005].map((x) => Math.round(x * 1e6)));
    assert.ok(ours4.prefillRange![0] <= ours4.prefillTps && ours4.prefillTps <= ours4.prefillRange![1], JSON.stringify(ours4));
    assert.deepEqual(order, ['prefill llama.cpp 1', 'prefill tessera 1', 'prefill tessera 2', 'prefill llama.cpp 2', 'prefill llama.cpp 3',
      'prefill tessera 3', 'tessera 0', 'llama.cpp 0', 'llama.cpp 1', 'tessera 1']);
    assert.equal(theirs.prefillRange, undefined, 'one prefill: no range');
    // the table: each prefill's median with its range, the ratio of the medians, and what they are
    const table = formatTable([ours4, theirs4], 1e10, undefined, { rounds: 2, tokens: 4, prefills: 4 });
    assert.match(table, /prefill tok\/s: the median of 4 prefills of the same prompt/);
    assert.match(table, new RegExp(`\\| llama\\.cpp \\| 1 \\| ${theirs4.prefillTps.toFixed(1)} \\(123\\.5–3200\\.0\\) \\|`));
    assert.ok(table.includes(`| ${(ours4.prefillTps / theirs4.prefillTps).toFixed(2)} |\n`), table);
    delete process.env.PREFILL_LIST;

    process.env.FAIL_AT = '2';
    await assert.rejects(benchAlternating(file, 'tiny', 'f32', 16, o), /llama\.cpp bench exited with 3: llama\.cpp fell over at block 2/);
    delete process.env.FAIL_AT;
    process.env.NOT_READY = '1';
    await assert.rejects(benchAlternating(file, 'tiny', 'f32', 16, o), /llama\.cpp bench: expected its "ready" line/);
  } finally {
    process.env = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
