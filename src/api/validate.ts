// Validation of OpenAI-shaped chat completion requests, shared by the JS API and (later) the HTTP server.
// Requests are hostile input (docs RELIABILITY): every field is type- and range-checked, unknown fields
// are refused, and each failure is an ApiError carrying OpenAI's error shape
//   {"error": {"message", "type", "param", "code"}}  with an HTTP status.

import type { SamplingOptions } from '../generation/sampler.js';

/** An error with OpenAI's error fields; `status` is the HTTP status a server should answer with. */
export class ApiError extends Error {
  constructor(message: string, readonly param: string | null = null, readonly code: string | null = null,
    readonly status = 400, readonly type = 'invalid_request_error') {
    super(message);
    this.name = 'ApiError';
  }
  /** The body an OpenAI-compatible server sends. */
  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface ChatMessage {
  role: ChatRole;
  /** Plain text, or OpenAI content parts (only `{type: 'text'}` parts are accepted). */
  content: string | { type: 'text'; text: string }[] | null;
  name?: string;
}

/** The request body of `chat.completions.create` (OpenAI fields plus vLLM's top_k/min_p/repetition_penalty). */
export interface ChatCompletionRequest {
  messages: ChatMessage[];
  model?: string;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
  frequency_penalty?: number | null;
  presence_penalty?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  n?: number | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  user?: string;
  logprobs?: boolean | null;
  /** JS API only (not a JSON field): cancels the request. */
  signal?: AbortSignal;
}

/** A validated request, in the engine's terms. */
export interface ValidatedChatRequest {
  messages: { role: ChatRole; content: string; name?: string }[];
  model?: string;
  maxTokens?: number;
  sampling: SamplingOptions;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

const KNOWN = new Set(['messages', 'model', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k',
  'min_p', 'repetition_penalty', 'frequency_penalty', 'presence_penalty', 'seed', 'stop', 'n', 'stream',
  'stream_options', 'user', 'logprobs', 'signal']);
const UNSUPPORTED = new Set(['tools', 'tool_choice', 'functions', 'function_call', 'logit_bias', 'top_logprobs',
  'response_format', 'audio', 'modalities', 'prediction', 'parallel_tool_calls']);
const ROLES = new Set<ChatRole>(['system', 'developer', 'user', 'assistant', 'tool']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function invalidType(param: string, expected: string, v: unknown): ApiError {
  return new ApiError(`Invalid type for '${param}': expected ${expected}, but got ${kind(v)}.`, param, 'invalid_type');
}
function invalidValue(param: string, expected: string, v: unknown): ApiError {
  return new ApiError(`Invalid value for '${param}': expected ${expected}, but got ${JSON.stringify(v) ?? String(v)}.`, param, 'invalid_value');
}

/** Reads an optional number field (absent or null → undefined) and checks its range. */
function num(body: Record<string, unknown>, param: string, ok: (x: number) => boolean, expected: string, integer = false): number | undefined {
  const v = body[param];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number') throw invalidType(param, integer ? 'an integer' : 'a number', v);
  if (!Number.isFinite(v) || (integer && !Number.isSafeInteger(v)) || !ok(v)) throw invalidValue(param, expected, v);
  return v;
}

function messageContent(m: Record<string, unknown>, i: number): string {
  const c = m.content;
  const param = `messages[${i}].content`;
  if (typeof c === 'string') return c;
  if ((c === null || c === undefined) && m.role === 'assistant') return '';
  if (!Array.isArray(c)) throw invalidType(param, 'a string or an array of text parts', c);
  return c.map((part, j) => {
    if (!isObject(part) || part.type !== 'text') throw new ApiError(`${param}[${j}]: only {"type": "text", "text": …} content parts are supported.`, `${param}[${j}]`, 'invalid_value');
    if (typeof part.text !== 'string') throw invalidType(`${param}[${j}].text`, 'a string', part.text);
    return part.text;
  }).join('');
}

/** Checks a chat completion request body; throws ApiError (status 400) naming the offending param. */
export function validateChatRequest(body: unknown): ValidatedChatRequest {
  if (!isObject(body)) throw new ApiError(`The request body must be a JSON object, but got ${kind(body)}.`, null, 'invalid_type');
  for (const key of Object.keys(body)) {
    if (UNSUPPORTED.has(key) && body[key] !== undefined && body[key] !== null) throw new ApiError(`'${key}' is not supported by this server.`, key, 'unsupported_parameter');
    if (!KNOWN.has(key) && !UNSUPPORTED.has(key)) throw new ApiError(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
  }
  if (body.signal !== undefined && !(body.signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', body.signal);

  const msgs = body.messages;
  if (msgs === undefined) throw new ApiError("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  if (!Array.isArray(msgs)) throw invalidType('messages', 'an array', msgs);
  if (msgs.length === 0) throw new ApiError("Invalid 'messages': empty array. Expected an array with minimum length 1.", 'messages', 'empty_array');
  const messages = msgs.map((m: unknown, i) => {
    if (!isObject(m)) throw invalidType(`messages[${i}]`, 'an object', m);
    for (const key of Object.keys(m)) {
      if (key !== 'role' && key !== 'content' && key !== 'name') throw new ApiError(`Unrecognized field in messages[${i}]: ${key}`, `messages[${i}].${key}`, 'unknown_parameter');
    }
    if (typeof m.role !== 'string' || !ROLES.has(m.role as ChatRole)) {
      throw invalidValue(`messages[${i}].role`, `one of ${[...ROLES].map((r) => `'${r}'`).join(', ')}`, m.role);
    }
    if (m.name !== undefined && typeof m.name !== 'string') throw invalidType(`messages[${i}].name`, 'a string', m.name);
    const out: { role: ChatRole; content: string; name?: string } = { role: m.role as ChatRole, content: messageContent(m, i) };
    if (m.name !== undefined) out.name = m.name as string;
    return out;
  });

  if (body.model !== undefined && typeof body.model !== 'string') throw invalidType('model', 'a string', body.model);
  if (body.user !== undefined && typeof body.user !== 'string') throw invalidType('user', 'a string', body.user);
  const n = num(body, 'n', (x) => x === 1, '1 (only one choice per request is supported)', true);
  void n;
  const maxTokens = num(body, 'max_completion_tokens', (x) => x >= 1, 'an integer ≥ 1', true)
    ?? num(body, 'max_tokens', (x) => x >= 1, 'an integer ≥ 1', true);
  if (body.max_tokens != null && body.max_completion_tokens != null) num(body, 'max_tokens', (x) => x >= 1, 'an integer ≥ 1', true);
  const sampling: SamplingOptions = {};
  const set = <K extends keyof SamplingOptions>(k: K, v: number | undefined) => { if (v !== undefined) sampling[k] = v; };
  set('temperature', num(body, 'temperature', (x) => x >= 0 && x <= 2, 'a number between 0 and 2'));
  set('topP', num(body, 'top_p', (x) => x > 0 && x <= 1, 'a number greater than 0 and at most 1'));
  const topK = num(body, 'top_k', (x) => x >= -1, 'an integer ≥ -1 (-1 or 0 disables top-k)', true);
  set('topK', topK === undefined ? undefined : Math.max(topK, 0));
  set('minP', num(body, 'min_p', (x) => x >= 0 && x <= 1, 'a number between 0 and 1'));
  set('repetitionPenalty', num(body, 'repetition_penalty', (x) => x > 0, 'a number greater than 0'));
  set('frequencyPenalty', num(body, 'frequency_penalty', (x) => x >= -2 && x <= 2, 'a number between -2 and 2'));
  set('presencePenalty', num(body, 'presence_penalty', (x) => x >= -2 && x <= 2, 'a number between -2 and 2'));
  set('seed', num(body, 'seed', () => true, 'a safe integer', true));

  let stop: string[] = [];
  const s = body.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s)) stop = s;
  else if (s !== undefined && s !== null) throw invalidType('stop', 'a string or an array of strings', s);
  if (stop.length > 4) throw invalidValue('stop', 'at most 4 stop sequences', `${stop.length} sequences`);
  stop.forEach((x, i) => {
    if (typeof x !== 'string') throw invalidType(`stop[${i}]`, 'a string', x);
    if (x.length === 0) throw invalidValue(`stop[${i}]`, 'a non-empty string', x);
  });

  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw invalidType('stream', 'a boolean', stream);
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!stream) throw new ApiError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
    if (!isObject(so)) throw invalidType('stream_options', 'an object', so);
    for (const key of Object.keys(so)) if (key !== 'include_usage') throw new ApiError(`Unrecognized field in stream_options: ${key}`, `stream_options.${key}`, 'unknown_parameter');
    if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean') throw invalidType('stream_options.include_usage', 'a boolean', so.include_usage);
    includeUsage = so.include_usage === true;
  }
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) {
    throw new ApiError("'logprobs' is not supported by this server.", 'logprobs', 'unsupported_parameter');
  }

  const out: ValidatedChatRequest = { messages, sampling, stop, stream, includeUsage };
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  if (typeof body.model === 'string') out.model = body.model;
  return out;
}
