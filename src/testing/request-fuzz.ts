// The request fuzz: seeded hostile HTTP requests against `tessera serve` (docs/RELIABILITY.md
// "Requests"); the cases are in request-fuzz-cases.ts.
//
//   node dist/src/testing/request-fuzz.js --n 10000 --warmup 5000 --seed 1 --out docs/results/request-fuzz.json
//
// Outcomes: ok (2xx), refused (4xx with OpenAI's error shape, or the HTTP parser's own 4xx for
// bytes that are not HTTP), busy (503 with Retry-After), and the failures: server-error (5xx or a
// 4xx without the error shape), hang (no complete answer within --timeout-ms: 60 s by default, since
// a valid mutant such as max_tokens: null asks for a full default-length reply, which takes seconds
// on a loaded machine), reset (the connection dropped without an answer). After the run a valid
// request must get the same answer as before it and KV pages must be back to where they were.
//
// Memory: the server runs in this process and the clients in a child (request-fuzz-client.ts), so
// this process's memory is the server's. It is measured settled (settled-memory.ts) before any case,
// after --warmup cases (the baseline), then again with no traffic in between (the noise floor), after
// half of the --n measured cases and after all of them. RSS is back to baseline when the last
// measurement is within the tolerance of the baseline: twice the larger of the noise floor and the
// settling criterion, since each of the two compared measurements carries that error on its own.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatHelp, parseFlags, type FlagSpecs } from '../cli/args.js';
import { load, type Tessera } from '../api/index.js';
import { TesseraServer } from '../server/server.js';
import { SETTLED_RSS_BYTES, SETTLE_MS, settledMemory, type SettledMemory } from './settled-memory.js';
import { FUZZ_API_KEY, type CasesJob, type CasesResult, type Outcome } from './request-fuzz-cases.js';
import { ChildJobs } from './child-jobs.js';

/** Memory at the measurement points, MiB. */
interface Points { cold: number; baseline: number; middle: number; after: number }

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
  /** Cases run before the baseline, and after it (middle: after half of these). */
  warmupCases: number;
  measuredCases: number;
  /** The server's memory (this process, settled-memory.ts) at each point. */
  heapMiB: Points;
  heapCommittedMiB: Points;
  rssMiB: Points;
  /** RSS after the first idle wait and collection of each measurement (before it had settled). */
  rssFirstRoundMiB: Points;
  /** RSS by kind of mapping (settled-memory.ts rssParts; absent off Linux). */
  rssPartsMiB?: Record<keyof Points, { brk: number; anonymous: number; file: number }>;
  /** Per V8 space at each point: committed, resident and used MiB. */
  spacesMiB: Record<keyof Points, Record<string, { committed: number; resident: number; used: number }>>;
  /** Idle-and-collect repetitions each point took to settle (settled-memory.ts). */
  settleRounds: Record<keyof Points, number>;
  /** RSS of the repeated baseline measurements with no traffic, the largest distance of one from
   *  the baseline, the tolerance derived from it, and whether RSS after the last case is within it. */
  noiseRssMiB: number[];
  noiseFloorMiB: number;
  toleranceMiB: number;
  rssBackToBaseline: boolean;
}

function mapPoints<A, B>(p: Record<keyof Points, A>, f: (a: A) => B): Record<keyof Points, B> {
  return { cold: f(p.cold), baseline: f(p.baseline), middle: f(p.middle), after: f(p.after) };
}

const mib = (x: number) => Math.round(x / 2 ** 20 * 10) / 10;

/** Repeated measurements of the baseline (no traffic in between) that give the noise floor. */
const NOISE_SAMPLES = 3;

/** Runs `warmup` then `n` cases of the seed against a server over `t` (started here, with a short
 *  request timeout so cases with a lying Content-Length end quickly), `jobs` at a time, from a child
 *  process. settleMs 0: memory measured at once after a collection, no noise samples (a quick check
 *  of the heap; RSS is not judged). */
export async function runRequestFuzz(t: Tessera, opts: { n: number; seed: number; warmup?: number; jobs?: number; timeoutMs?: number; settleMs?: number; onProgress?: (done: number) => void }): Promise<RequestFuzzResult> {
  const server = new TesseraServer({ apiKey: FUZZ_API_KEY, requestTimeoutMs: 500, headersTimeoutMs: 500, timeoutCheckMs: 100, maxBodyBytes: 256 * 1024 });
  const { port } = await server.listen(0, '127.0.0.1');
  server.ready(t);
  const clients = new ChildJobs<CasesJob, CasesResult>(fileURLToPath(new URL('./request-fuzz-client.js', import.meta.url)), opts.onProgress);
  const valid = async () => {
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, { method: 'POST', headers: { Authorization: `Bearer ${FUZZ_API_KEY}` }, body: JSON.stringify({ prompt: 'The Congress', max_tokens: 12, temperature: 0 }) });
    return `${r.status} ${((await r.json()) as { choices?: { text: string }[] }).choices?.[0]?.text}`;
  };
  try {
    const answer = await valid();
    const pages0 = t.model.kvPages?.used ?? 0;
    const settled = async () => {                         // cancelled sequences are freed at the next step
      const end = Date.now() + 5000;
      while ((t.model.kvPages?.used ?? 0) > pages0 && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
      return settledMemory(opts.settleMs);
    };
    const outcomes: Record<Outcome, number> = { ok: 0, refused: 0, busy: 0, 'server-error': 0, hang: 0, reset: 0 };
    const statuses: Record<string, number> = {};
    const failures: CasesResult['failures'] = [];
    let seconds = 0;
    const cases = async (from: number, to: number) => {
      const t0 = performance.now();
      const r = await clients.run({ port, seed: opts.seed, from, to, jobs: opts.jobs ?? 4, timeoutMs: opts.timeoutMs ?? 60_000 }, 'cases');
      seconds += (performance.now() - t0) / 1000;
      for (const k of Object.keys(outcomes) as Outcome[]) outcomes[k] += r.outcomes[k];
      for (const [k, n] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
      failures.push(...r.failures);
    };
    // RSS was still growing (compiled code, old space, memory outside V8's heap) between 1,000 and
    // 6,000 cases, and did not grow after a 5,000-case warm-up (docs/RELIABILITY.md): by default the
    // baseline comes after half as many cases as are measured after it
    const warmupCases = opts.warmup ?? Math.ceil(opts.n / 2);
    const half = warmupCases + Math.ceil(opts.n / 2), all = warmupCases + opts.n;
    const cold = await settled();
    await cases(0, warmupCases);
    const baseline = await settled();
    const noise: SettledMemory[] = [];
    if (opts.settleMs !== 0) for (let k = 0; k < NOISE_SAMPLES; k++) noise.push(await settled());
    await cases(warmupCases, half);
    const middle = await settled();
    await cases(half, all);
    const after = await valid();
    const end = await settled();
    const points = { cold, baseline, middle, after: end };
    const each = <T>(f: (m: SettledMemory) => T) => mapPoints(points, f);
    const noiseFloor = Math.max(0, ...noise.map((m) => Math.abs(m.rss - baseline.rss)));
    const tolerance = 2 * Math.max(noiseFloor, SETTLED_RSS_BYTES);
    return {
      seed: opts.seed, cases: all, seconds: Math.round(seconds * 10) / 10, outcomes, statuses, failures: failures.slice(0, 50),
      sameAnswer: after === answer,
      kvPages: { before: pages0, after: t.model.kvPages?.used ?? 0 },
      warmupCases, measuredCases: opts.n,
      heapMiB: each((m) => mib(m.heapUsed)),
      heapCommittedMiB: each((m) => mib(m.heapCommitted)),
      rssMiB: each((m) => mib(m.rss)),
      rssFirstRoundMiB: each((m) => mib(m.rssFirstRound)),
      rssPartsMiB: cold.rssParts === undefined ? undefined : each((m) => ({ brk: mib(m.rssParts?.brk ?? 0), anonymous: mib(m.rssParts?.anonymous ?? 0), file: mib(m.rssParts?.file ?? 0) })),
      spacesMiB: each((m) => Object.fromEntries(Object.entries(m.spaces).filter(([, s]) => s.committed > 0)
        .map(([name, s]) => [name, { committed: mib(s.committed), resident: mib(s.resident), used: mib(s.used) }]))),
      settleRounds: each((m) => m.rounds),
      noiseRssMiB: noise.map((m) => mib(m.rss)),
      noiseFloorMiB: mib(noiseFloor),
      toleranceMiB: mib(tolerance),
      rssBackToBaseline: opts.settleMs !== 0 && end.settled && baseline.settled && end.rss - baseline.rss <= tolerance,
    };
  } finally {
    clients.close();
    await server.shutdown(1000);
  }
}

const FLAGS: FlagSpecs = {
  n: { type: 'integer', min: 2, max: 10_000_000, default: 10_000, placeholder: 'N', description: 'cases after the baseline' },
  warmup: { type: 'integer', min: 1, max: 10_000_000, placeholder: 'N', description: 'cases before the baseline (default: half of --n)' },
  seed: { type: 'integer', min: 0, max: 2 ** 32 - 1, default: 1, placeholder: 'S', description: 'seed of the run (case i depends only on seed and i)' },
  jobs: { type: 'integer', min: 1, max: 64, default: 4, placeholder: 'N', description: 'connections at once' },
  'timeout-ms': { type: 'integer', min: 100, max: 600_000, default: 60_000, placeholder: 'MS', description: 'a case without a complete answer after this long is a hang' },
  model: { type: 'string', default: 'models/default', placeholder: 'PATH', description: 'model to serve' },
  out: { type: 'string', placeholder: 'PATH', description: 'write the results as JSON to this file' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

async function main(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'dist/src/testing/request-fuzz.js');
  if (v.help) { process.stdout.write(formatHelp('dist/src/testing/request-fuzz.js', 'Seeded hostile requests against tessera serve; prints the outcomes.', FLAGS, 'node')); return 0; }
  const t = await load(v.model as string, { contextLength: 256, threads: 1, promptCache: 0 });   // no prompt cache: KV pages must return to 0
  try {
    const r = await runRequestFuzz(t, { n: v.n as number, seed: v.seed as number, warmup: v.warmup as number | undefined, jobs: v.jobs as number, timeoutMs: v['timeout-ms'] as number, onProgress: (d) => process.stderr.write(`${d} cases\n`) });
    const ok = r.failures.length === 0 && r.sameAnswer && r.kvPages.after <= r.kvPages.before && r.rssBackToBaseline;
    const row = (name: string, p: Record<'cold' | 'baseline' | 'middle' | 'after', number | string>) => `| ${name} | ${p.cold} | ${p.baseline} | ${p.middle} | ${p.after} |\n`;
    const spaces = Object.keys(r.spacesMiB.after);
    process.stdout.write(`request fuzz: ${r.cases} cases (${r.warmupCases} before the baseline, ${r.measuredCases} after), seed ${r.seed}, ${r.seconds} s\n`
      + `| outcome | cases |\n|---|---|\n${Object.entries(r.outcomes).map(([k, n]) => `| ${k} | ${n} |`).join('\n')}\n`
      + `statuses: ${JSON.stringify(r.statuses)}\n`
      + `valid request answered the same after the run: ${r.sameAnswer}; KV pages ${r.kvPages.before} → ${r.kvPages.after}\n`
      + `server memory, MiB, each settled (${SETTLE_MS / 1000} s idle and a collection, repeated until RSS moves by at most ${SETTLED_RSS_BYTES / 2 ** 20} MiB):\n`
      + `| | before any case | baseline | after ${Math.ceil(r.measuredCases / 2)} more | after ${r.measuredCases} more |\n|---|---|---|---|---|\n`
      + row('RSS', r.rssMiB) + row('RSS after the first idle wait and collection', r.rssFirstRoundMiB)
      + (r.rssPartsMiB === undefined ? '' : (['brk', 'anonymous', 'file'] as const).map((k) => row(`RSS in ${k} mappings`, mapPoints(r.rssPartsMiB!, (x) => x[k]))).join('')) + row('heap used', r.heapMiB) + row('heap committed', r.heapCommittedMiB)
      + spaces.map((sp) => row(`${sp} committed / resident`, mapPoints(r.spacesMiB, (x) => (x[sp] === undefined ? '–' : `${x[sp]!.committed} / ${x[sp]!.resident}`)))).join('')
      + row('idle-and-collect rounds', r.settleRounds)
      + `baseline measured again with no traffic: RSS ${r.noiseRssMiB.join(', ')} MiB (noise floor ${r.noiseFloorMiB} MiB); tolerance ${r.toleranceMiB} MiB; `
      + `RSS after − baseline ${Math.round((r.rssMiB.after - r.rssMiB.baseline) * 10) / 10} MiB: ${r.rssBackToBaseline ? 'back to baseline' : 'NOT back to baseline'}\n`);
    for (const f of r.failures.slice(0, 10)) process.stdout.write(`FAIL case ${f.index} (${f.kind}): ${f.outcome} ${f.status ?? ''} ${f.detail ?? ''}\n`);
    if (v.out !== undefined) writeFileSync(v.out as string, JSON.stringify({ command: `node dist/src/testing/request-fuzz.js ${argv.join(' ')}`, ...r }, null, 2) + '\n');
    return ok ? 0 : 1;
  } finally { t.dispose(); }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
