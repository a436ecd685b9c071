// The server's load test and soak, on loopback, bounded in requests and time:
//
//   node dist/src/bench/serve-load.js [--model models/default] [--clients 1,4,16] [--requests 2]
//        [--long 8000] [--max-tokens 32] [--attention dense,magicpig] [--soak-s 60] [--soak-rounds 2]
//
// For each attention backend a server (in this process, on 127.0.0.1) serves the model, after one
// untimed request; the clients run in a child process (serve-load-client.ts), so their work neither
// delays the server's event loop nor counts in its memory. For each prompt length (a short prompt,
// and --long tokens) and number of concurrent clients, the backends in turn: every client sends
// --requests streamed completions one after another (distinct prompts, ignore_eos, --max-tokens each)
// and measures time to first token (request sent → first token's event), time per output token
// after the first (TPOT, per request) and the gaps between token events. One markdown table, a row
// printed as soon as it is measured: output tokens per second over the whole row, TTFT and TPOT
// p50 / p99 over the row's requests, the p99 gap (stalls), the load average. The soak then runs a mix at 8 clients — normal
// requests, streams cancelled mid-way, overlong prompts (400) — for a warm-up round and --soak-rounds
// measured rounds of --soak-s seconds, and prints the server's memory (settled-memory.ts) before the
// warm-up, at the baseline (after the warm-up round), at the peak and after each round, and whether
// every round ended within the tolerance of the baseline that its repeats with no traffic give.

import { loadavg } from 'node:os';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';
import { fileURLToPath } from 'node:url';
import { load as loadModel, type Tessera } from '../api/index.js';
import type { ClientJob, LoadJob, LoadResult, SoakJob, SoakResult } from './serve-load-client.js';
import { TesseraServer } from '../server/server.js';
import { NOISE_SAMPLES, MIN_SETTLE_ROUNDS, QUIET_AFTER_GC_MS, RSS_PART_NAMES, allocatorEnvironment, SETTLED_RSS_BYTES, SETTLE_MS, rssTolerance, settledMemory, type SettledMemory } from '../testing/settled-memory.js';
import { ChildJobs } from '../testing/child-jobs.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', default: 'models/default', placeholder: 'PATH', description: 'model to serve' },
  clients: { type: 'integer', list: true, min: 1, max: 64, default: '1,4,16', placeholder: 'N,…', description: 'concurrent clients' },
  requests: { type: 'integer', min: 1, max: 100, default: 2, placeholder: 'N', description: 'requests per client' },
  long: { type: 'integer', min: 16, max: 1_000_000, default: 8000, placeholder: 'TOKENS', description: 'tokens of the long prompt' },
  'max-tokens': { type: 'integer', min: 2, max: 4096, default: 32, placeholder: 'N', description: 'tokens generated per request' },
  attention: { type: 'string', list: true, default: 'dense,magicpig', placeholder: 'SPEC,…', description: 'attention backends (one server each)' },
  threads: { type: 'integer', min: 1, placeholder: 'N', description: 'threads (default: all cores)' },
  'soak-s': { type: 'number', min: 0, max: 3600, default: 60, placeholder: 'SECONDS', description: 'soak duration of each round (0: none)' },
  'soak-rounds': { type: 'integer', min: 1, max: 100, default: 2, placeholder: 'N', description: 'soak rounds, memory measured after each: a leak grows in every round, memory touched once only in the first' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** The clients' child process (serve-load-client.ts): one job at a time. */
class Clients {
  private readonly jobs = new ChildJobs<ClientJob, LoadResult | SoakResult>(fileURLToPath(new URL('./serve-load-client.js', import.meta.url)));
  run(job: LoadJob): Promise<LoadResult>;
  run(job: SoakJob): Promise<SoakResult>;
  run(job: ClientJob): Promise<LoadResult | SoakResult> { return this.jobs.run(job, `a ${job.job}`); }
  close(): void { this.jobs.close(); }
}

/** Concurrent clients of the soak (the server is loaded with at least this many sequences). */
const SOAK_CLIENTS = 8;

interface Memory extends SettledMemory {
  pages: number;
  /** Most KV pages in use at once during the round before: the KV memory touched grows only when
   *  this exceeds every earlier round's. */
  roundPeakPages: number;
}

/** The soak: a warm-up round, then `rounds` rounds of the same mix; the server's memory (this
 *  process: the clients run in their own) after each round, garbage collected, against the baseline
 *  taken after the warm-up round. */
async function soak(url: string, t: Tessera, clients: Clients, seconds: number, rounds: number, maxTokens: number): Promise<string> {
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  const memory = async (): Promise<Memory> => {
    const m = { ...await settledMemory(), pages: t.model.kvPages?.used ?? 0, roundPeakPages };
    roundPeakPages = 0;
    return m;
  };
  let id = 10_000_000;
  const totals = { done: 0, cancelled: 0, refused: 0, busy: 0, failed: 0 };
  const failures: string[] = [];
  let peakRss = 0, roundPeakPages = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    roundPeakPages = Math.max(roundPeakPages, t.model.kvPages?.used ?? 0);
  }, 20);
  // Memory touched once and kept (WebAssembly pages, V8's code and caches, the allocator's free
  // lists) grows in the warm-up round and not after; a leak grows in every round.
  const round = async (): Promise<Memory> => {
    const r = await clients.run({ job: 'soak', url, seconds, clients: SOAK_CLIENTS, maxTokens, overlong: t.contextLength + 10, idBase: id });
    id = r.nextId;
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
    failures.push(...r.failures);
    // a stream the client cancelled ends at the server's next step: wait for the pages (at most 30 s)
    const settle = performance.now() + 30_000;
    while ((t.model.kvPages?.used ?? 0) > 0 && performance.now() < settle) await new Promise((res) => setTimeout(res, 20));
    return memory();
  };
  roundPeakPages = 0;
  const start = await memory();
  const base = await round();
  const repeats: Memory[] = [];                           // the baseline again, no traffic: its noise
  for (let k = 0; k < NOISE_SAMPLES; k++) repeats.push(await memory());
  const { noiseFloor, tolerance } = rssTolerance(base, repeats);
  const after: Memory[] = [];
  for (let i = 0; i < rounds; i++) after.push(await round());
  clearInterval(sampler);
  const heads = after.map((_, i) => `after round ${i + 1}`);
  const row = (name: string, f: (m: Memory) => string, peak = '') => `| ${name} | ${f(start)} | ${f(base)} | ${peak} | ${after.map(f).join(' | ')} |\n`;
  return `soak: a warm-up round and ${rounds} measured rounds × ${seconds} s at ${SOAK_CLIENTS} clients (in a child process): ${totals.done} completed, ${totals.cancelled} cancelled mid-stream, `
    + `${totals.refused} overlong refused (400), ${totals.busy} turned away busy (503), ${totals.failed} failed (another status, or at the transport)${failures.length > 0 ? `: ${failures.join('; ')}` : ''}\n`
    + `Allocator environment: ${allocatorEnvironment().join(' ') || 'none (glibc defaults)'}. Server memory (this process), measured settled (${SETTLE_MS / 1000} s idle, a garbage collection and ${QUIET_AFTER_GC_MS / 1000} s quiet, repeated ${MIN_SETTLE_ROUNDS} times or more, until RSS moves by at most ${SETTLED_RSS_BYTES / 2 ** 20} MiB); baseline = after the warm-up round.\n\n`
    + `| | before the warm-up | baseline | peak | ${heads.join(' | ')} |\n|---|---|---|---|${heads.map(() => '---|').join('')}\n`
    + row('RSS MiB', (m) => mib(m.rss), mib(peakRss))
    + row('heap used MiB', (m) => mib(m.heapUsed))
    + row('heap committed MiB', (m) => mib(m.heapCommitted))
    + row('external MiB (of it array buffers)', (m) => `${mib(m.external)} (${mib(m.arrayBuffers)})`)
    + row('KV pages in use', (m) => String(m.pages))
    + row('most KV pages in use during the round', (m) => String(m.roundPeakPages))
    + (start.rssParts === undefined ? '' : RSS_PART_NAMES.map(([k, name]) => row(`RSS in ${name} MiB`, (m) => mib(m.rssParts?.[k] ?? 0))).join(''))
    + row('idle-and-collect rounds', (m) => `${m.rounds}${m.settled ? '' : ' (not settled)'}`)
    + `| RSS − baseline MiB | | | | ${after.map((m) => (m.rss >= base.rss ? '+' : '') + mib(m.rss - base.rss)).join(' | ')} |\n\n`
    + `The baseline measured again with no traffic: RSS ${repeats.map((m) => mib(m.rss)).join(', ')} MiB (noise floor ${mib(noiseFloor)} MiB); tolerance ${mib(tolerance)} MiB `
    + `(settled-memory.ts rssTolerance). RSS after every round within it of the baseline: `
    + `${base.settled && after.every((m) => m.settled && m.rss - base.rss <= tolerance) ? 'yes, back to baseline' : 'NO, not back to baseline'}.\n`;
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Load test and soak of tessera serve on loopback; prints tables.');
  if (v === null) return 0;
  const clients = v.clients as number[], long = v.long as number, maxTokens = v['max-tokens'] as number, requests = v.requests as number;
  const attentions = v.attention as string[];
  const most = Math.max(...clients, (v['soak-s'] as number) > 0 ? SOAK_CLIENTS : 1);
  const ctx = long + maxTokens + 16;
  const f = (x: number, d = 1) => (Number.isNaN(x) ? '–' : x.toFixed(d));
  const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');
  // one server per backend, all up at once: the backends take turns row by row, so that the two rows
  // compared are measured minutes apart, not half an hour (the load of a shared machine drifts)
  const served: { attention: string; t: Tessera; server: TesseraServer; url: string }[] = [];
  const runner = new Clients();
  try {
    for (const attention of attentions) {
      const t = await loadModel(v.model as string, {
        contextLength: ctx, parallel: most, promptCache: 0, attention, ...(v.threads !== undefined ? { threads: v.threads as number } : {}),
        kvBudget: most * Math.ceil(ctx / KV_PAGE_TOKENS) * KV_PAGE_TOKENS,
      });
      const server = new TesseraServer({ maxQueued: 4 * most });
      const { port } = await server.listen(0, '127.0.0.1');
      server.ready(t);
      served.push({ attention, t, server, url: `http://127.0.0.1:${port}` });
    }
    // one untimed request each first (code paths compiled, scratch allocated)
    for (const [i, s] of served.entries()) await runner.run({ job: 'load', url: s.url, promptTokens: 16, clients: 1, requests: 1, maxTokens, idBase: 900_000_000 + i });
    // rows are printed as they are measured, so a run cut short keeps what it measured
    process.stdout.write(`serve load test: ${v.model}, context ${ctx}, ${most} sequences, threads ${v.threads ?? 'all cores'}, ${maxTokens} tokens per request (ignore_eos), `
      + `${requests} requests per client one after another, clients in a child process; load average (1, 5, 15 min) at the start ${load()}\n\n`
      + '| attention | prompt tokens | clients | requests | seconds | output tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | gap p99 ms | load average after |\n'
      + '|---|---|---|---|---|---|---|---|---|---|---|---|\n');
    let id = 0;
    for (const prompt of [16, long]) {
      for (const c of clients) {
        for (const s of served) {
          const r = await runner.run({ job: 'load', url: s.url, promptTokens: prompt, clients: c, requests, maxTokens, idBase: id });
          id += 1000;
          process.stdout.write(`| ${s.attention} | ${prompt} | ${c} | ${c * requests} | ${f(r.seconds)} | ${f(r.tokens / r.seconds)} | ${f(quantile(r.ttfts, 0.5), 0)} | ${f(quantile(r.ttfts, 0.99), 0)} | `
            + `${f(quantile(r.tpots, 0.5))} | ${f(quantile(r.tpots, 0.99))} | ${f(quantile(r.gaps, 0.99))} | ${loadavg()[0]!.toFixed(1)} |\n`);
        }
      }
    }
    process.stdout.write(`\nload average at the end ${load()}\n`);
    if ((v['soak-s'] as number) > 0) {
      // the soak measures this process's memory: only the first backend's server stays
      for (const s of served.splice(1)) { await s.server.shutdown(1000); s.t.dispose(); }
      process.stdout.write(`\n${await soak(served[0]!.url, served[0]!.t, runner, v['soak-s'] as number, v['soak-rounds'] as number, maxTokens)}`);
    }
  } finally {
    runner.close();
    for (const s of served) { await s.server.shutdown(1000); s.t.dispose(); }
  }
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
