// This process's memory as a soak or a fuzz run compares it: once the process has stopped giving
// memory back. Measured straight after a burst, RSS swings by tens of MiB with no change in what the
// heap holds: under load V8 grows its young generation and leaves old-space pages committed but
// empty; a full collection shrinks both, but the pages it frees stay mapped (and resident) and go
// back to the system only over the following seconds and collections — 10 to 40 s after a burst of
// the request fuzz, whether or not V8's memory reducer ran (docs/RELIABILITY.md "Request fuzzing").
// So the measurement repeats "idle, then collect" until RSS has stopped moving (SETTLED_ROUNDS
// measurements within SETTLED_RSS_BYTES). Kept-alive connections close meanwhile (the server's
// keep-alive timeout is 5 s). A plain full collection evacuates only the old-space pages V8's
// heuristic picks (mostly empty ones), so the free space left inside the others — 0.3 to 1.7 MiB
// after a pass of the request fuzz, varying pass to pass — counts in RSS; with `compact` the first
// collection of a measurement evacuates every page with free space (docs/RELIABILITY.md, "Memory
// after the request fuzz").

import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readFileSync } from 'node:fs';

/** How long to stay idle before each collection. */
export const SETTLE_MS = 10_000;
/** RSS is settled when SETTLED_ROUNDS measurements in a row, SETTLE_MS apart, lie within this of
 *  each other (two of V8's 256 KiB pages). Three, not two: with two, a run stopped at 118.5 → 118.0
 *  MiB, 36 MiB above its baseline, while other settles took 3 to 5 rounds to stop falling. */
export const SETTLED_RSS_BYTES = 512 * 1024;
export const SETTLED_ROUNDS = 3;
/** How long to stay quiet after each collection before reading RSS: V8 gives freed pages back from
 *  its background threads (the sweeper, the unmapper) after the collection has returned, so a
 *  reading straight after it races them; in one short fuzz run RSS fell 1.0 MiB between two reads
 *  made milliseconds apart after a collection. */
export const QUIET_AFTER_GC_MS = 2000;
/** Fewest repetitions, whatever RSS does: V8 flushes the bytecode of a function that has not run for
 *  5 full collections (`--bytecode-old-age`), so code only the traffic runs is given back at the
 *  sixth collection after it; a reading after fewer collections kept it and one after more did not,
 *  which moved the request fuzz's readings by 1.1 MiB between points (docs/RELIABILITY.md, "Memory
 *  after the request fuzz"). Six rounds put every point past it. */
export const MIN_SETTLE_ROUNDS = 6;
/** Most repetitions: a process that never settles is measured anyway (and says so). */
export const MAX_SETTLE_ROUNDS = 12;

/** Baseline measurements repeated with no traffic in between, to find the noise floor. */
export const NOISE_SAMPLES = 3;

/** One V8 heap space: what is committed for it and how much of that is resident, bytes. */
export interface HeapSpaceMemory { committed: number; resident: number; used: number }

export interface SettledMemory {
  /** Resident set, bytes, counted page by page (residentBytes). */
  rss: number;
  /** The kernel's running RSS counter at the same moment (process.memoryUsage().rss), bytes: on
   *  Linux 6.2 and later an approximation (see residentBytes); kept to show how far it is off. */
  rssCounter: number;
  /** V8 heap: bytes in live objects, and bytes committed for it. */
  heapUsed: number;
  heapCommitted: number;
  /** Memory of C++ objects bound to JS (Buffers and the like), bytes. */
  external: number;
  /** Per V8 space (new_space, old_space, code_space, large_object_space, …). */
  spaces: Record<string, HeapSpaceMemory>;
  /** Idle-and-collect repetitions it took, and whether RSS settled within MAX_SETTLE_ROUNDS. */
  rounds: number;
  settled: boolean;
  /** RSS after the first repetition, bytes: what one idle wait and one collection would have measured. */
  rssFirstRound: number;
  /** RSS read straight after the last collection, before the quiet wait (QUIET_AFTER_GC_MS), bytes:
   *  shows what the background threads gave back meanwhile. */
  rssRightAfterCollection: number;
  /** Where RSS lies, bytes, from /proc/self/smaps (Linux only): see RssParts. */
  rssParts?: RssParts;
  /** Bytes of ArrayBuffers and SharedArrayBuffers, part of `external` (process.memoryUsage()). */
  arrayBuffers: number;
}

/** RSS by what holds it, bytes. The anonymous mappings are told apart by shape, since they carry no
 *  name: executable ones hold compiled code (V8 maps its code pages read-write-execute); glibc's per-thread malloc arenas are 64 MiB regions aligned to 64 MiB (a read-write part
 *  followed by its unused, inaccessible rest); V8 reserves 8–10 GiB around each WebAssembly memory
 *  (its read-write part followed by the inaccessible guard region); a thread's stack sits above a
 *  one-page guard. What is left is mostly V8's heap pages and code, and blocks malloc maps on their
 *  own (at or above its mmap threshold). */
export interface RssParts {
  /** The C allocator's main arena (`[heap]`, grown with brk). */
  brk: number;
  /** glibc's other malloc arenas (threads other than the main one allocate there). */
  arenas: number;
  /** WebAssembly memories. */
  wasm: number;
  /** Thread stacks, the main thread's included. */
  stacks: number;
  /** Executable anonymous mappings: V8's compiled JavaScript (code space) and WebAssembly code. */
  code: number;
  /** Other anonymous mappings: V8's heap pages, malloc's own large mappings, the rest. */
  otherAnonymous: number;
  /** Mapped files (the node binary, shared libraries, model files mapped in). */
  file: number;
}

/** The parts in the order tables print them, with the names they print. */
export const RSS_PART_NAMES: readonly (readonly [keyof RssParts, string])[] = [
  ['brk', 'the C heap (brk)'], ['arenas', "glibc's other malloc arenas"], ['wasm', 'WebAssembly memories'],
  ['stacks', 'thread stacks'], ['code', 'compiled code (JavaScript and WebAssembly)'],
  ['otherAnonymous', 'other anonymous mappings (V8 heap, large mallocs)'], ['file', 'mapped files'],
];

const ARENA_BYTES = 64 * 2 ** 20;            // glibc's HEAP_MAX_SIZE on 64-bit systems
const WASM_RESERVATION_BYTES = 4 * 2 ** 30;  // V8's reservations for a Wasm memory are larger than this
const PAGE_BYTES = 4096;

/** Sorts the mappings of an smaps text (the format of /proc/PID/smaps) into RssParts. */
export function rssPartsOf(smaps: string): RssParts {
  const maps: { start: number; end: number; perms: string; name: string; rss: number }[] = [];
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head !== null) { maps.push({ start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, name: head[4]!, rss: 0 }); continue; }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null && maps.length > 0) maps[maps.length - 1]!.rss += Number(rss[1]) * 1024;
  }
  const parts: RssParts = { brk: 0, arenas: 0, wasm: 0, stacks: 0, code: 0, otherAnonymous: 0, file: 0 };
  const inaccessible = (m: (typeof maps)[number] | undefined) => m !== undefined && m.name === '' && m.perms.startsWith('---');
  for (const [i, m] of maps.entries()) {
    if (m.name === '[heap]') { parts.brk += m.rss; continue; }
    if (m.name === '[stack]') { parts.stacks += m.rss; continue; }
    if (m.name !== '' && !m.name.startsWith('[')) { parts.file += m.rss; continue; }
    if (m.name !== '') { parts.otherAnonymous += m.rss; continue; }    // [vdso], [vvar] and the like
    if (m.perms.includes('x')) { parts.code += m.rss; continue; }
    const next = maps[i + 1], prev = maps[i - 1];
    const reserved = m.end - m.start + (inaccessible(next) && next!.start === m.end ? next!.end - next!.start : 0);
    if (m.start % ARENA_BYTES === 0 && reserved === ARENA_BYTES) parts.arenas += m.rss;
    else if (reserved >= WASM_RESERVATION_BYTES) parts.wasm += m.rss;
    else if (inaccessible(prev) && prev!.end === m.start && prev!.end - prev!.start === PAGE_BYTES && (m.end - m.start) % 2 ** 20 === 0) parts.stacks += m.rss;
    else parts.otherAnonymous += m.rss;
  }
  return parts;
}

/** The resident set, bytes, as /proc/self/smaps_rollup counts it: the kernel walks the page tables,
 *  so the count is exact. Not process.memoryUsage().rss: that reads the kernel's running counters,
 *  which since Linux 6.2 are per-CPU counters read without adding up the per-CPU remainders: one
 *  settled point of a request fuzz read 1.0 MiB above the page-table count made a moment before
 *  (docs/RELIABILITY.md, "Memory after the request fuzz"). Off Linux, the counter. */
export function residentBytes(): number {
  try {
    const m = /^Rss:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    if (m !== null) return Number(m[1]) * 1024;
  } catch { /* not Linux, or a kernel before 4.14 */ }
  return process.memoryUsage().rss;
}

function rssParts(): RssParts | undefined {
  let text: string;
  try { text = readFileSync('/proc/self/smaps', 'utf8'); } catch { return undefined; }
  return rssPartsOf(text);
}

/** The C allocator's settings in this process's environment (glibc reads MALLOC_* and GLIBC_TUNABLES
 *  once, at process start), as NAME=value: results say which ones the measured process ran with. */
export function allocatorEnvironment(): string[] {
  return Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES').map(([k, x]) => `${k}=${x}`);
}

/** A full collection now (without starting Node with --expose-gc, which worker threads refuse).
 *  `compact`: this one collection evacuates every old- and code-space page that has free space, not
 *  only the mostly empty ones V8's heuristic picks, so what stays committed is what is live. */
export function collectGarbage(compact = false): void {
  setFlagsFromString('--expose-gc');
  if (compact) setFlagsFromString('--compact-on-every-full-gc');
  try { (runInNewContext('gc') as () => void)(); } finally { if (compact) setFlagsFromString('--no-compact-on-every-full-gc'); }
}

function measure(rounds: number, settled: boolean, rssFirstRound: number, rssRightAfterCollection: number): SettledMemory {
  const m = process.memoryUsage();
  const spaces: Record<string, HeapSpaceMemory> = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = { committed: s.space_size, resident: s.physical_space_size, used: s.space_used_size };
  return { rss: residentBytes(), rssCounter: m.rss, heapUsed: m.heapUsed, heapCommitted: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces, rounds, settled, rssFirstRound, rssRightAfterCollection, rssParts: rssParts() };
}

/** Waits `idleMs`, collects garbage and stays quiet a moment (QUIET_AFTER_GC_MS, at most `idleMs`)
 *  before reading RSS (the caller sends nothing meanwhile), again until RSS has settled, then
 *  measures. `idleMs` 0: one collection, measured at once (a quick check of the heap). */
export async function settledMemory(idleMs = SETTLE_MS, opts: { compact?: boolean } = {}): Promise<SettledMemory> {
  if (idleMs === 0) { collectGarbage(opts.compact); const rss = residentBytes(); return measure(1, false, rss, rss); }
  const quietMs = Math.min(QUIET_AFTER_GC_MS, idleMs);
  const seen: number[] = [];
  let rightAfter = 0;
  for (let round = 1; round <= MAX_SETTLE_ROUNDS; round++) {
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    collectGarbage(opts.compact === true && round === 1);
    rightAfter = residentBytes();
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    seen.push(residentBytes());
    const last = seen.slice(-SETTLED_ROUNDS);
    if (round >= MIN_SETTLE_ROUNDS && Math.max(...last) - Math.min(...last) <= SETTLED_RSS_BYTES) return measure(round, true, seen[0]!, rightAfter);
  }
  return measure(MAX_SETTLE_ROUNDS, false, seen[0]!, rightAfter);
}

/** The noise floor of a baseline — the largest distance of a repeat (measured with no traffic in
 *  between) from it — and the tolerance for a later measurement compared with it: twice the larger of
 *  the floor and the settling criterion, since each of the two compared measurements carries that
 *  error on its own. Bytes. */
export function rssTolerance(baseline: SettledMemory, repeats: SettledMemory[]): { noiseFloor: number; tolerance: number } {
  const noiseFloor = Math.max(0, ...repeats.map((m) => Math.abs(m.rss - baseline.rss)));
  return { noiseFloor, tolerance: 2 * Math.max(noiseFloor, SETTLED_RSS_BYTES) };
}
