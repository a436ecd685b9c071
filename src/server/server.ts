// `tessera serve`: an OpenAI-compatible HTTP server on node:http over one Tessera instance.
//
//   GET  /health               200 ready, 503 while loading or shutting down (no key needed)
//   GET  /v1/models            the one model
//   POST /v1/completions       text completions        ─┐ JSON, or Server-Sent Events with stream: true
//   POST /v1/chat/completions  chat (the chat template) ─┘ (data: {chunk} … data: [DONE])
//   POST /tokenize, /detokenize
//   GET  /metrics              Prometheus text (metrics.ts)
//
// Every generation goes through the model's scheduler (continuous batching) via the JS API
// (src/api), which validates requests and shapes responses; this file is the HTTP surface. Requests
// are hostile input (docs/RELIABILITY.md "Requests"): bodies are capped while they are read (413)
// and parsed strictly (duplicate keys refused); every error is OpenAI's {"error": {message, type,
// param, code}}; past `parallel + maxQueued` sequences a request gets 503 with Retry-After; slow or
// stalled clients are cut off by the header, request and idle timeouts; a client that goes away
// aborts its request, whose sequence and KV pages are freed within one scheduler step. No request
// field names a file.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Tessera } from '../api/tessera.js';
import { ApiError, JS_ONLY_FIELDS } from '../api/validate.js';
import type { ChoiceEvent } from '../api/choices.js';
import { Scheduler, QueueFullError, type SpeculateOptions } from '../generation/scheduler.js';
import { parseSpeculateSpec } from '../generation/speculative.js';
import { parseJsonStrict } from '../formats/json-strict.js';
import { METRICS_CONTENT_TYPE, ServerMetrics } from './metrics.js';

export interface ServeOptions {
  /** Requests must carry `Authorization: Bearer <apiKey>` (all routes but /health and CORS preflight). */
  apiKey?: string;
  /** Allowed browser origin for CORS ('*' for any); none by default. */
  cors?: string;
  /** Largest request body in bytes (default 4 MiB); a larger one gets 413. */
  maxBodyBytes?: number;
  /** Sequences that may wait for a slot beyond the model's parallel ones (default 64); past that, 503. */
  maxQueued?: number;
  /** Seconds a 503 asks the client to wait (Retry-After, default 1). */
  retryAfterSeconds?: number;
  /** Milliseconds to receive a request's headers (default 10 s): slow-loris clients are cut off. */
  headersTimeoutMs?: number;
  /** Milliseconds to receive a whole request, headers and body (default 30 s): half-sent bodies are cut off. */
  requestTimeoutMs?: number;
  /** Milliseconds a connection may be silent before it is closed (default 600 s, as llama.cpp's server). */
  idleTimeoutMs?: number;
  /** Milliseconds a kept-alive connection waits for its next request (default 5 s). */
  keepAliveTimeoutMs?: number;
  /** How often the header and request timeouts are checked (default 1 s). */
  timeoutCheckMs?: number;
  /** Speculative decoding for requests that do not set `speculate` (and do not ask for logprobs), as
   *  `--speculate` takes it: 'draft=prompt-lookup,gamma=4', 'draft=streaming:window=256'. A draft
   *  model is loaded with the model and given to ready() instead. */
  speculate?: string;
}

const ROUTES = new Set(['/health', '/v1/models', '/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize', '/metrics']);

/** An HTTP error with OpenAI's error body. */
class HttpError extends ApiError {
  constructor(status: number, message: string, code: string | null, type: string, readonly headers: Record<string, string> = {}) {
    super(message, null, code, status, type);
  }
}

function hash(s: string): Buffer { return createHash('sha256').update(s).digest(); }

export class TesseraServer {
  readonly http: Server;
  readonly metrics = new ServerMetrics();
  private tessera: Tessera | undefined;
  private closing = false;
  /** Sequences (choices) of requests being answered now. */
  private inFlight = 0;
  private readonly requests = new Set<AbortController>();
  /** The generation answering on a connection: what its idle timeout does to it (see onIdle). */
  private readonly answering = new WeakMap<Socket, () => void>();
  private readonly keyHash: Buffer | undefined;
  private readonly maxBody: number;
  private readonly maxQueued: number;
  /** What requests without a `speculate` field use (and that do not ask for logprobs). */
  private speculate: string | SpeculateOptions | undefined;

  constructor(private readonly opts: ServeOptions = {}) {
    const ms = (v: number | undefined, fallback: number, name: string) => {
      const x = v ?? fallback;
      if (!Number.isInteger(x) || x < 1) throw new RangeError(`serve: ${name} must be a positive integer of milliseconds, got ${v}`);
      return x;
    };
    this.keyHash = opts.apiKey !== undefined ? hash(opts.apiKey) : undefined;
    if (opts.apiKey !== undefined && opts.apiKey.length === 0) throw new RangeError('serve: the API key is empty');
    this.maxBody = opts.maxBodyBytes ?? 4 * 1024 * 1024;
    if (!Number.isInteger(this.maxBody) || this.maxBody < 1) throw new RangeError(`serve: maxBodyBytes must be a positive integer, got ${opts.maxBodyBytes}`);
    if (opts.speculate !== undefined) {
      // a bad spec fails at start, not per request; a draft model is loaded by the caller (ready())
      if (typeof parseSpeculateSpec(opts.speculate).draft === 'object') throw new RangeError('serve: a draft model (draft=model:PATH) is loaded with the model: pass the loaded DraftModel to ready(), not a spec to the constructor');
      this.speculate = opts.speculate;
    }
    this.maxQueued = opts.maxQueued ?? 64;
    if (!Number.isInteger(this.maxQueued) || this.maxQueued < 0) throw new RangeError(`serve: maxQueued must be an integer ≥ 0, got ${opts.maxQueued}`);
    this.http = createServer({
      headersTimeout: ms(opts.headersTimeoutMs, 10_000, 'headersTimeoutMs'),
      requestTimeout: ms(opts.requestTimeoutMs, 30_000, 'requestTimeoutMs'),
      keepAliveTimeout: ms(opts.keepAliveTimeoutMs, 5_000, 'keepAliveTimeoutMs'),
      connectionsCheckingInterval: ms(opts.timeoutCheckMs, 1_000, 'timeoutCheckMs'),
      maxHeaderSize: 16 * 1024,
    }, (req, res) => { void this.handle(req, res); });
    this.http.timeout = ms(opts.idleTimeoutMs, 600_000, 'idleTimeoutMs');   // silent sockets (half-open peers) are destroyed
    this.http.on('timeout', (socket: Socket) => this.onIdle(socket));
    this.http.maxHeadersCount = 100;
  }

  /** Serves this model from now on (/health turns 200). `speculate`, when given, is the speculation
   *  requests that do not set the field use, for a draft that is loaded with the model (a DraftModel,
   *  shared by every request; each sequence keeps its own draft cache); not with opts.speculate. */
  ready(tessera: Tessera, speculate?: SpeculateOptions): void {
    if (speculate !== undefined) {
      if (this.opts.speculate !== undefined) throw new RangeError('serve: give the default speculation once, to the constructor (a spec string) or to ready() (a loaded draft), not both');
      this.speculate = speculate;
    }
    this.tessera = tessera;
  }

  get isReady(): boolean { return this.tessera !== undefined && !this.closing; }

  listen(port: number, host: string): Promise<{ port: number; host: string }> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        const a = this.http.address();
        resolve(typeof a === 'object' && a !== null ? { port: a.port, host: a.address } : { port, host });
      });
    });
  }

  /** Graceful shutdown: stop admitting (503), let running requests finish for up to `graceMs`, then
   *  cancel what is left (freeing its memory) and close every connection. */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    const deadline = Date.now() + graceMs;
    while (this.requests.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.requests) c.abort(new DOMException('the server is shutting down', 'AbortError'));
    while (this.requests.size > 0) await new Promise((r) => setTimeout(r, 10));
    this.http.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0]!;
    const handler = ROUTES.has(path) ? path : 'other';
    res.on('finish', () => this.metrics.countHttp(handler, res.statusCode));
    try {
      if (this.opts.cors !== undefined) this.corsHeaders(req, res);
      if (req.method === 'OPTIONS' && this.opts.cors !== undefined) { req.resume(); res.writeHead(204).end(); return; }
      if (path === '/health') return this.health(req, res);
      this.authorize(req);
      if (!ROUTES.has(path)) throw new HttpError(404, `Unknown route ${req.method} ${path.slice(0, 100)}; routes: ${[...ROUTES].join(', ')}`, 'not_found', 'invalid_request_error');
      const get = path === '/v1/models' || path === '/metrics';
      if (req.method !== (get ? 'GET' : 'POST')) throw new HttpError(405, `${path} takes ${get ? 'GET' : 'POST'}, not ${String(req.method).slice(0, 16)}`, 'method_not_allowed', 'invalid_request_error', { Allow: get ? 'GET' : 'POST' });
      if (this.closing) throw this.unavailable('The server is shutting down.');
      const t = this.tessera;
      if (t === undefined) throw this.unavailable('The model is still loading.');
      if (path === '/metrics') { req.resume(); return this.sendMetrics(res, t); }
      if (path === '/v1/models') {
        req.resume();
        return send(res, 200, { object: 'list', data: [{ id: t.name, object: 'model', created: 0, owned_by: 'tessera', max_model_len: t.contextLength }] });
      }
      const body = await this.readJson(req);
      if (path === '/tokenize') return send(res, 200, this.tokenize(t, body));
      if (path === '/detokenize') return send(res, 200, this.detokenize(t, body));
      await this.generate(t, path === '/v1/chat/completions', body, req, res, started);
    } catch (e) {
      this.fail(res, e);
    }
  }

  private health(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (this.closing) return send(res, 503, { status: 'shutting down' });
    if (this.tessera === undefined) return send(res, 503, { status: 'loading model' });
    send(res, 200, { status: 'ok' });
  }

  private authorize(req: IncomingMessage): void {
    if (this.keyHash === undefined) return;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    if (m === null || !timingSafeEqual(hash(m[1]!), this.keyHash)) {
      throw new HttpError(401, m === null ? 'Missing API key: send the header Authorization: Bearer <key>.' : 'Incorrect API key provided.', 'invalid_api_key', 'invalid_request_error');
    }
  }

  private corsHeaders(req: IncomingMessage, res: ServerResponse): void {
    const allowed = this.opts.cors!;
    const origin = req.headers.origin;
    if (allowed !== '*' && origin !== allowed) return;
    res.setHeader('Access-Control-Allow-Origin', allowed === '*' ? '*' : allowed);
    res.setHeader('Vary', 'Origin');
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.setHeader('Access-Control-Max-Age', '600');
  }

  private unavailable(message: string): HttpError {
    return new HttpError(503, message, 'service_unavailable', 'server_error', { 'Retry-After': String(this.opts.retryAfterSeconds ?? 1) });
  }

  /** Reads the body up to maxBody bytes (413 past it, from Content-Length or while reading) and
   *  parses it as strict JSON (400 naming the problem). */
  private async readJson(req: IncomingMessage): Promise<unknown> {
    const tooLarge = () => new HttpError(413, `The request body is larger than this server's limit of ${this.maxBody} bytes.`, 'request_too_large', 'invalid_request_error', { Connection: 'close' });
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.maxBody) { req.resume(); throw tooLarge(); }
    // the body is parsed as JSON whatever Content-Type says (curl -d sends form-urlencoded), as llama.cpp does
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > this.maxBody) { req.resume(); throw tooLarge(); }
      chunks.push(c);
    }
    let text: string;
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)); } catch {
      throw new HttpError(400, 'The request body is not valid UTF-8.', 'invalid_json', 'invalid_request_error');
    }
    if (text.trim() === '') throw new HttpError(400, 'The request body is empty: send a JSON object.', 'invalid_json', 'invalid_request_error');
    try {
      return parseJsonStrict(text, 'request body', { maxDepth: 32 });
    } catch (e) {
      throw new HttpError(400, `We could not parse the JSON body of your request: ${(e as Error).message}`, 'invalid_json', 'invalid_request_error');
    }
  }

  private tokenize(t: Tessera, body: unknown): { tokens: number[]; count: number; max_model_len: number } {
    const b = objectBody(body, ['prompt', 'content', 'add_special_tokens', 'model']);
    const text = b.prompt ?? b.content;
    if (typeof text !== 'string') throw new ApiError("'prompt' must be a string (the text to tokenize).", b.content !== undefined ? 'content' : 'prompt', 'invalid_type');
    if (b.add_special_tokens !== undefined && typeof b.add_special_tokens !== 'boolean') throw new ApiError("'add_special_tokens' must be a boolean.", 'add_special_tokens', 'invalid_type');
    // tokenizing runs on the event loop: a text that cannot fit the context is refused from its length,
    // as completions refuse such a prompt, instead of stalling every stream for seconds
    if (text.length > t.promptCharLimit) {
      throw new ApiError(`'${b.content !== undefined ? 'content' : 'prompt'}' has ${text.length} characters, more than a text that fits the context of ${t.contextLength} tokens can have (${t.promptCharLimit}); /tokenize takes text up to that length.`,
        b.content !== undefined ? 'content' : 'prompt', 'context_length_exceeded');
    }
    const tokens = t.tokenize(text, { addSpecialTokens: b.add_special_tokens as boolean | undefined });
    return { tokens, count: tokens.length, max_model_len: t.contextLength };
  }

  private detokenize(t: Tessera, body: unknown): { prompt: string } {
    const b = objectBody(body, ['tokens', 'model']);
    const ids = b.tokens;
    if (!Array.isArray(ids)) throw new ApiError("'tokens' must be an array of token ids.", 'tokens', 'invalid_type');
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= t.model.vocabSize) throw new ApiError(`tokens[${i}] = ${JSON.stringify(id)} is not a token id (an integer from 0 to ${t.model.vocabSize - 1}).`, `tokens[${i}]`, 'invalid_value');
    });
    return { prompt: t.detokenize(ids as number[]) };
  }

  private sendMetrics(res: ServerResponse, t: Tessera): void {
    const s = Scheduler.of(t.model).stats;
    const kv = t.model.kvPages;
    const text = this.metrics.render({ running: s.running, waiting: s.queued, kvPagesUsed: kv?.used, kvPagesTotal: kv?.pages });
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE }).end(text);
  }

  /** A connection silent for the idle timeout. Without a request in progress (a half-open peer, an
   *  idle keep-alive) it is closed. With one, the client is still waiting for an answer that has not
   *  come (queued, or a long answer that is not streamed): the generation is cancelled and the client
   *  told why, instead of the connection dropping without a word; a stream whose reader stopped reading
   *  is closed. */
  private onIdle(socket: Socket): void {
    const timedOut = this.answering.get(socket);
    if (timedOut === undefined) socket.destroy();
    else timedOut();
  }

  /** What a request gets when its connection stayed silent for the idle timeout. */
  private idleTimeoutError(): HttpError {
    return new HttpError(504, `No answer within the server's idle timeout (${this.http.timeout / 1000} s without data on the connection): `
      + 'the request was cancelled. Ask for stream: true (tokens are sent as they come), or start the server with a longer --timeout.', 'timeout', 'server_error', { Connection: 'close' });
  }

  /** A completion or chat request, answered as JSON or as Server-Sent Events. */
  private async generate(t: Tessera, chat: boolean, body: unknown, req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('The request body must be a JSON object.', null, 'invalid_type');
    const b = { ...(body as Record<string, unknown>) };
    const jsOnly = JS_ONLY_FIELDS.find((k) => b[k] !== undefined);
    if (jsOnly !== undefined) throw new ApiError(`Unrecognized request argument supplied: ${jsOnly}`, jsOnly, 'unknown_parameter');
    const speculateByDefault = this.speculate !== undefined && b.speculate === undefined && (b.logprobs === undefined || b.logprobs === null || b.logprobs === false);
    if (speculateByDefault) b.speculate = this.speculate;
    const abort = new AbortController();
    // the client went away before the answer was complete: cancel (frees the sequences within a step)
    res.on('close', () => { if (!res.writableFinished) abort.abort(new DOMException('the client disconnected', 'AbortError')); });
    let timedOut = false;
    const onIdle = () => { timedOut = true; abort.abort(new DOMException('no answer within the idle timeout', 'TimeoutError')); };
    this.answering.set(req.socket, onIdle);
    // Admission comes after the API has checked the whole request (fields, prompt, context), so a bad
    // request gets its 400 even while the server is full; past parallel + maxQueued sequences, 503.
    let want = 0;
    const admit = (sequences: number) => {
      const limit = t.model.parallel + this.maxQueued;
      // more sequences than the server ever holds at once: no retry can succeed
      if (sequences > limit) {
        throw new ApiError(`This request needs ${sequences} sequences (n × prompts), more than this server runs or queues at once (${limit}: --parallel ${t.model.parallel} + --queue ${this.maxQueued}); ask for fewer choices or prompts.`,
          typeof b.n === 'number' && b.n > 1 ? 'n' : 'prompt', 'invalid_value');
      }
      if (this.inFlight + sequences > limit) {
        throw this.unavailable(`The server is busy: ${this.inFlight} sequences are running or queued (limit ${t.model.parallel + this.maxQueued}). Retry after the Retry-After seconds.`);
      }
      want = sequences;
      this.inFlight += want;
    };
    this.requests.add(abort);
    const n = typeof b.n === 'number' ? b.n : 1;            // choices per prompt (valid once observe() sees events)
    const seen = new Map<number, number>();                 // choice → time of its last token
    let first = true, finished = 0, generating = false;
    const observe = (e: ChoiceEvent) => {
      const now = performance.now();
      if ('result' in e) {
        finished++;
        const r = e.result;
        this.metrics.countFinished(r.finishReason === 'eos' ? 'stop' : r.finishReason);
        this.metrics.generationTokens += r.tokens.length;
        if (e.index % n === 0) { this.metrics.promptTokens += r.promptTokens; this.metrics.cachedPromptTokens += r.cachedTokens; }
        if (r.speculative) {
          this.metrics.speculating = true;
          this.metrics.specDrafts += r.speculative.steps;
          this.metrics.specDraftTokens += r.speculative.drafted;
          this.metrics.specAcceptedTokens += r.speculative.accepted;
        }
        return;
      }
      if (e.chunk.tokens.length === 0) return;
      if (first) { first = false; this.metrics.ttft.observe((now - started) / 1000); }
      const last = seen.get(e.index);
      if (last !== undefined) this.metrics.interToken.observe((now - last) / 1000 / e.chunk.tokens.length);
      seen.set(e.index, now);
    };
    try {
      const request = { ...b, signal: abort.signal, onChoiceEvent: observe, admit };
      const result = chat ? await t.chat.completions.create(request as never) : await t.completions.create(request as never);
      generating = true;                                    // the request was valid: its choices count from here
      if (!isStream(result)) { send(res, 200, result); return; }
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Accel-Buffering': 'no' });
      res.flushHeaders();
      try {
        for await (const c of result) {
          if (!res.write(`data: ${JSON.stringify(c)}\n\n`)) await drained(res, abort.signal);
          // the client went away: chunks the scheduler queued before it saw the abort go nowhere
          if (abort.signal.aborted && !this.closing) throw abort.signal.reason;
        }
        res.end('data: [DONE]\n\n');
      } catch (e) {
        // timed out with the socket free to take more: the reason in the stream, else the client is gone
        if (timedOut && !this.closing && !res.destroyed && !res.writableNeedDrain) { res.end(`data: ${JSON.stringify(this.idleTimeoutError().toJSON())}\n\ndata: [DONE]\n\n`); return; }
        if (abort.signal.aborted && !this.closing) { res.destroy(); return; }   // the client is gone
        // headers are sent: the error goes in the stream, as OpenAI's server does
        const err = this.closing ? this.unavailable('The server is shutting down: this request was cancelled.') : asApiError(e);
        res.end(`data: ${JSON.stringify(err.toJSON())}\n\ndata: [DONE]\n\n`);
      }
    } catch (e) {
      if (timedOut && !this.closing && !res.headersSent && !res.destroyed) throw this.idleTimeoutError();   // nothing sent yet: a 504 saying why
      if (abort.signal.aborted && !this.closing) { res.destroy(); return; }
      throw abort.signal.aborted ? this.unavailable('The server is shutting down: this request was cancelled.') : e;
    } finally {
      if (this.answering.get(req.socket) === onIdle) this.answering.delete(req.socket);
      if (generating) for (let i = finished; i < want; i++) this.metrics.countFinished('abort');
      this.inFlight -= want;
      this.requests.delete(abort);
      this.metrics.e2e.observe((performance.now() - started) / 1000);
    }
  }

  /** Answers with OpenAI's error body (a response whose headers are out is cut off instead). */
  private fail(res: ServerResponse, e: unknown): void {
    if (res.headersSent) { res.destroy(); return; }
    const err = asApiError(e);
    const headers = err instanceof HttpError ? err.headers : {};
    send(res, err.status, err.toJSON(), headers);
  }
}

function isStream(x: unknown): x is AsyncIterable<unknown> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

/** The request's errors (ApiError, QueueFullError) as they are; anything else is a 500 whose message
 *  says what failed (the server keeps serving). */
function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) return new HttpError(503, e.message, 'service_unavailable', 'server_error', { 'Retry-After': '1' });
  const message = e instanceof Error ? e.message : String(e);
  return new ApiError(`The server failed on this request: ${message}`, null, 'internal_error', 500, 'server_error');
}

function objectBody(body: unknown, known: string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError('The request body must be a JSON object.', null, 'invalid_type');
  for (const k of Object.keys(body)) if (!known.includes(k)) throw new ApiError(`Unrecognized request argument supplied: ${k.slice(0, 64)}`, k.slice(0, 64), 'unknown_parameter');
  return body as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers }).end(text);
}

/** Resolves when the response can take more (a slow reader pauses its own generation) or the request
 *  ends — at once if it has ended already: an abort event that has fired does not fire again, and a
 *  response whose client is gone reports every write as not taken and never drains. */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { res.off('drain', done); signal.removeEventListener('abort', done); resolve(); };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
