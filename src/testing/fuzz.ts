// The long fuzz run: N seeded mutations per parser (GGUF, safetensors, tokenizer.json, config.json,
// chat templates), each case in bounded time and memory, with a table and a JSON file of the results.
//
//   node dist/src/testing/fuzz.js --parser all --n 1000000 --seed 1 --out docs/results/fuzz.json
//   node dist/src/testing/fuzz.js --parser tokenizer --seed 1 --case 1234 --save case.json   # rerun one case
//
// Outcomes: accepted (the input passed every check and the parse was consistent), refused (the
// parser's own error class, naming the input), crash (any other exception, or an accepted input that
// broke an invariant), hang (a case still running after --timeout-ms: the worker is terminated and the
// run goes on from the next case), memory (the process grew past --max-rss-mb, or the worker ran out
// of heap). Case i of a parser depends only on (seed, parser, i), so every failure is reproduced by
// `--case i`. Cases run in worker threads (--jobs of them) watched by the main thread; peak RSS is the
// kernel's high-water mark (VmHWM, reset before each parser) where Linux provides it, else sampled.

import { Worker, MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { UsageError, type FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { FUZZ_PARSERS, fuzzTarget, runCase, caseRand, type FuzzParser } from './fuzz-targets.js';
import { SLOT, SLOTS, type FuzzWorkerData, type FuzzWorkerMessage } from './fuzz-protocol.js';

const FLAGS: FlagSpecs = {
  parser: { type: 'string', description: 'which parser to fuzz', choices: [...FUZZ_PARSERS, 'all'], default: 'all' },
  n: { type: 'integer', description: 'mutations per parser', min: 1, max: 1e9, default: 10_000 },
  seed: { type: 'integer', description: 'seed of the run (case i depends only on seed, parser and i)', min: 0, max: 2 ** 32 - 1, default: 1 },
  from: { type: 'integer', description: 'first case index (to continue a run)', min: 0, default: 0 },
  case: { type: 'integer', description: 'run this one case in this thread and print its outcome', min: 0 },
  save: { type: 'string', description: 'with --case: write the mutant to this file', placeholder: 'PATH' },
  jobs: { type: 'integer', description: 'worker threads', min: 1, max: 64, default: 1 },
  'timeout-ms': { type: 'integer', description: 'a case running longer is a hang', min: 10, default: 10_000 },
  'max-rss-mb': { type: 'integer', description: 'process RSS above this is a memory failure of the running case', min: 64, default: 4096 },
  out: { type: 'string', description: 'write the results as JSON to this file', placeholder: 'PATH' },
  'max-minutes': { type: 'number', description: 'stop each parser after this long; the results record the cases actually run', min: 0.01 },
  'progress-s': { type: 'number', description: 'seconds between progress lines', min: 0.1, default: 10 },
};

export interface CaseRef { index: number; error: string }

export interface ParserResult {
  parser: FuzzParser;
  /** Cases run: fewer than planned when --max-minutes stopped the run. */
  cases: number;
  planned: number;
  /** The case index ranges [from, to) run, one per worker. */
  ranges: [number, number][];
  accepted: number;
  refused: number;
  crashes: number;
  hangs: number;
  memory: number;
  /** What accepted inputs passed ('file+config+tokenizer', …) and how often. */
  acceptedBy: Record<string, number>;
  /** Distinct refusal rules (messages with numbers and quoted values blanked) reached. */
  refusalRules: number;
  topRefusalRules: [string, number][];
  /** The first 20 of each kind of failure. */
  crashCases: CaseRef[];
  hangCases: CaseRef[];
  memoryCases: CaseRef[];
  slowestCaseMs: number;
  slowestCase: number;
  peakRssMiB: number;
  peakRssSource: 'VmHWM' | 'sampled';
  wallSeconds: number;
  casesPerSecond: number;
}

export interface FuzzOptions {
  seed: number;
  from: number;
  n: number;
  jobs: number;
  timeoutMs: number;
  maxRssMb: number;
  progressS: number;
  /** Stop starting cases after this many minutes (default: no limit). */
  maxMinutes?: number;
  /** Worker script (default: fuzz-worker.js next to this file). */
  workerUrl?: URL;
  log?: (line: string) => void;
}

const KEEP = 20;
/** Allowance for a worker to start and build its seeds, before its first case. */
const PREPARE_MS = 120_000;
const MiB = 1024 * 1024;

/** Peak RSS so far (VmHWM) in bytes, or null where /proc is not available. */
function highWaterMark(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0); false where that is not possible. */
function resetHighWaterMark(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return highWaterMark() !== null;
  } catch {
    return false;
  }
}

interface Slice {
  from: number;
  to: number;
  /** Next case to run after the current worker is gone. */
  next: number;
  worker: Worker | null;
  port: MessagePort | null;
  state: Float64Array;
  /** Counts of workers already gone. */
  gone: { accepted: number; refused: number; crashes: number; done: number };
  lastCase: number;
  lastChange: number;
  exited: Promise<void> | null;
}

/** Fuzzes one parser over cases [from, from + n) and returns its results. */
export async function fuzzParser(parser: FuzzParser, o: FuzzOptions): Promise<ParserResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const scratch = mkdtempSync(join(tmpdir(), `tessera-fuzz-${parser}-`));
  const workerUrl = o.workerUrl ?? new URL('./fuzz-worker.js', import.meta.url);
  const res: ParserResult = {
    parser, cases: 0, planned: o.n, ranges: [], accepted: 0, refused: 0, crashes: 0, hangs: 0, memory: 0, acceptedBy: {}, refusalRules: 0,
    topRefusalRules: [], crashCases: [], hangCases: [], memoryCases: [], slowestCaseMs: 0, slowestCase: -1, peakRssMiB: 0,
    peakRssSource: 'sampled', wallSeconds: 0, casesPerSecond: 0,
  };
  const refusedBy = new Map<string, number>();
  const hwm = resetHighWaterMark();
  let sampledPeak = process.memoryUsage.rss();
  const t0 = performance.now();

  const onMessage = (m: FuzzWorkerMessage): void => {
    if (m.type === 'crash') {
      res.crashes++;
      if (res.crashCases.length < KEEP) res.crashCases.push({ index: m.index, error: m.error });
      log(`  ${parser}: CRASH at case ${m.index}: ${m.error.split('\n')[0]}`);
      return;
    }
    for (const [k, v] of Object.entries(m.accepted)) res.acceptedBy[k] = (res.acceptedBy[k] ?? 0) + v;
    for (const [k, v] of Object.entries(m.refused)) refusedBy.set(k, (refusedBy.get(k) ?? 0) + v);
  };

  const per = Math.ceil(o.n / o.jobs);
  const slices: Slice[] = [];
  for (let j = 0; j < o.jobs; j++) {
    const from = o.from + j * per, to = Math.min(o.from + o.n, from + per);
    if (from >= to) break;
    slices.push({ from, to, next: from, worker: null, port: null, state: new Float64Array(new SharedArrayBuffer(SLOTS * 8)),
      gone: { accepted: 0, refused: 0, crashes: 0, done: 0 }, lastCase: -1, lastChange: 0, exited: null });
  }

  let stopping = false;
  const start = (s: Slice): void => {
    s.state = new Float64Array(new SharedArrayBuffer(SLOTS * 8));
    s.state[SLOT.stop] = stopping ? 1 : 0;
    s.state[SLOT.current] = -1;
    s.state[SLOT.slowestCase] = -1;
    const { port1, port2 } = new MessageChannel();
    port1.on('message', onMessage);
    const data: FuzzWorkerData = { parser, seed: o.seed, from: s.next, to: s.to, scratch: join(scratch, `w${s.from}-${s.next}`), state: s.state.buffer as SharedArrayBuffer, port: port2 };
    const w = new Worker(workerUrl, { workerData: data, transferList: [port2], resourceLimits: { maxOldGenerationSizeMb: o.maxRssMb } });
    s.worker = w;
    s.port = port1;
    s.lastCase = -1;
    s.lastChange = performance.now();
    s.exited = new Promise((resolve) => {
      w.on('error', (e) => {
        // An uncaught error or a heap limit kills the worker: the running case is to blame.
        const index = s.state[SLOT.current]!;
        const oom = (e as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
        retire(s, oom ? 'memory' : 'crash', index, `${e.name}: ${e.message}`);
      });
      w.on('exit', (code) => {
        // A worker that stops by itself before its last case (process.exit in a parser) crashed.
        if (s.worker === w && s.state[SLOT.current]! < s.to) retire(s, 'crash', s.state[SLOT.current]!, `the worker exited with code ${code}`);
        resolve();
      });
    });
  };

  /** Takes a worker's final counts, records the running case's failure, and moves past it. */
  const retire = (s: Slice, kind: 'hang' | 'memory' | 'crash' | 'done', index: number, error: string): void => {
    if (s.port) {
      for (let m = receiveMessageOnPort(s.port); m !== undefined; m = receiveMessageOnPort(s.port)) onMessage(m.message as FuzzWorkerMessage);
      s.port.close();
      s.port = null;
    }
    const st = s.state;
    s.gone.accepted += st[SLOT.accepted]!;
    s.gone.refused += st[SLOT.refused]!;
    s.gone.crashes += st[SLOT.crashes]!;
    s.gone.done += st[SLOT.done]!;
    if (st[SLOT.slowestMs]! > res.slowestCaseMs) { res.slowestCaseMs = st[SLOT.slowestMs]!; res.slowestCase = st[SLOT.slowestCase]!; }
    st.fill(0);
    const w = s.worker;
    s.worker = null;
    void w?.terminate();
    if (kind !== 'done') {
      if (index < 0) throw new Error(`fuzz ${parser}: the worker failed before its first case (${error})`);
      const list = kind === 'hang' ? res.hangCases : kind === 'memory' ? res.memoryCases : res.crashCases;
      if (kind === 'hang') res.hangs++; else if (kind === 'memory') res.memory++; else res.crashes++;
      if (list.length < KEEP) list.push({ index, error });
      s.gone.done++;
      log(`  ${parser}: ${kind.toUpperCase()} at case ${index}: ${error}`);
      s.next = index + 1;
    } else {
      s.next = s.to;
    }
  };

  for (const s of slices) start(s);
  let lastProgress = performance.now();
  const total = (): { done: number; accepted: number; refused: number } => {
    let done = 0, accepted = 0, refused = 0;
    for (const s of slices) {
      done += s.gone.done + (s.worker ? s.state[SLOT.done]! : 0);
      accepted += s.gone.accepted + (s.worker ? s.state[SLOT.accepted]! : 0);
      refused += s.gone.refused + (s.worker ? s.state[SLOT.refused]! : 0);
    }
    return { done, accepted, refused };
  };

  // The watchdog: every 50 ms, per worker, has its case changed, has it finished, is the process too big?
  for (;;) {
    await new Promise((r) => setTimeout(r, 50));
    const now = performance.now();
    const rss = process.memoryUsage.rss();
    sampledPeak = Math.max(sampledPeak, rss);
    let running = 0;
    for (const s of slices) {
      if (s.worker === null) {
        if (s.next < s.to && !stopping) { await s.exited; start(s); running++; }
        continue;
      }
      running++;
      const cur = s.state[SLOT.current]!;
      if (cur >= s.to) { retire(s, 'done', cur, ''); await s.exited; running--; continue; }
      if (cur !== s.lastCase) { s.lastCase = cur; s.lastChange = now; continue; }
      // Starting a worker and building its seeds is not a case: on a loaded machine it may take long.
      const limit = s.state[SLOT.ready] === 1 ? o.timeoutMs : PREPARE_MS + o.timeoutMs;
      if (rss > o.maxRssMb * MiB && cur >= 0) retire(s, 'memory', cur, `process RSS ${(rss / MiB).toFixed(0)} MiB > --max-rss-mb ${o.maxRssMb}`);
      else if (now - s.lastChange > limit) retire(s, 'hang', cur, `still running after ${o.timeoutMs} ms`);
    }
    if (!stopping && o.maxMinutes !== undefined && now - t0 > o.maxMinutes * 60_000) {
      stopping = true; // each worker ends after its current case
      for (const s of slices) s.state[SLOT.stop] = 1;
      log(`  ${parser}: --max-minutes ${o.maxMinutes} reached, stopping after the running cases`);
    }
    if (now - lastProgress > o.progressS * 1000) {
      lastProgress = now;
      const t = total();
      const secs = (now - t0) / 1000;
      log(`  ${parser}: ${t.done}/${o.n} cases, ${(t.done / secs).toFixed(0)}/s, accepted ${t.accepted}, refused ${t.refused}, ` +
        `crashes ${res.crashes}, hangs ${res.hangs}, memory ${res.memory}, RSS ${(rss / MiB).toFixed(0)} MiB`);
    }
    if (running === 0) break;
  }

  for (const s of slices) {
    res.accepted += s.gone.accepted;
    res.refused += s.gone.refused;
  }
  // Cases run contiguously from each slice's start (a failed case counts as done), so these are exact.
  res.ranges = slices.map((s) => [s.from, s.from + s.gone.done]);
  res.cases = slices.reduce((a, s) => a + s.gone.done, 0);
  const outcomes = res.accepted + res.refused + res.crashes + res.hangs + res.memory;
  if (outcomes !== res.cases || (!stopping && res.cases !== o.n)) {
    throw new Error(`fuzz ${parser}: ${outcomes} outcomes for ${res.cases} cases run of ${o.n} planned`);
  }
  res.refusalRules = refusedBy.size;
  res.topRefusalRules = [...refusedBy].sort((a, b) => b[1] - a[1]).slice(0, KEEP);
  const peak = hwm ? highWaterMark() : null;
  res.peakRssMiB = Math.round(((peak ?? sampledPeak) / MiB) * 10) / 10;
  res.peakRssSource = peak !== null ? 'VmHWM' : 'sampled';
  res.wallSeconds = Math.round((performance.now() - t0) / 100) / 10;
  res.casesPerSecond = Math.round(res.cases / Math.max(res.wallSeconds, 0.001));
  rmSync(scratch, { recursive: true, force: true });
  return res;
}

/** The final table: one row per parser. */
export function formatTable(results: readonly ParserResult[]): string {
  const head = ['parser', 'cases', 'accepted', 'refused', 'rules', 'crashes', 'hangs', 'memory', 'slowest ms', 'peak RSS MiB', 'cases/s'];
  const rows = results.map((r) => [r.parser, r.cases, r.accepted, r.refused, r.refusalRules, r.crashes, r.hangs, r.memory,
    r.slowestCaseMs.toFixed(0), r.peakRssMiB.toFixed(0), r.casesPerSecond].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((x, i) => (i === 0 ? '-' : '') + '-'.repeat(x + 1) + (i === 0 ? '' : ':')).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Runs one case in this thread (no watchdog) and prints what happened. */
function rerunCase(parser: FuzzParser, seed: number, index: number, save: string | undefined): number {
  const scratch = mkdtempSync(join(tmpdir(), `tessera-fuzz-${parser}-`));
  try {
    const target = fuzzTarget(parser, scratch);
    if (save !== undefined) {
      const input = target.mutant(caseRand(parser, seed, index));
      writeFileSync(save, input);
      console.log(`wrote case ${index} (${input.length} ${typeof input === 'string' ? 'characters' : 'bytes'}) to ${save}`);
    }
    const t0 = performance.now();
    const out = runCase(target, parser, seed, index);
    console.log(`${parser} case ${index} (seed ${seed}): ${out.kind} in ${(performance.now() - t0).toFixed(1)} ms: ${out.label}`);
    return out.kind === 'crash' ? 1 : 0;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const f = scriptFlags(import.meta.url, FLAGS, 'Mutation fuzzing of the parsers: counts crashes, hangs and peak memory.', argv);
  if (!f) return 0;
  const parsers = f.parser === 'all' ? [...FUZZ_PARSERS] : [f.parser as FuzzParser];
  const seed = f.seed as number;
  if (f.case !== undefined) {
    if (parsers.length !== 1) throw new UsageError('--case needs one --parser');
    return rerunCase(parsers[0]!, seed, f.case as number, f.save as string | undefined);
  }
  const opts: FuzzOptions = {
    seed, from: f.from as number, n: f.n as number, jobs: f.jobs as number, timeoutMs: f['timeout-ms'] as number,
    maxRssMb: f['max-rss-mb'] as number, progressS: f['progress-s'] as number, maxMinutes: f['max-minutes'] as number | undefined,
  };
  const command = `node dist/src/testing/fuzz.js ${argv.join(' ')}`.trim();
  console.log(`${command}\n${parsers.length} parser(s) × ${opts.n} cases from case ${opts.from}, seed ${seed}, ${opts.jobs} worker(s), ` +
    `timeout ${opts.timeoutMs} ms, max RSS ${opts.maxRssMb} MiB`);
  const results: ParserResult[] = [];
  for (const p of parsers) {
    results.push(await fuzzParser(p, opts));
    if (f.out !== undefined) writeResults(f.out as string, command, opts, results);
  }
  console.log(`\n${formatTable(results)}`);
  const failures = results.reduce((a, r) => a + r.crashes + r.hangs + r.memory, 0);
  for (const r of results) {
    for (const [kind, list] of [['crash', r.crashCases], ['hang', r.hangCases], ['memory', r.memoryCases]] as const) {
      for (const c of list) console.log(`${r.parser} ${kind} case ${c.index}: ${c.error.split('\n')[0]}  (rerun: --parser ${r.parser} --seed ${seed} --case ${c.index})`);
    }
  }
  if (f.out !== undefined) console.log(`results: ${f.out}`);
  return failures === 0 ? 0 : 1;
}

/** The commit of the checkout being fuzzed, so a results file says which code it measured. */
function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dirname(fileURLToPath(import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}
const COMMIT = gitCommit(); // at start: the checkout may move on during a long run

function writeResults(path: string, command: string, o: FuzzOptions, results: ParserResult[]): void {
  mkdirSync(dirname(path), { recursive: true });
  const run = { command, seed: o.seed, from: o.from, n: o.n, jobs: o.jobs, timeoutMs: o.timeoutMs, maxRssMb: o.maxRssMb, maxMinutes: o.maxMinutes ?? null,
    commit: COMMIT, node: process.version, cpus: availableParallelism(), date: new Date().toISOString() };
  writeFileSync(path, `${JSON.stringify({ run, results }, null, 2)}\n`);
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
