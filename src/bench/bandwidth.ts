// What memory bandwidth this machine sustains for reading, measured with native code (memcmp over
// two large equal buffers, via Buffer.compare) on `threads` threads at once. Decoding is bound by
// reading weights and KV rows, so this is the ceiling that decode throughput is compared against.

import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bytes = workerData.bytes;
const a = Buffer.alloc(bytes, 7), b = Buffer.alloc(bytes, 7);
parentPort.postMessage('ready');
parentPort.once('message', () => {
  const t0 = process.hrtime.bigint();
  let r = 0;
  for (let i = 0; i < workerData.repeats; i++) r += Buffer.compare(a, b);
  const t1 = process.hrtime.bigint();
  parentPort.postMessage({ seconds: Number(t1 - t0) / 1e9, check: r });
});
`;

/** Sustained read bandwidth in bytes/s with `threads` threads each reading 2 × `bytesPerThread`. */
export async function measureReadBandwidth(threads: number, bytesPerThread = 256 * 2 ** 20, repeats = 8): Promise<number> {
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: { bytes: bytesPerThread, repeats } }));
  try {
    await Promise.all(workers.map((w) => new Promise((res) => w.once('message', res))));
    const results = await Promise.all(workers.map((w) => {
      const p = new Promise<{ seconds: number }>((res) => w.once('message', res));
      w.postMessage('go');
      return p;
    }));
    const slowest = Math.max(...results.map((r) => r.seconds));
    return (threads * 2 * bytesPerThread * repeats) / slowest;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
