// This process's memory as a soak or a fuzz run compares it: after a pause and a full garbage
// collection. The pause matters as much as the collection: under load V8 grows its young generation
// and gives it back only once allocation has stopped for a while (its memory reducer), and
// kept-alive connections close after the server's keep-alive timeout (5 s). Measured straight after a
// burst, the heap's committed size, and RSS with it, swings by tens of MiB from one measurement to
// the next with no change in what the heap holds.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** How long to stay idle before measuring. */
export const SETTLE_MS = 10_000;

export interface SettledMemory {
  /** Resident set, bytes. */
  rss: number;
  /** V8 heap: bytes in live objects, and bytes committed for it. */
  heapUsed: number;
  heapCommitted: number;
  /** Memory of C++ objects bound to JS (Buffers and the like), bytes. */
  external: number;
}

/** A full collection now (without starting Node with --expose-gc, which worker threads refuse). */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Waits `idleMs` (the caller sends nothing meanwhile), collects garbage, and measures. */
export async function settledMemory(idleMs = SETTLE_MS): Promise<SettledMemory> {
  await new Promise((resolve) => setTimeout(resolve, idleMs));
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapCommitted: m.heapTotal, external: m.external };
}
