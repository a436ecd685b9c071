// The server's load test and soak, on loopback, bounded in requests and time:
//
//   node dist/src/bench/serve-load.js [--model models/default] [--clients 1,4,16] [--requests 2]
//        [--long 8000] [--max-tokens 32] [--attention dense,magicpig] [--soak-s 60] [--soak-rounds 2]
//
// For each attention backend a server (in this process, on 127.0.0.1) serves the model; for each
// prompt length (a short prompt, and --long tokens) and number of concurrent clients, every client
// sends --requests streamed completions one after another (distinct prompts, ignore_eos, --max-tokens
// each) and the client measures time to first token (request sent → first token's event) and the
// gaps between tokens. One markdown table: output tokens per second over the whole run, TTFT and
// per-token latency p50 / p99. The soak then runs a mix for --soak-rounds rounds of --soak-s seconds
// at 8 clients — normal requests, streams cancelled mid-way, overlong prompts (400) — and prints RSS,
// heap and KV pages at the baseline, the peak and after each round (garbage collected).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadavg } from 'node:os';
import { formatHelp, parseFlags, type FlagSpecs } from '../cli/args.js';
import { load, type Tessera } from '../api/index.js';
import { TesseraServer } from '../server/server.js';
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

/** One streamed completion: TTFT and inter-token gaps in ms, tokens received. */
async function streamOnce(url: string, body: Record<string, unknown>, cancelAfter?: number): Promise<{ ttft: number; gaps: number[]; tokens: number; status: number }> {
  const t0 = performance.now();
  const ctl = new AbortController();
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal: ctl.signal });
  if (r.status !== 200) { await r.text(); return { ttft: NaN, gaps: [], tokens: 0, status: r.status }; }
  const reader = r.body!.getReader();
  const dec = new TextDecoder();
  let buf = '', ttft = NaN, last = NaN, tokens = 0;
  const gaps: number[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      const events = buf.split('\n\n');
      buf = events.pop()!;
      for (const e of events) {
        if (!e.startsWith('data: {')) continue;
        const c = JSON.parse(e.slice(6)) as { choices: { logprobs: { tokens: string[] } | null }[] };
        const n = c.choices[0]?.logprobs?.tokens.length ?? 0;
        if (n === 0) continue;
        const now = performance.now();
        if (Number.isNaN(ttft)) ttft = now - t0; else gaps.push((now - last) / n);
        last = now;
        tokens += n;
      }
      if (cancelAfter !== undefined && tokens >= cancelAfter) { ctl.abort(); break; }
    }
  } catch (e) { if (!ctl.signal.aborted) throw e; }
  return { ttft, gaps, tokens, status: 200 };
}

/** A prompt of about `tokens` tokens that differs from every other (request `id`) from its first word. */
function promptOf(t: Tessera, id: number, tokens: number): number[] {
  const words = t.tokenize(`Request ${id}: the Congress of the United States and the people of the several states`, { addSpecialTokens: true });
  const out: number[] = [];
  while (out.length < tokens) out.push(...words);
  return out.slice(0, tokens);
}

interface Row { attention: string; prompt: number; clients: number; requests: number; seconds: number; outTps: number; ttft50: number; ttft99: number; tok50: number; tok99: number }

async function measure(url: string, t: Tessera, attention: string, promptTokens: number, clients: number, requests: number, maxTokens: number, idBase: number): Promise<Row> {
  const ttfts: number[] = [], gaps: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let k = 0; k < requests; k++) {
      const r = await streamOnce(url, { prompt: promptOf(t, idBase + c * requests + k, promptTokens), max_tokens: maxTokens, temperature: 0, ignore_eos: true, logprobs: 0 });
      if (r.status !== 200) throw new Error(`request failed with status ${r.status}`);
      ttfts.push(r.ttft);
      gaps.push(...r.gaps);
      tokens += r.tokens;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { attention, prompt: promptTokens, clients, requests: clients * requests, seconds, outTps: tokens / seconds,
    ttft50: quantile(ttfts, 0.5), ttft99: quantile(ttfts, 0.99), tok50: quantile(gaps, 0.5), tok99: quantile(gaps, 0.99) };
}

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Concurrent clients of the soak (the server is loaded with at least this many sequences). */
const SOAK_CLIENTS = 8;

async function soak(url: string, t: Tessera, seconds: number, rounds: number, maxTokens: number): Promise<string> {
  const mib = (x: number) => (x / 2 ** 20).toFixed(1);
  // warm up (first requests allocate the model's scratch and compile code paths), then the baseline
  await Promise.all(Array.from({ length: SOAK_CLIENTS }, (_, c) => streamOnce(url, { prompt: promptOf(t, 9_000_000 + c, 200), max_tokens: maxTokens, temperature: 0, ignore_eos: true, logprobs: 0 })));
  collectGarbage();
  const memory = () => ({ rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, pages: t.model.kvPages?.used ?? 0 });
  const base = memory();
  let peakRss = base.rss, peakPages = base.pages, done = 0, cancelled = 0, refused = 0, busy = 0, failed = 0;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); peakPages = Math.max(peakPages, t.model.kvPages?.used ?? 0); }, 50);
  let id = 10_000_000;
  // Several rounds of the same mix: memory that is touched once and kept (WebAssembly pages, V8's
  // code and caches, the allocator's free lists) grows in the first round and not after; a leak grows
  // in every round.
  const after: ReturnType<typeof memory>[] = [];
  for (let round = 0; round < rounds; round++) {
    const end = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: SOAK_CLIENTS }, async () => {
      while (performance.now() < end) {
        const kind = id % 3;
        const body = { prompt: promptOf(t, id++, kind === 2 ? t.contextLength + 10 : 100 + (id % 7) * 150), max_tokens: maxTokens, temperature: 0.8, ignore_eos: true, logprobs: 0 };
        let r: Awaited<ReturnType<typeof streamOnce>>;
        try { r = await streamOnce(url, body, kind === 1 ? 3 : undefined); } catch (e) {
          failed++;                                          // counted and reported, the soak goes on
          process.stderr.write(`soak: request failed: ${(e as Error).message} ${String((e as { cause?: unknown }).cause ?? '')}\n`);
          continue;
        }
        if (r.status === 400) refused++;
        else if (r.status === 503) busy++;
        else if (r.status !== 200) failed++;
        else if (kind === 1) cancelled++;
        else done++;
      }
    }));
    // a stream the client cancelled ends at the server's next step: wait for the pages (at most 30 s)
    const settle = performance.now() + 30_000;
    while ((t.model.kvPages?.used ?? 0) > base.pages && performance.now() < settle) await new Promise((r) => setTimeout(r, 20));
    collectGarbage();
    after.push(memory());
  }
  clearInterval(sampler);
  const heads = after.map((_, i) => `after round ${i + 1}`);
  return `soak: ${rounds} × ${seconds} s at ${SOAK_CLIENTS} clients: ${done} completed, ${cancelled} cancelled mid-stream, ${refused} overlong refused (400), ${busy} turned away busy (503), ${failed} failed (another status, or at the transport)\n`
    + `| | baseline | peak | ${heads.join(' | ')} |\n|---|---|---|${heads.map(() => '---|').join('')}\n`
    + `| RSS MiB | ${mib(base.rss)} | ${mib(peakRss)} | ${after.map((a) => mib(a.rss)).join(' | ')} |\n`
    + `| heap MiB | ${mib(base.heap)} | | ${after.map((a) => mib(a.heap)).join(' | ')} |\n`
    + `| KV pages | ${base.pages} | ${peakPages} | ${after.map((a) => a.pages).join(' | ')} |\n`;
}

async function main(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'dist/src/bench/serve-load.js');
  if (v.help) { process.stdout.write(formatHelp('dist/src/bench/serve-load.js', 'Load test and soak of tessera serve on loopback; prints tables.', FLAGS, 'node')); return 0; }
  const clients = v.clients as number[], long = v.long as number, maxTokens = v['max-tokens'] as number;
  const most = Math.max(...clients, (v['soak-s'] as number) > 0 ? SOAK_CLIENTS : 1);
  const ctx = long + maxTokens + 16;
  const rows: Row[] = [];
  const load0 = loadavg();
  let soakText = '';
  let id = 0;
  for (const attention of v.attention as string[]) {
    const t = await load(v.model as string, {
      contextLength: ctx, parallel: most, promptCache: 0, attention, ...(v.threads !== undefined ? { threads: v.threads as number } : {}),
      kvBudget: most * Math.ceil(ctx / KV_PAGE_TOKENS) * KV_PAGE_TOKENS,
    });
    const server = new TesseraServer({ maxQueued: 4 * most });
    const { port } = await server.listen(0, '127.0.0.1');
    server.ready(t);
    const url = `http://127.0.0.1:${port}`;
    try {
      for (const prompt of [16, long]) {
        for (const c of clients) {
          const row = await measure(url, t, attention, prompt, c, v.requests as number, maxTokens, id);
          id += 1000;
          rows.push(row);
          process.stderr.write(`${attention} prompt ${prompt} clients ${c}: ${row.outTps.toFixed(1)} tok/s\n`);
        }
      }
      if (attention === (v.attention as string[])[0] && (v['soak-s'] as number) > 0) soakText = await soak(url, t, v['soak-s'] as number, v['soak-rounds'] as number, maxTokens);
    } finally {
      await server.shutdown(1000);
      t.dispose();
    }
  }
  const f = (x: number, d = 1) => (Number.isNaN(x) ? '–' : x.toFixed(d));
  process.stdout.write(`serve load test: ${v.model}, ${maxTokens} tokens per request (ignore_eos), ${v.requests} requests per client, `
    + `load average before ${load0.map((x) => x.toFixed(1)).join(' ')}, after ${loadavg().map((x) => x.toFixed(1)).join(' ')}\n\n`
    + '| attention | prompt tokens | clients | requests | seconds | output tok/s | TTFT p50 ms | TTFT p99 ms | per-token p50 ms | per-token p99 ms |\n'
    + '|---|---|---|---|---|---|---|---|---|---|\n'
    + rows.map((r) => `| ${r.attention} | ${r.prompt} | ${r.clients} | ${r.requests} | ${f(r.seconds)} | ${f(r.outTps)} | ${f(r.ttft50, 0)} | ${f(r.ttft99, 0)} | ${f(r.tok50)} | ${f(r.tok99)} |`).join('\n')
    + `\n\n${soakText}`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
