// A stand-in for src/testing/fuzz-worker.ts that misbehaves on purpose, to test the fuzz command's
// watchdog: case 3 hangs, case 5 throws out of the worker, case 7 exits the worker thread; every
// other case is accepted. It speaks the real worker's protocol (shared state slots, label messages).

import { parentPort, workerData } from 'node:worker_threads';
import { SLOT, type FuzzWorkerData, type FuzzWorkerMessage } from '../../src/testing/fuzz-protocol.js';

function main(): void {
  const { from, to, state, port } = workerData as FuzzWorkerData;
  const s = new Float64Array(state);
  s[SLOT.ready] = 1;
  for (let i = from; i < to; i++) {
    s[SLOT.current] = i;
    if (i === 3) for (;;) { /* hang */ }
    if (i === 5) throw new TypeError('stub failure');
    if (i === 7) process.exit(3);
    s[SLOT.accepted]!++;
    s[SLOT.done]!++;
    port.postMessage({ type: 'labels', accepted: { stub: 1 }, refused: {} } satisfies FuzzWorkerMessage);
  }
  s[SLOT.current] = to;
}

if (parentPort !== null) main();
