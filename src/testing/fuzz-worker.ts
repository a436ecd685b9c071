// The worker of the fuzz command (src/testing/fuzz.ts): runs cases [from, to) of one parser in order,
// reporting through the shared slots and port of src/testing/fuzz-protocol.ts.

import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { fuzzTarget, runCase } from './fuzz-targets.js';
import { SLOT, type FuzzWorkerData, type FuzzWorkerMessage } from './fuzz-protocol.js';

function main(): void {
  const { parser, seed, from, to, scratch, state, port } = workerData as FuzzWorkerData;
  const s = new Float64Array(state);
  const target = fuzzTarget(parser, scratch);
  s[SLOT.ready] = 1;
  let accepted: Record<string, number> = {};
  let refused: Record<string, number> = {};
  let lastFlush = performance.now();
  const flush = (): void => {
    port.postMessage({ type: 'labels', accepted, refused } satisfies FuzzWorkerMessage);
    accepted = {};
    refused = {};
    lastFlush = performance.now();
  };
  for (let i = from; i < to && s[SLOT.stop] === 0; i++) {
    s[SLOT.current] = i;
    const t0 = performance.now();
    const out = runCase(target, parser, seed, i);
    const ms = performance.now() - t0;
    if (ms > s[SLOT.slowestMs]!) { s[SLOT.slowestMs] = ms; s[SLOT.slowestCase] = i; }
    if (out.kind === 'accepted') { accepted[out.label] = (accepted[out.label] ?? 0) + 1; s[SLOT.accepted]!++; }
    else if (out.kind === 'refused') { refused[out.label] = (refused[out.label] ?? 0) + 1; s[SLOT.refused]!++; }
    else { port.postMessage({ type: 'crash', index: i, error: out.label } satisfies FuzzWorkerMessage); s[SLOT.crashes]!++; }
    s[SLOT.done]!++;
    if (performance.now() - lastFlush > 500) flush();
  }
  flush();
  s[SLOT.current] = to;
}

if (parentPort !== null) main();
