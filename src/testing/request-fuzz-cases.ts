// The request fuzz's cases and how an answer is judged (request-fuzz.ts runs them against a server;
// request-fuzz-client.ts sends them). Case i of a seed is a valid chat or text completion request with
// one mutation — a field set to a hostile value (negative, zero, huge, fractional, wrong type, deep,
// long), a field dropped or added, the body cut, garbled, nested 10,000 deep or given duplicate keys,
// a wrong Content-Length, broken or oversized headers, another method or path, a bad key — as the raw
// bytes sent over a socket; it depends only on (seed, i).

import { connect } from 'node:net';
import { Rng, deriveSeed } from '../data/rng.js';
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

/** Cases [from, to) of a seed against the server at 127.0.0.1:port, `jobs` connections at once. */
export interface CasesJob { port: number; seed: number; from: number; to: number; jobs: number; timeoutMs: number }
export interface CasesResult {
  outcomes: Record<Outcome, number>;
  statuses: Record<string, number>;
  failures: { index: number; kind: string; outcome: Outcome; status?: number; detail?: string }[];
}
