// The request fuzz: seeded hostile HTTP requests against `tessera serve` (docs/RELIABILITY.md
// "Requests"). Each case is a valid chat or text completion request with one mutation — a field set to
// a hostile value (negative, zero, huge, fractional, wrong type, deep, long), a field dropped or added,
// the body cut, garbled, nested 10,000 deep or given duplicate keys, a wrong Content-Length, broken or
// oversized headers, another method or path, a bad key — sent over a raw socket.
//
//   node dist/src/testing/request-fuzz.js --n 10000 --seed 1 --out docs/results/request-fuzz.json
//
// Outcomes: ok (2xx), refused (4xx with OpenAI's error shape, or the HTTP parser's own 4xx for
// bytes that are not HTTP), busy (503 with Retry-After), and the failures: server-error (5xx or a
// 4xx without the error shape), hang (no complete answer within --timeout-ms: 60 s by default, since
// a valid mutant such as max_tokens: null asks for a full default-length reply, which takes seconds
// on a loaded machine), reset (the connection dropped without an answer). Case i depends only on (seed, i). After the run a valid request must get the
// same answer as before it and KV pages must be back to where they were; the process's memory is
// measured before the first case, after the first tenth of the cases (the baseline: memory touched
// once is taken by then) and after the last (settled-memory.ts).

import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { Rng, deriveSeed } from '../data/rng.js';
import { formatHelp, parseFlags, type FlagSpecs } from '../cli/args.js';
import { load, type Tessera } from '../api/index.js';
import { TesseraServer } from '../server/server.js';
import { SETTLE_MS, settledMemory } from './settled-memory.js';

export const FUZZ_API_KEY = 'fuzz-key';

export interface FuzzCase { kind: string; raw: Buffer }

const HOSTILE: unknown[] = [-1, 0, 1, 1.5, -0.5, 2 ** 53, -(2 ** 53), 1e308, -1e308, 64, 3, '2', '', 'x'.repeat(5000), null, true, false, [], [1, 2], {}, { a: 1 },
  [[[[[]]]]], '\u0000', '\ud800', '../../etc/passwd', '/dev/zero'];
const FIELDS = ['model', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'frequency_penalty',
  'presence_penalty', 'seed', 'stop', 'n', 'stream', 'stream_options', 'user', 'logprobs', 'top_logprobs', 'speculate', 'attention', 'ignore_eos',
  'messages', 'prompt', 'echo', 'suffix', 'tools', 'logit_bias', '__proto__', 'constructor', 'file', 'path'];

function pick<T>(r: Rng, xs: readonly T[]): T { return xs[Math.floor(r.float() * xs.length)]!; }

/** A valid request of one of the two kinds, cheap to answer (a few tokens). */
function baseRequest(r: Rng): { path: string; body: Record<string, unknown> } {
  const stream = r.float() < 0.3;
  if (r.float() < 0.5) {
    return { path: '/v1/chat/completions', body: { model: 'default', messages: [{ role: 'user', content: 'Tell me about the railroads.' }], max_tokens: 2, temperature: 0, stream } };
  }
  return { path: '/v1/completions', body: { model: 'default', prompt: 'The Congress', max_tokens: 2, temperature: 0, stream } };
}

function request(method: string, path: string, headers: [string, string][], body: Buffer): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** Case i of a run with this seed. */
export function fuzzCase(seed: number, i: number): FuzzCase {
  const r = new Rng(deriveSeed(seed, i));
  const { path, body } = baseRequest(r);
  let method = 'POST', p = path, kind: string;
  let headers: [string, string][] = [['Content-Type', 'application/json'], ['Authorization', `Bearer ${FUZZ_API_KEY}`]];
  let text: string | Buffer = '';
  const strategy = Math.floor(r.float() * 10);
  switch (strategy) {
    case 0: case 1: case 2: {                              // one field set to a hostile value
      const f = pick(r, FIELDS);
      body[f] = pick(r, HOSTILE);
      kind = `field ${f}`;
      break;
    }
    case 3: {                                             // a nested field
      const v = pick(r, HOSTILE);
      if (Array.isArray(body.messages)) body.messages = [{ role: pick(r, ['user', 'system', 'assistant', 'tool', 'robot', 7]), content: v, [pick(r, ['name', 'x', 'role'])]: v }];
      else body.prompt = pick(r, [[v], [1, v], [[1, 2], v], Array(20).fill('a'), [2 ** 31, -1], v]);
      kind = 'nested';
      break;
    }
    case 4: {                                             // a required field dropped, several mutated
      delete body[pick(r, ['messages', 'prompt', 'max_tokens', 'model'])];
      for (let k = 0; k < 3; k++) body[pick(r, FIELDS)] = pick(r, HOSTILE);
      kind = 'several fields';
      break;
    }
    default: kind = '';
  }
  text = JSON.stringify(body);
  switch (strategy) {
    case 5: {                                             // the body itself
      const b = Buffer.from(text);
      const how = Math.floor(r.float() * 8);
      kind = ['truncated', 'random bytes', 'invalid UTF-8', 'duplicate keys', 'deep nesting', 'many keys', 'not an object', 'empty'][how]!;
      if (how === 0) text = b.subarray(0, Math.floor(r.float() * b.length));
      else if (how === 1) text = Buffer.from(Array.from({ length: 1 + Math.floor(r.float() * 300) }, () => Math.floor(r.float() * 256)));
      else if (how === 2) text = Buffer.concat([b.subarray(0, 20), Buffer.from([0xff, 0xfe, 0xc0]), b.subarray(20)]);
      else if (how === 3) text = text.replace('{', '{"max_tokens": 1, ');
      else if (how === 4) text = '['.repeat(10_000) + ']'.repeat(10_000);
      else if (how === 5) text = `{${Array.from({ length: 20_000 }, (_, k) => `"k${k}": ${k}`).join(',')}}`;
      else if (how === 6) text = pick(r, ['[]', '"hi"', '12', 'null', 'true', '[{"messages": []}]']);
      else text = '';
      break;
    }
    case 6: {                                             // headers
      const how = Math.floor(r.float() * 7);
      kind = ['content-length short', 'content-length long', 'content-length bad', 'huge header', 'many headers', 'bad header bytes', 'chunked garbage'][how]!;
      const len = Buffer.byteLength(text);
      if (how === 0) headers.push(['Content-Length', String(Math.floor(len / 2))]);
      else if (how === 1) headers.push(['Content-Length', String(len + 1 + Math.floor(r.float() * 100))]);
      else if (how === 2) headers.push(['Content-Length', pick(r, ['-1', 'abc', '1e9', '99999999999999999999', '12, 13'])]);
      else if (how === 3) headers.push(['X-Big', 'a'.repeat(20_000)]);
      else if (how === 4) for (let k = 0; k < 300; k++) headers.push([`X-H${k}`, 'v']);
      else if (how === 5) headers.push(['X-Bad', 'a\u0000b\u007f']);
      else { headers.push(['Transfer-Encoding', 'chunked']); text = 'zz\r\nnot chunked\r\n'; }
      if (how >= 3) headers.push(['Content-Length', String(Buffer.byteLength(text))]);
      if (how === 6) headers = headers.filter(([k]) => k !== 'Content-Length');
      break;
    }
    case 7: {                                             // method and path
      method = pick(r, ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'POST']);
      p = pick(r, ['/v1/../../etc/passwd', '/v1/chat/completions?x=1', '/v1//completions', `/${'a'.repeat(3000)}`, '/%00', '/tokenize', '/detokenize', '/metrics', '/v1/models', '/health']);
      kind = `route ${method} ${p.slice(0, 30)}`;
      break;
    }
    case 8: {                                             // the key
      headers = headers.filter(([k]) => k !== 'Authorization');
      const how = pick(r, ['none', 'Bearer ', 'Bearer wrong', `bearer ${FUZZ_API_KEY}`, `Bearer ${FUZZ_API_KEY} extra`, 'Basic Zm9vOmJhcg==']);
      if (how !== 'none') headers.push(['Authorization', how]);
      kind = `key ${how}`;
      break;
    }
    case 9: {                                             // tokenize / detokenize with hostile input
      p = pick(r, ['/tokenize', '/detokenize']);
      text = JSON.stringify(pick(r, [{ prompt: pick(r, HOSTILE) }, { tokens: pick(r, HOSTILE) }, { tokens: [1, 2, pick(r, HOSTILE)] }, { prompt: 'x', add_special_tokens: pick(r, HOSTILE) }]));
      kind = `${p} hostile`;
      break;
    }
  }
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  if (!headers.some(([k]) => k === 'Content-Length' || k === 'Transfer-Encoding')) headers.push(['Content-Length', String(bytes.length)]);
  return { kind, raw: request(method, p, headers, bytes) };
}

export type Outcome = 'ok' | 'refused' | 'busy' | 'server-error' | 'hang' | 'reset';

/** Sends one raw request and classifies the answer. */
export function sendCase(port: number, raw: Buffer, timeoutMs: number): Promise<{ outcome: Outcome; status?: number; detail?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (x: { outcome: Outcome; status?: number; detail?: string }) => { if (!settled) { settled = true; clearTimeout(timer); sock.destroy(); resolve(x); } };
    const sock = connect(port, '127.0.0.1', () => { sock.write(raw); });
    const timer = setTimeout(() => done({ outcome: 'hang' }), timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {});
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m === null) return done({ outcome: 'reset', detail: text.slice(0, 200) });
      const status = Number(m[1]);
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      if (status < 300) return done({ outcome: 'ok', status });
      if (status === 503) return done({ outcome: /retry-after: \d+/i.test(text) ? 'busy' : 'server-error', status, detail: body.slice(0, 300) });
      if (status >= 500) return done({ outcome: 'server-error', status, detail: body.slice(0, 300) });
      // the HTTP parser's own refusals (not HTTP, headers too large, request timeout) carry no JSON
      // body, and neither does any answer to HEAD
      if (body.length === 0 && ([400, 408, 413, 431].includes(status) || raw.subarray(0, 5).toString() === 'HEAD ')) return done({ outcome: 'refused', status });
      try {
        const e = (JSON.parse(body) as { error?: Record<string, unknown> }).error;
        const shape = e !== undefined && ['message', 'type', 'param', 'code'].every((k) => k in e) && typeof e.message === 'string' && e.message.length > 0;
        done(shape ? { outcome: 'refused', status } : { outcome: 'server-error', status, detail: `no error shape: ${body.slice(0, 200)}` });
      } catch { done({ outcome: 'server-error', status, detail: `not JSON: ${body.slice(0, 200)}` }); }
    });
  });
}

export interface RequestFuzzResult {
  seed: number; cases: number; seconds: number;
  outcomes: Record<Outcome, number>;
  statuses: Record<string, number>;
  failures: { index: number; kind: string; outcome: Outcome; status?: number; detail?: string }[];
  /** A valid request's answer before and after the run, and whether they are equal. */
  sameAnswer: boolean;
  kvPages: { before: number; after: number };
  /** This process's memory (settled-memory.ts) before any case, at the baseline (after the warm-up
   *  cases) and after the last case. */
  heapMiB: { cold: number; baseline: number; after: number };
  /** The V8 heap's committed size: RSS moves with it. */
  heapCommittedMiB: { cold: number; baseline: number; after: number };
  rssMiB: { cold: number; baseline: number; after: number };
  /** Cases run before the baseline was measured. */
  warmupCases: number;
}

const mib = (x: number) => Math.round(x / 2 ** 20 * 10) / 10;

/** Runs cases [0, n) against a server over `t` (started here, with a short request timeout so cases
 *  with a lying Content-Length end quickly), `jobs` at a time. */
export async function runRequestFuzz(t: Tessera, opts: { n: number; seed: number; jobs?: number; timeoutMs?: number; settleMs?: number; onProgress?: (done: number) => void }): Promise<RequestFuzzResult> {
  const server = new TesseraServer({ apiKey: FUZZ_API_KEY, requestTimeoutMs: 500, headersTimeoutMs: 500, timeoutCheckMs: 100, maxBodyBytes: 256 * 1024 });
  const { port } = await server.listen(0, '127.0.0.1');
  server.ready(t);
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
    const cold = await settled();
    const t0 = performance.now();
    const outcomes: Record<Outcome, number> = { ok: 0, refused: 0, busy: 0, 'server-error': 0, hang: 0, reset: 0 };
    const statuses: Record<string, number> = {};
    const failures: RequestFuzzResult['failures'] = [];
    let next = 0, done = 0;
    const worker = async (end: number) => {
      while (next < end) {
        const i = next++;
        const c = fuzzCase(opts.seed, i);
        const r = await sendCase(port, c.raw, opts.timeoutMs ?? 60_000);
        outcomes[r.outcome]++;
        if (r.status !== undefined) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.outcome === 'server-error' || r.outcome === 'hang' || r.outcome === 'reset') failures.push({ index: i, kind: c.kind, ...r });
        if (++done % 500 === 0) opts.onProgress?.(done);
      }
    };
    // memory touched once (code, caches, the allocator's free lists) is taken in the first tenth of
    // the cases; growth after that baseline is what a leak would show
    const warmupCases = Math.ceil(opts.n / 10);
    const jobs = (end: number) => Promise.all(Array.from({ length: opts.jobs ?? 4 }, () => worker(end)));
    await jobs(warmupCases);
    const pause = performance.now();
    const baseline = await settled();
    const paused = performance.now() - pause;
    await jobs(opts.n);
    const seconds = (performance.now() - t0 - paused) / 1000;
    const after = await valid();
    const end = await settled();
    return {
      seed: opts.seed, cases: opts.n, seconds: Math.round(seconds * 10) / 10, outcomes, statuses, failures: failures.slice(0, 50),
      sameAnswer: after === answer,
      kvPages: { before: pages0, after: t.model.kvPages?.used ?? 0 },
      heapMiB: { cold: mib(cold.heapUsed), baseline: mib(baseline.heapUsed), after: mib(end.heapUsed) },
      heapCommittedMiB: { cold: mib(cold.heapCommitted), baseline: mib(baseline.heapCommitted), after: mib(end.heapCommitted) },
      rssMiB: { cold: mib(cold.rss), baseline: mib(baseline.rss), after: mib(end.rss) },
      warmupCases,
    };
  } finally {
    await server.shutdown(1000);
  }
}

const FLAGS: FlagSpecs = {
  n: { type: 'integer', min: 1, max: 10_000_000, default: 10_000, placeholder: 'N', description: 'cases' },
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
    const r = await runRequestFuzz(t, { n: v.n as number, seed: v.seed as number, jobs: v.jobs as number, timeoutMs: v['timeout-ms'] as number, onProgress: (d) => process.stderr.write(`${d} cases\n`) });
    const ok = r.failures.length === 0 && r.sameAnswer && r.kvPages.after <= r.kvPages.before;
    process.stdout.write(`request fuzz: ${r.cases} cases, seed ${r.seed}, ${r.seconds} s\n`
      + `| outcome | cases |\n|---|---|\n${Object.entries(r.outcomes).map(([k, n]) => `| ${k} | ${n} |`).join('\n')}\n`
      + `statuses: ${JSON.stringify(r.statuses)}\n`
      + `valid request answered the same after the run: ${r.sameAnswer}; KV pages ${r.kvPages.before} → ${r.kvPages.after}; `
      + `memory after ${SETTLE_MS / 1000} s idle and a collection, before any case / after the first ${r.warmupCases} (baseline) / after all: `
      + `heap ${r.heapMiB.cold} / ${r.heapMiB.baseline} / ${r.heapMiB.after} MiB; heap committed ${r.heapCommittedMiB.cold} / ${r.heapCommittedMiB.baseline} / ${r.heapCommittedMiB.after} MiB; RSS ${r.rssMiB.cold} / ${r.rssMiB.baseline} / ${r.rssMiB.after} MiB\n`);
    for (const f of r.failures.slice(0, 10)) process.stdout.write(`FAIL case ${f.index} (${f.kind}): ${f.outcome} ${f.status ?? ''} ${f.detail ?? ''}\n`);
    if (v.out !== undefined) writeFileSync(v.out as string, JSON.stringify({ command: `node dist/src/testing/request-fuzz.js ${argv.join(' ')}`, ...r }, null, 2) + '\n');
    return ok ? 0 : 1;
  } finally { t.dispose(); }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
