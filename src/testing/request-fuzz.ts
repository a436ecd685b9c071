// The request fuzz: seeded hostile HTTP requests against `tessera serve` (docs/RELIABILITY.md
// "Requests"); the cases are in request-fuzz-cases.ts.
//
//   MALLOC_ARENA_MAX=1 node dist/src/testing/request-fuzz.js --n 10000 --warmup 30000 --passes 3 --seed 1 --jobs 8 --out docs/results/request-fuzz.json
//
// Outcomes: ok (2xx), refused (4xx with OpenAI's error shape, or the HTTP parser's own 4xx for
// bytes that are not HTTP), busy (503 with Retry-After), and the failures: server-error (5xx or a
// 4xx without the error shape), hang (no complete answer within --timeout-ms: 60 s by default, since
// a valid mutant such as max_tokens: null asks for a full default-length reply, which takes seconds
// on a loaded machine), reset (the connection dropped without an answer). After the run a valid
// request must get the same answer as before it and KV pages must be back to where they were.
//
// Memory: the server runs in this process and the clients in a child (request-fuzz-client.ts), so
// this process's memory is the server's. It is measured settled (settled-memory.ts; by default the
// first collection of each measurement compacts V8's heap fully) before any case (cold), after
// --warmup cases and one filling of the KV pool (the baseline; fillKVPool), then again with no
// traffic in between (the noise floor and the tolerance, settled-memory.ts rssTolerance), and after
// each of --passes measured passes of --n cases. RSS is back to baseline when the end of every pass
// is within the tolerance of the baseline; its growth from the cold start (what the first traffic
// touches once: compiled code, the allocators' high-water marks) is reported apart.

import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { load, type Tessera } from '../api/index.js';
import { TesseraServer } from '../server/server.js';
import { NOISE_SAMPLES, MIN_SETTLE_ROUNDS, QUIET_AFTER_GC_MS, SETTLED_RSS_BYTES, SETTLE_MS, RSS_PART_NAMES, allocatorEnvironment, rssTolerance, settledMemory, type RssParts, type SettledMemory } from './settled-memory.js';
import { FUZZ_API_KEY, type CasesJob, type CasesResult, type Outcome } from './request-fuzz-cases.js';
import { ChildJobs } from './child-jobs.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';
import { REQUEST_LIMITS } from '../api/validate.js';

export interface RequestFuzzResult {
  seed: number;
  /** Cases run, warm-up included. */
  cases: number;
  seconds: number;
  outcomes: Record<Outcome, number>;
  statuses: Record<string, number>;
  failures: CasesResult['failures'];
  /** A valid request's answer before and after the run, and whether they are equal. */
  sameAnswer: boolean;
  kvPages: { before: number; after: number };
  /** Most KV pages in use at once, up to each point, and the pool's size: the KV pages written so far
   *  (kv-pages.ts KVPagePool.peak) and the most there are. */
  kvPeakPages: number[];
  kvPoolPages: number;
  /** This process's CPU time (the server's, V8's threads included) while each stretch of cases ran
   *  (the warm-up, then each pass), seconds. */
  cpuSeconds: number[];
  /** Whether the warm-up ended by filling the KV pool (fillKVPool), and whether each measurement's
   *  first collection compacted V8's heap fully (settled-memory.ts collectGarbage). */
  kvFilled: boolean;
  compactingCollection: boolean;
  /** Cases run before the baseline; measured passes after it, and cases in each. */
  warmupCases: number;
  passes: number;
  measuredCases: number;
  /** The measurement points in order: 'cold' (before any case), 'baseline' (after the warm-up),
   *  'pass 1' … (after each measured pass); every per-point array below follows this order. */
  points: string[];
  /** Cases run before each point. */
  casesAt: number[];
  /** The server's memory (this process, settled-memory.ts) at each point. */
  heapMiB: number[];
  heapCommittedMiB: number[];
  rssMiB: number[];
  /** process.memoryUsage().rss at each point: the kernel's approximate counter (settled-memory.ts
   *  residentBytes), shown beside the page-table count, not judged. */
  rssCounterMiB: number[];
  /** RSS read straight after each point's last collection, before the quiet wait (settled-memory.ts
   *  QUIET_AFTER_GC_MS): not judged. */
  rssRightAfterCollectionMiB: number[];
  /** RSS after the first idle wait and collection of each measurement (before it had settled). */
  rssFirstRoundMiB: number[];
  /** RSS by what holds it (settled-memory.ts RssParts; absent off Linux). */
  rssPartsMiB?: Record<keyof RssParts, number>[];
  /** process.memoryUsage()'s external and arrayBuffers at each point. */
  externalMiB: number[];
  arrayBuffersMiB: number[];
  /** Per V8 space at each point: committed, resident and used MiB. */
  spacesMiB: Record<string, { committed: number; resident: number; used: number }>[];
  /** Idle-and-collect repetitions each point took, and whether it settled (settled-memory.ts). */
  settleRounds: number[];
  settled: boolean[];
  /** RSS of the repeated baseline measurements with no traffic, the largest distance of one from
   *  the baseline, the tolerance derived from it (settled-memory.ts rssTolerance). */
  noiseRssMiB: number[];
  /** The same repeats' RSS by what holds it, heap used and heap committed. */
  noiseRssPartsMiB?: Record<keyof RssParts, number>[];
  noiseHeapMiB: number[];
  noiseHeapCommittedMiB: number[];
  noiseFloorMiB: number;
  toleranceMiB: number;
  /** RSS at the end of each pass − the baseline, and − the end of the pass before (the baseline for
   *  pass 1), MiB; RSS at the end − before any case (the one-time cost of the first traffic). */
  rssAboveBaselineMiB: number[];
  rssGrowthPerPassMiB: number[];
  rssAboveColdMiB: number;
  /** Whether every pass ended with RSS within the tolerance of the baseline (all points settled). */
  rssBackToBaseline: boolean;
}

const mib = (x: number) => Math.round(x / 2 ** 20 * 10) / 10;
const partsMiB = (m: SettledMemory) => Object.fromEntries(Object.entries(m.rssParts!).map(([k, x]) => [k, mib(x)])) as Record<keyof RssParts, number>;

/** Runs `warmup` then `n` cases of the seed against a server over `t` (started here, with a short
 *  request timeout so cases with a lying Content-Length end quickly), `jobs` at a time, from a child
 *  process. settleMs 0: memory measured at once after a collection, no noise samples (a quick check
 *  of the heap; RSS is not judged). */
export async function runRequestFuzz(t: Tessera, opts: { n: number; seed: number; warmup?: number; passes?: number; jobs?: number; timeoutMs?: number; settleMs?: number; compact?: boolean; fillKV?: boolean; onProgress?: (done: number) => void }): Promise<RequestFuzzResult> {
  const server = new TesseraServer({ apiKey: FUZZ_API_KEY, requestTimeoutMs: 500, headersTimeoutMs: 500, timeoutCheckMs: 100, maxBodyBytes: 256 * 1024 });
  const { port } = await server.listen(0, '127.0.0.1');
  server.ready(t);
  const clients = new ChildJobs<CasesJob, CasesResult>(fileURLToPath(new URL('./request-fuzz-client.js', import.meta.url)), opts.onProgress);
  const valid = async () => {
    const r = await postCompletion(port, { prompt: 'The Congress', max_tokens: 12, temperature: 0 });
    try { return `${r.status} ${(JSON.parse(r.text) as { choices?: { text: string }[] }).choices?.[0]?.text}`; } catch { return `${r.status} ${r.text}`; }
  };
  try {
    const answer = await valid();
    const pages0 = t.model.kvPages?.used ?? 0;
    const settled = async () => {                         // cancelled sequences are freed at the next step
      const end = Date.now() + 5000;
      while ((t.model.kvPages?.used ?? 0) > pages0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
      return settledMemory(opts.settleMs, { compact: opts.compact });
    };
    const outcomes: Record<Outcome, number> = { ok: 0, refused: 0, busy: 0, 'server-error': 0, hang: 0, reset: 0 };
    const statuses: Record<string, number> = {};
    const failures: CasesResult['failures'] = [];
    let seconds = 0, done = 0;
    const cpuSeconds: number[] = [], kvPeakPages: number[] = [];
    const kvPeak = () => t.model.kvPages?.peak ?? 0;
    const cases = async (count: number) => {
      const t0 = performance.now(), cpu0 = process.cpuUsage();
      const r = await clients.run({ port, seed: opts.seed, from: done, to: done + count, jobs: opts.jobs ?? 4, timeoutMs: opts.timeoutMs ?? 60_000 }, 'cases');
      seconds += (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      cpuSeconds.push(Math.round((cpu.user + cpu.system) / 1e4) / 100);
      done += count;
      for (const k of Object.keys(outcomes) as Outcome[]) outcomes[k] += r.outcomes[k];
      for (const [k, n] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
      failures.push(...r.failures);
    };
    // The warm-up brings the server to the steady state of this traffic (docs/RELIABILITY.md,
    // "Request fuzzing": RSS grew over the first 10,000 or so cases, the heap's compiled code over
    // the first 30,000); by default it is as long as one measured pass.
    const warmupCases = opts.warmup ?? opts.n, passes = opts.passes ?? 1;
    const points = ['cold'], casesAt = [0], memory: SettledMemory[] = [await settled()];
    kvPeakPages.push(kvPeak());
    await cases(warmupCases);
    if (opts.fillKV === true) await fillKVPool(t, port);
    const baseline = await settled();
    points.push('baseline'); casesAt.push(done); memory.push(baseline); kvPeakPages.push(kvPeak());
    const noise: SettledMemory[] = [];
    if (opts.settleMs !== 0) for (let k = 0; k < NOISE_SAMPLES; k++) noise.push(await settled());
    for (let pass = 1; pass <= passes; pass++) {
      await cases(opts.n);
      points.push(`pass ${pass}`); casesAt.push(done); memory.push(await settled()); kvPeakPages.push(kvPeak());
    }
    const after = await valid();
    const { noiseFloor, tolerance } = rssTolerance(baseline, noise);
    const ends = memory.slice(2);
    const cold = memory[0]!;
    return {
      seed: opts.seed, cases: done, kvFilled: opts.fillKV === true, compactingCollection: opts.compact === true, seconds: Math.round(seconds * 10) / 10, outcomes, statuses, failures: failures.slice(0, 50),
      sameAnswer: after === answer,
      kvPages: { before: pages0, after: t.model.kvPages?.used ?? 0 },
      kvPeakPages, kvPoolPages: t.model.kvPages?.pages ?? 0, cpuSeconds,
      warmupCases, passes, measuredCases: opts.n, points, casesAt,
      heapMiB: memory.map((m) => mib(m.heapUsed)),
      heapCommittedMiB: memory.map((m) => mib(m.heapCommitted)),
      rssMiB: memory.map((m) => mib(m.rss)),
      rssCounterMiB: memory.map((m) => mib(m.rssCounter)),
      rssRightAfterCollectionMiB: memory.map((m) => mib(m.rssRightAfterCollection)),
      rssFirstRoundMiB: memory.map((m) => mib(m.rssFirstRound)),
      rssPartsMiB: cold.rssParts === undefined ? undefined : memory.map(partsMiB),
      externalMiB: memory.map((m) => mib(m.external)),
      arrayBuffersMiB: memory.map((m) => mib(m.arrayBuffers)),
      spacesMiB: memory.map((m) => Object.fromEntries(Object.entries(m.spaces).filter(([, s]) => s.committed > 0)
        .map(([name, s]) => [name, { committed: mib(s.committed), resident: mib(s.resident), used: mib(s.used) }]))),
      settleRounds: memory.map((m) => m.rounds),
      settled: memory.map((m) => m.settled),
      noiseRssMiB: noise.map((m) => mib(m.rss)),
      noiseRssPartsMiB: cold.rssParts === undefined ? undefined : noise.map(partsMiB),
      noiseHeapMiB: noise.map((m) => mib(m.heapUsed)),
      noiseHeapCommittedMiB: noise.map((m) => mib(m.heapCommitted)),
      noiseFloorMiB: mib(noiseFloor),
      toleranceMiB: mib(tolerance),
      rssAboveBaselineMiB: ends.map((m) => mib(m.rss - baseline.rss)),
      rssGrowthPerPassMiB: ends.map((m, k) => mib(m.rss - memory[k + 1]!.rss)),
      rssAboveColdMiB: mib(memory.at(-1)!.rss - cold.rss),
      rssBackToBaseline: opts.settleMs !== 0 && baseline.settled && ends.every((m) => m.settled && m.rss - baseline.rss <= tolerance),
    };
  } finally {
    clients.close();
    await server.shutdown(1000);
  }
}

/** POSTs a completion request to the fuzz's server. Its 0.5 s request timeout (set for the hostile
 *  cases) can cut off a valid request too on a loaded machine, with a bodiless 408: sent again then. */
async function postCompletion(port: number, body: object): Promise<{ status: number; text: string }> {
  for (let attempt = 1; ; attempt++) {
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST', headers: { Authorization: `Bearer ${FUZZ_API_KEY}` }, body: JSON.stringify(body) });
    const text = await r.text();
    if (r.status !== 408 || attempt === 5) return { status: r.status, text };
  }
}

/** Writes every page of the model's KV pool once, through the server: sequences of one page as many
 *  at once as the pool and the sequence slots hold, then of a full context, each request sending its
 *  prompts together with ignore_eos so that all run at once. WebAssembly memory stays resident once
 *  written, so a pass that takes more pages at once than any case before it grows RSS by pages it then
 *  keeps (and reuses) — a one-time cost of the pool's size, not memory the traffic accumulates. After
 *  this the pool's peak is its size, or the most pages its sequence slots can hold (checked), and no
 *  pass can write a page for the first time. */
async function fillKVPool(t: Tessera, port: number): Promise<void> {
  const pool = t.model.kvPages;
  if (pool === undefined) return;
  for (const tokens of [KV_PAGE_TOKENS, t.model.contextLength]) {
    const pages = Math.ceil(tokens / KV_PAGE_TOKENS);
    let left = Math.min(t.model.parallel, Math.floor(pool.pages / pages));
    const requests: Promise<void>[] = [];
    for (let r = 0; left > 0; r++) {
      const count = Math.min(left, REQUEST_LIMITS.prompts, REQUEST_LIMITS.choices);
      left -= count;
      // distinct prompts (no shared prefix), half the sequence each; the reply writes the rest
      const promptTokens = Math.floor(tokens / 2) + 1;
      const prompt = Array.from({ length: count }, (_, k) => Array.from({ length: promptTokens }, (_, i) => 1 + ((r * REQUEST_LIMITS.prompts + k) * 131 + i * 7) % 1000));
      requests.push(postCompletion(port, { prompt, max_tokens: tokens - promptTokens, ignore_eos: true, temperature: 0 })
        .then((res) => { if (res.status !== 200) throw new Error(`filling the KV pool: ${res.status} ${res.text}`); }));
    }
    await Promise.all(requests);
  }
  const most = Math.min(pool.pages, t.model.parallel * Math.ceil(t.model.contextLength / KV_PAGE_TOKENS));   // what any traffic can hold
  if (pool.peak < most) throw new Error(`filling the KV pool: at most ${pool.peak} of its ${pool.pages} pages were in use at once (${most} can be)`);
}

const FLAGS: FlagSpecs = {
  n: { type: 'integer', min: 1, max: 10_000_000, default: 10_000, placeholder: 'N', description: 'cases in each measured pass' },
  warmup: { type: 'integer', min: 1, max: 10_000_000, placeholder: 'N', description: 'cases before the baseline (default: --n)' },
  passes: { type: 'integer', min: 1, max: 100, default: 1, placeholder: 'P', description: 'measured passes of --n cases after the baseline, memory measured after each' },
  seed: { type: 'integer', min: 0, max: 2 ** 32 - 1, default: 1, placeholder: 'S', description: 'seed of the run (case i depends only on seed and i)' },
  jobs: { type: 'integer', min: 1, max: 64, default: 4, placeholder: 'N', description: 'connections at once' },
  'timeout-ms': { type: 'integer', min: 100, max: 600_000, default: 60_000, placeholder: 'MS', description: 'a case without a complete answer after this long is a hang' },
  'fill-kv': { type: 'boolean', default: true, description: 'end the warm-up by writing every page of the KV pool once (on unless --no-fill-kv: then only the cases write it)' },
  compact: { type: 'boolean', default: true, description: "each measurement's first collection compacts V8's old and code spaces fully (on unless --no-compact: then V8 picks the pages)" },
  model: { type: 'string', default: 'models/default', placeholder: 'PATH', description: 'model to serve' },
  out: { type: 'string', placeholder: 'PATH', description: 'write the results as JSON to this file' },
};

async function main(argv: string[]): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Seeded hostile requests against tessera serve; prints the outcomes and the server\'s memory.', argv);
  if (v === null) return 0;
  const allocatorEnv = allocatorEnvironment();
  const loadAtStart = loadavg()[0]!;
  const t = await load(v.model as string, { contextLength: 256, threads: 1, promptCache: 0 });   // no prompt cache: KV pages must return to 0
  try {
    const r = await runRequestFuzz(t, { n: v.n as number, seed: v.seed as number, warmup: v.warmup as number | undefined, passes: v.passes as number, jobs: v.jobs as number, timeoutMs: v['timeout-ms'] as number, fillKV: v['fill-kv'] as boolean, compact: v.compact as boolean, onProgress: (d) => process.stderr.write(`${d} cases\n`) });
    const ok = r.failures.length === 0 && r.sameAnswer && r.kvPages.after <= r.kvPages.before && r.rssBackToBaseline;
    const row = (name: string, cells: (number | string)[]) => `| ${name} | ${cells.join(' | ')} |\n`;
    const spaces = Object.keys(r.spacesMiB.at(-1)!);
    const heads = r.points.map((p, k) => `${p === 'cold' ? 'before any case' : p} (${r.casesAt[k]} cases)`);
    const signed = (x: number) => `${x >= 0 ? '+' : ''}${x}`;
    const loadAverage = { start: Math.round(loadAtStart * 10) / 10, end: Math.round(loadavg()[0]! * 10) / 10 };
    process.stdout.write(`request fuzz: ${r.cases} cases (${r.warmupCases} before the baseline, then ${r.passes} × ${r.measuredCases}), seed ${r.seed}, ${r.seconds} s; `
      + `allocator environment: ${allocatorEnv.length > 0 ? allocatorEnv.join(' ') : 'none (glibc defaults)'}; `
      + `KV pool filled at the end of the warm-up: ${r.kvFilled ? 'yes' : 'no'}; compacting first collection: ${r.compactingCollection ? 'yes' : 'no'}; load average (1 min) ${loadAverage.start} at the start, ${loadAverage.end} at the end\n`
      + `| outcome | cases |\n|---|---|\n${Object.entries(r.outcomes).map(([k, n]) => `| ${k} | ${n} |`).join('\n')}\n`
      + `statuses: ${JSON.stringify(r.statuses)}\n`
      + `valid request answered the same after the run: ${r.sameAnswer}; KV pages ${r.kvPages.before} → ${r.kvPages.after}\n`
      + `server memory, MiB, each settled (${SETTLE_MS / 1000} s idle, a collection and ${QUIET_AFTER_GC_MS / 1000} s quiet, repeated ${MIN_SETTLE_ROUNDS} times or more, until RSS moves by at most ${SETTLED_RSS_BYTES / 2 ** 20} MiB):\n`
      + `| | ${heads.join(' | ')} |\n|---|${heads.map(() => '---|').join('')}\n`
      + row('RSS (page tables, /proc/self/smaps_rollup)', r.rssMiB) + row("RSS as the kernel's approximate counter reads it (not judged)", r.rssCounterMiB)
      + row(`RSS straight after the last collection, before the ${QUIET_AFTER_GC_MS / 1000} s quiet wait (not judged)`, r.rssRightAfterCollectionMiB)
      + row('RSS after the first idle wait and collection', r.rssFirstRoundMiB)
      + (r.rssPartsMiB === undefined ? '' : RSS_PART_NAMES.map(([k, name]) => row(`RSS in ${name}`, r.rssPartsMiB!.map((x) => x[k]))).join(''))
      + row('external (of it array buffers)', r.externalMiB.map((x, k) => `${x} (${r.arrayBuffersMiB[k]})`))
      + row('heap used', r.heapMiB) + row('heap committed', r.heapCommittedMiB)
      + spaces.map((sp) => row(`${sp} committed / resident`, r.spacesMiB.map((x) => (x[sp] === undefined ? '–' : `${x[sp]!.committed} / ${x[sp]!.resident}`)))).join('')
      + row('most KV pages in use at once so far', r.kvPeakPages.map((p) => `${p} of ${r.kvPoolPages}`))
      + row('CPU seconds of the cases before it', ['', ...r.cpuSeconds])
      + row('idle-and-collect rounds', r.settleRounds.map((n, k) => `${n}${r.settled[k] ? '' : ' (not settled)'}`))
      + row('RSS − baseline', ['', '', ...r.rssAboveBaselineMiB.map(signed)])
      + row('RSS − the point before', ['', signed(Math.round((r.rssMiB[1]! - r.rssMiB[0]!) * 10) / 10), ...r.rssGrowthPerPassMiB.map(signed)])
      + `baseline measured again with no traffic: RSS ${r.noiseRssMiB.join(', ')} MiB (noise floor ${r.noiseFloorMiB} MiB`
      + (r.noiseRssPartsMiB === undefined ? '' : `; of it the C heap ${r.noiseRssPartsMiB.map((x) => x.brk).join(', ')}, compiled code ${r.noiseRssPartsMiB.map((x) => x.code).join(', ')}, other anonymous mappings ${r.noiseRssPartsMiB.map((x) => x.otherAnonymous).join(', ')}`)
      + `; heap used ${r.noiseHeapMiB.join(', ')}, committed ${r.noiseHeapCommittedMiB.join(', ')}); tolerance ${r.toleranceMiB} MiB; `
      + `RSS after every pass within it of the baseline: ${r.rssBackToBaseline ? 'yes, back to baseline' : 'NO, not back to baseline'}; `
      + `RSS at the end − before any case (the cold start's one-time growth, not judged) ${signed(r.rssAboveColdMiB)} MiB\n`);
    for (const f of r.failures.slice(0, 10)) process.stdout.write(`FAIL case ${f.index} (${f.kind}): ${f.outcome} ${f.status ?? ''} ${f.detail ?? ''}\n`);
    if (v.out !== undefined) writeFileSync(v.out as string, JSON.stringify({ command: [...allocatorEnv, 'node dist/src/testing/request-fuzz.js', ...argv].join(' '), allocatorEnv, loadAverage, ...r }, null, 2) + '\n');
    return ok ? 0 : 1;
  } finally { t.dispose(); }
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, () => main(process.argv.slice(2)));
