// What the fuzz command (src/testing/fuzz.ts) and its workers (src/testing/fuzz-worker.ts) share.
// Per worker, a Float64Array over a SharedArrayBuffer: the worker stores the index of the case it is
// about to run and its outcome counts there, so the watchdog knows which case a hung or killed worker
// was running, and its counts stay exact, without any help from the worker. Labels and crashes go over
// a MessagePort that the watchdog drains synchronously before it terminates a worker. The watchdog
// sets `stop` when the time budget is spent; the worker then ends after its current case.

import type { MessagePort } from 'node:worker_threads';
import type { FuzzParser } from './fuzz-targets.js';

/** Slots of the shared Float64Array of one worker. */
export const SLOT = { current: 0, done: 1, accepted: 2, refused: 3, crashes: 4, slowestMs: 5, slowestCase: 6, ready: 7, stop: 8 } as const;
export const SLOTS = 9;

export interface FuzzWorkerData {
  parser: FuzzParser;
  seed: number;
  from: number;
  to: number;
  scratch: string;
  state: SharedArrayBuffer;
  port: MessagePort;
}

/** A batch of label counts, or one crash. */
export type FuzzWorkerMessage =
  | { type: 'labels'; accepted: Record<string, number>; refused: Record<string, number> }
  | { type: 'crash'; index: number; error: string };
