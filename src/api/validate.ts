// Validation of OpenAI-shaped chat and text completion requests, shared by the JS API and the HTTP server.
// Requests are hostile input (docs RELIABILITY): every field is type- and range-checked, unknown fields
// are refused, and each failure is an ApiError carrying OpenAI's error shape
//   {"error": {"message", "type", "param", "code"}}  with an HTTP status.

import type { SamplingOptions } from '../generation/sampler.js';
import { parseSpeculateSpec } from '../generation/speculative.js';
import { MAX_TOP_LOGPROBS } from '../generation/sequence.js';
import type { ChoiceEvent } from './choices.js';
import { showValue } from '../formats/errors.js';
import type { Drafter } from '../generation/drafter.js';

/** What one request may ask for at most (each bounds work or memory a single request can cause). */
export const REQUEST_LIMITS = {
  /** Choices (n × prompts) per request. */
  choices: 16,
  /** Stop sequences, and characters in each. */
  stopStrings: 4,
  stopChars: 256,
  /** Messages in one chat request. */
  messages: 4096,
  /** Prompts in one text completion request. */
  prompts: 16,
  /** Alternatives per token: chat top_logprobs, and completions logprobs (OpenAI allows 5 there). */
  topLogprobs: MAX_TOP_LOGPROBS,
  completionLogprobs: 5,
  /** Characters in a short string field (model, user, speculate, attention): a response echoes the
   *  model name in every streamed chunk, so an unbounded one would multiply a request's size. */
  nameChars: 256,
} as const;

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
  top_logprobs?: number | null;
  /** Tessera extension: speculative decoding, as `--speculate` takes it ('draft=prompt-lookup,gamma=4')
   *  or {draft, gamma}; in the JS API `draft` may also be a Drafter the caller loaded (a DraftModel),
   *  which no JSON body can name (a request never makes the server load a file). */
  speculate?: string | { draft: string | Drafter; gamma?: number | 'auto' } | null;
  /** Tessera extension: the attention backend (must be the one the model was loaded with). */
  attention?: string | null;
  /** vLLM's extension: keep generating past the end-of-sequence token (benchmarks). */
  ignore_eos?: boolean | null;
  /** JS API only (not a JSON field): cancels the request. */
  signal?: AbortSignal;
  /** JS API only (not a JSON field): sees every choice's chunks and results as they happen (the
   *  server's metrics: time to first token, per-token latency, token counts). */
  onChoiceEvent?: (e: ChoiceEvent) => void;
  /** JS API only (not a JSON field): called once the whole request is known to be valid (fields,
   *  prompt tokens, context length), with the sequences it will run, before any starts; throwing
   *  refuses the request with that error (the server's queue limit, so a bad request gets its 400
   *  even when the server is full). */
  admit?: (sequences: number) => void;
}

/** The request body of `completions.create` (OpenAI's legacy text completions). */
export interface CompletionRequest extends Omit<ChatCompletionRequest, 'messages' | 'logprobs' | 'top_logprobs' | 'max_completion_tokens'> {
  prompt: string | string[] | number[] | number[][];
  /** Alternatives per token to report (0–5); the sampled token's log-probability is always included. */
  logprobs?: number | null;
  echo?: boolean | null;
}

/** What both kinds of request share, validated. */
interface ValidatedGeneration {
  model?: string;
  maxTokens?: number;
  sampling: SamplingOptions;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** Choices per prompt. */
  n: number;
  /** Alternatives per token when logprobs are asked for (undefined: no logprobs). */
  logprobs?: number;
  speculate?: { draft: 'prompt-lookup' | 'self' | Drafter; gamma: number | 'auto' };
  /** The attention spec the request names, as given (the caller compares it with the loaded one). */
  attention?: string;
  ignoreEos?: boolean;
}

export interface ValidatedCompletionRequest extends ValidatedGeneration {
  /** Text prompts or token-id prompts (ids are checked against the vocabulary by the generator). */
  prompts: (string | number[])[];
}

/** A validated chat request, in the engine's terms. */
export interface ValidatedChatRequest extends ValidatedGeneration {
  messages: { role: ChatRole; content: string; name?: string }[];
}

/** Request fields the JS API takes that are not JSON (a server refuses them in a body). */
export const JS_ONLY_FIELDS = ['signal', 'onChoiceEvent', 'admit'] as const;

const COMMON = ['model', 'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'frequency_penalty',
  'presence_penalty', 'seed', 'stop', 'n', 'stream', 'stream_options', 'user', 'logprobs', 'speculate', 'attention', 'ignore_eos', ...JS_ONLY_FIELDS];
const KNOWN = new Set([...COMMON, 'messages', 'max_completion_tokens', 'top_logprobs']);
const UNSUPPORTED = new Set(['tools', 'tool_choice', 'functions', 'function_call', 'logit_bias',
  'response_format', 'audio', 'modalities', 'prediction', 'parallel_tool_calls']);
const KNOWN_COMPLETION = new Set([...COMMON, 'prompt', 'echo']);
const UNSUPPORTED_COMPLETION = new Set(['suffix', 'best_of', 'logit_bias']);
const ROLES = new Set<ChatRole>(['system', 'developer', 'user', 'assistant', 'tool']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** A Drafter object (JS API only: JSON has no functions, so a body cannot pass one). */
function isDrafter(v: unknown): v is Drafter {
  return isObject(v) && typeof v.propose === 'function' && typeof v.forget === 'function' && typeof v.name === 'string';
}
function invalidType(param: string, expected: string, v: unknown): ApiError {
  return new ApiError(`Invalid type for '${param}': expected ${expected}, but got ${kind(v)}.`, param, 'invalid_type');
}
function invalidValue(param: string, expected: string, v: unknown): ApiError {
  return new ApiError(`Invalid value for '${param}': expected ${expected}, but got ${showValue(v)}.`, param, 'invalid_value');
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

/** Refuses unknown and unsupported fields. */
function checkKeys(body: Record<string, unknown>, known: ReadonlySet<string>, unsupported: ReadonlySet<string>): void {
  for (const key of Object.keys(body)) {
    if (unsupported.has(key) && body[key] !== undefined && body[key] !== null) throw new ApiError(`'${key}' is not supported by this server.`, key, 'unsupported_parameter');
    if (!known.has(key) && !unsupported.has(key)) throw new ApiError(`Unrecognized request argument supplied: ${key.slice(0, 64)}`, key.slice(0, 64), 'unknown_parameter');
  }
  if (body.signal !== undefined && !(body.signal instanceof AbortSignal)) throw invalidType('signal', 'an AbortSignal', body.signal);
  if (body.onChoiceEvent !== undefined && typeof body.onChoiceEvent !== 'function') throw invalidType('onChoiceEvent', 'a function', body.onChoiceEvent);
  if (body.admit !== undefined && typeof body.admit !== 'function') throw invalidType('admit', 'a function', body.admit);
}

/** An optional short string field: a string of at most REQUEST_LIMITS.nameChars characters. */
function shortString(body: Record<string, unknown>, param: string, expected = 'a string'): void {
  const v = body[param];
  if (v === undefined || v === null) return;
  if (typeof v !== 'string') throw invalidType(param, expected, v);
  if (v.length > REQUEST_LIMITS.nameChars) throw new ApiError(`Invalid value for '${param}': expected at most ${REQUEST_LIMITS.nameChars} characters, but got ${v.length}.`, param, 'invalid_value');
}

/** The fields chat and text completions share. `defaultMaxTokens` applies when neither max field is set. */
function generationFields(body: Record<string, unknown>): ValidatedGeneration {
  if (body.model === null) throw invalidType('model', 'a string', body.model);
  shortString(body, 'model');
  if (body.user === null) throw invalidType('user', 'a string', body.user);
  shortString(body, 'user');
  if (typeof body.speculate === 'string') shortString(body, 'speculate');
  const n = num(body, 'n', (x) => x >= 1 && x <= REQUEST_LIMITS.choices, `an integer from 1 to ${REQUEST_LIMITS.choices}`, true) ?? 1;
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
  // bounded so that a model's ordinary logits cannot overflow when divided or multiplied by it (1e-300
  // or 3e38 failed mid-stream); the sampler still refuses any logit that does overflow
  set('repetitionPenalty', num(body, 'repetition_penalty', (x) => x >= 0.01 && x <= 100, 'a number from 0.01 to 100 (1 = off)'));
  set('frequencyPenalty', num(body, 'frequency_penalty', (x) => x >= -2 && x <= 2, 'a number between -2 and 2'));
  set('presencePenalty', num(body, 'presence_penalty', (x) => x >= -2 && x <= 2, 'a number between -2 and 2'));
  set('seed', num(body, 'seed', () => true, 'a safe integer', true));
  // choice i samples with seed + i (choices.ts), which must stay a safe integer too
  if (sampling.seed !== undefined && sampling.seed + n - 1 > Number.MAX_SAFE_INTEGER) {
    throw invalidValue('seed', `an integer such that seed + n − 1 ≤ ${Number.MAX_SAFE_INTEGER} (choice i samples with seed + i)`, sampling.seed);
  }

  let stop: unknown[] = [];
  const s = body.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s)) stop = s;
  else if (s !== undefined && s !== null) throw invalidType('stop', 'a string or an array of strings', s);
  if (stop.length > REQUEST_LIMITS.stopStrings) throw invalidValue('stop', `at most ${REQUEST_LIMITS.stopStrings} stop sequences`, stop.length);
  stop.forEach((x, i) => {
    if (typeof x !== 'string') throw invalidType(`stop[${i}]`, 'a string', x);
    if (x.length === 0) throw invalidValue(`stop[${i}]`, 'a non-empty string', x);
    if (x.length > REQUEST_LIMITS.stopChars) throw invalidValue(`stop[${i}]`, `at most ${REQUEST_LIMITS.stopChars} characters`, `${x.length} characters`);
  });

  const stream = body.stream ?? false;
  if (typeof stream !== 'boolean') throw invalidType('stream', 'a boolean', stream);
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!stream) throw new ApiError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
    if (!isObject(so)) throw invalidType('stream_options', 'an object', so);
    for (const key of Object.keys(so)) if (key !== 'include_usage') throw new ApiError(`Unrecognized field in stream_options: ${key.slice(0, 64)}`, `stream_options.${key.slice(0, 64)}`, 'unknown_parameter');
    if (so.include_usage !== undefined && typeof so.include_usage !== 'boolean') throw invalidType('stream_options.include_usage', 'a boolean', so.include_usage);
    includeUsage = so.include_usage === true;
  }

  const out: ValidatedGeneration = { sampling, stop: stop as string[], stream, includeUsage, n };
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  if (typeof body.model === 'string') out.model = body.model;
  const spec = body.speculate;
  if (spec !== undefined && spec !== null) {
    try {
      if (isObject(spec) && isDrafter(spec.draft)) {
        // JS API: a Drafter the caller loaded; γ is checked by the spec parser as for any draft
        if (Object.keys(spec).some((k) => k !== 'draft' && k !== 'gamma')) throw new RangeError('expected {draft, gamma?: 1..64 or "auto"}');
        if (spec.gamma !== undefined && typeof spec.gamma !== 'number' && spec.gamma !== 'auto') throw new RangeError(`gamma must be an integer in [1, 64] or "auto", got ${kind(spec.gamma)}`);
        out.speculate = { draft: spec.draft, gamma: parseSpeculateSpec(`draft=prompt-lookup${spec.gamma === undefined ? '' : `,gamma=${spec.gamma}`}`).gamma };
      } else {
        let parsed: ReturnType<typeof parseSpeculateSpec>;
        if (typeof spec === 'string') parsed = parseSpeculateSpec(spec);
        else if (isObject(spec)) {
          for (const key of Object.keys(spec)) if (key !== 'draft' && key !== 'gamma') throw new RangeError(`unknown field ${key.slice(0, 64)}; expected {draft, gamma?: 1..64 or "auto"}`);
          if (spec.gamma !== undefined && typeof spec.gamma !== 'number' && spec.gamma !== 'auto') throw new RangeError(`gamma must be an integer in [1, 64] or "auto", got ${kind(spec.gamma)}`);
          if (String(spec.draft).length > REQUEST_LIMITS.nameChars) throw new RangeError(`draft: expected at most ${REQUEST_LIMITS.nameChars} characters, got ${String(spec.draft).length}`);
          parsed = parseSpeculateSpec(`draft=${String(spec.draft)}${spec.gamma === undefined ? '' : `,gamma=${spec.gamma}`}`);
        } else throw invalidType('speculate', "a string ('draft=prompt-lookup,gamma=4') or an object", spec);
        // a request must not make the server load files: a draft model is loaded when the server starts
        if (typeof parsed.draft === 'object') throw new RangeError('a draft model (draft=model:PATH) cannot be named in a request; use prompt-lookup or a self-speculation draft, or omit the field for the server\'s default');
        out.speculate = { draft: parsed.draft, gamma: parsed.gamma };
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new ApiError(`Invalid value for 'speculate': ${(e as Error).message.replace(/^--speculate: /, '')}.`, 'speculate', 'invalid_value');
    }
  }
  if (body.ignore_eos !== undefined && body.ignore_eos !== null) {
    if (typeof body.ignore_eos !== 'boolean') throw invalidType('ignore_eos', 'a boolean', body.ignore_eos);
    if (body.ignore_eos) out.ignoreEos = true;
  }
  if (body.attention !== undefined && body.attention !== null) {
    shortString(body, 'attention', 'a string such as "dense" or "magicpig:K=10,L=150"');
    out.attention = body.attention as string;
  }
  return out;
}

function checkLogprobsWithSpeculate(v: ValidatedGeneration): void {
  if (v.logprobs !== undefined && v.speculate !== undefined) {
    throw new ApiError("'logprobs' cannot be combined with 'speculate': a verified run of drafted tokens is not sampled token by token. Drop one of them.", 'logprobs', 'invalid_value');
  }
}

/** Checks a chat completion request body; throws ApiError (status 400) naming the offending param. */
export function validateChatRequest(body: unknown): ValidatedChatRequest {
  if (!isObject(body)) throw new ApiError(`The request body must be a JSON object, but got ${kind(body)}.`, null, 'invalid_type');
  checkKeys(body, KNOWN, UNSUPPORTED);
  const msgs = body.messages;
  if (msgs === undefined) throw new ApiError("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  if (!Array.isArray(msgs)) throw invalidType('messages', 'an array', msgs);
  if (msgs.length === 0) throw new ApiError("Invalid 'messages': empty array. Expected an array with minimum length 1.", 'messages', 'empty_array');
  if (msgs.length > REQUEST_LIMITS.messages) throw invalidValue('messages', `at most ${REQUEST_LIMITS.messages} messages`, msgs.length);
  const messages = msgs.map((m: unknown, i) => {
    if (!isObject(m)) throw invalidType(`messages[${i}]`, 'an object', m);
    for (const key of Object.keys(m)) {
      if (key !== 'role' && key !== 'content' && key !== 'name') throw new ApiError(`Unrecognized field in messages[${i}]: ${key.slice(0, 64)}`, `messages[${i}].${key.slice(0, 64)}`, 'unknown_parameter');
    }
    if (typeof m.role !== 'string' || !ROLES.has(m.role as ChatRole)) {
      throw invalidValue(`messages[${i}].role`, `one of ${[...ROLES].map((r) => `'${r}'`).join(', ')}`, m.role);
    }
    if (m.name !== undefined && typeof m.name !== 'string') throw invalidType(`messages[${i}].name`, 'a string', m.name);
    const out: { role: ChatRole; content: string; name?: string } = { role: m.role as ChatRole, content: messageContent(m, i) };
    if (m.name !== undefined) out.name = m.name as string;
    return out;
  });
  const v: ValidatedChatRequest = { ...generationFields(body), messages };
  const lp = body.logprobs;
  if (lp !== undefined && lp !== null && typeof lp !== 'boolean') throw invalidType('logprobs', 'a boolean', lp);
  const top = num(body, 'top_logprobs', (x) => x >= 0 && x <= REQUEST_LIMITS.topLogprobs, `an integer from 0 to ${REQUEST_LIMITS.topLogprobs}`, true);
  if (top !== undefined && lp !== true) throw new ApiError("'top_logprobs' needs 'logprobs': true.", 'top_logprobs', 'invalid_value');
  if (lp === true) v.logprobs = top ?? 0;
  checkLogprobsWithSpeculate(v);
  return v;
}

/** Checks a text completion request body (OpenAI's /v1/completions); throws ApiError naming the param. */
export function validateCompletionRequest(body: unknown): ValidatedCompletionRequest {
  if (!isObject(body)) throw new ApiError(`The request body must be a JSON object, but got ${kind(body)}.`, null, 'invalid_type');
  checkKeys(body, KNOWN_COMPLETION, UNSUPPORTED_COMPLETION);
  const p = body.prompt;
  if (p === undefined || p === null) throw new ApiError("Missing required parameter: 'prompt'.", 'prompt', 'missing_required_parameter');
  if (Array.isArray(p) && p.length === 0) throw new ApiError("Invalid value for 'prompt': expected a string, token ids or a list of prompts, but got an empty array.", 'prompt', 'invalid_value');
  const isIds = (x: unknown): x is number[] => Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === 'number');
  let prompts: (string | number[])[];
  if (typeof p === 'string') prompts = [p];
  else if (isIds(p)) prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || isIds(x))) prompts = p as (string | number[])[];
  else throw invalidType('prompt', 'a string, an array of strings, an array of token ids, or an array of such arrays', p);
  if (prompts.length > REQUEST_LIMITS.prompts) throw invalidValue('prompt', `at most ${REQUEST_LIMITS.prompts} prompts`, prompts.length);
  if (body.max_completion_tokens !== undefined) throw new ApiError('Unrecognized request argument supplied: max_completion_tokens', 'max_completion_tokens', 'unknown_parameter');
  const v: ValidatedCompletionRequest = { ...generationFields(body), prompts };
  if (prompts.length * v.n > REQUEST_LIMITS.choices) {
    throw new ApiError(`Invalid value for 'n': expected at most ${REQUEST_LIMITS.choices} choices per request (n × prompts), but got ${v.n} × ${prompts.length} prompts.`, 'n', 'invalid_value');
  }
  const lp = num(body, 'logprobs', (x) => x >= 0 && x <= REQUEST_LIMITS.completionLogprobs, `an integer from 0 to ${REQUEST_LIMITS.completionLogprobs}`, true);
  if (lp !== undefined) v.logprobs = lp;
  if (body.echo !== undefined && body.echo !== null && typeof body.echo !== 'boolean') throw invalidType('echo', 'a boolean', body.echo);
  if (body.echo === true) throw new ApiError("'echo' is not supported by this server.", 'echo', 'unsupported_parameter');
  checkLogprobsWithSpeculate(v);
  return v;
}
