// Chat templates: Jinja programs shipped inside checkpoints, rendered with @huggingface/jinja.
//
// A template is hostile input. @huggingface/jinja interprets its own AST over its own value types:
// objects are Maps, attribute access goes through `Map.get` and a fixed table of builtins, so
// `constructor`, `__proto__`, `__globals__` and friends resolve to undefined rather than to JS
// objects; no JS code is ever evaluated. What it does not bound is work: nested loops, `a + a`
// doubling and `range(10**9)`. We bound those here:
//   - every AST node evaluated counts one step, every list produced counts its length (maxSteps;
//     a loop over it is paid for up front);
//   - every string or list produced is checked against maxOutputChars / maxItems;
//   - `range()` refuses more than maxItems elements before allocating them;
//   - deep macro recursion ends in V8's stack overflow, reported as a template error.
// A single builtin call can still build one string up to V8's limit (~2^29 chars) before the
// check sees it (e.g. `'x'|center(100000000)`): bounded, but not by our cap.

import * as jinja from '@huggingface/jinja';
import type { Tokenizer } from './types.js';
import { showMessage } from '../formats/errors.js';

// The library's .d.ts files use extensionless relative imports that NodeNext resolution cannot
// follow, so the few types we use are restated here.
interface RuntimeValue { value: unknown }
interface Environment { set(name: string, value: unknown): unknown }
interface Interpreter {
  evaluate(statement: unknown, environment: Environment): RuntimeValue;
  run(program: unknown): RuntimeValue;
}
interface Template { parsed: unknown }
const Environment = jinja.Environment as unknown as new (parent?: Environment) => Environment;
const Interpreter = jinja.Interpreter as unknown as new (env: Environment) => Interpreter;
const Template = jinja.Template as unknown as new (template: string) => Template;

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderChatTemplateOptions {
  messages: readonly ChatMessage[];
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** More variables for the template (e.g. tools, date_string). Cannot replace the ones above. */
  extra?: Record<string, unknown>;
  /** Work budget: AST nodes evaluated + items of every list produced. Default 1,000,000. */
  maxSteps?: number;
  /** Longest string (output or intermediate). Default 64 Mi chars + the messages' total length. */
  maxOutputChars?: number;
  /** Longest list, and largest range(). Default 1,000,000. */
  maxItems?: number;
}

/** Thrown when a template fails to parse, raises, or exceeds a bound. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** The rendered text (or a string inside the template) grew past maxOutputChars. */
export class ChatTemplateOutputLimitError extends ChatTemplateError {
  constructor(readonly chars: number, readonly limit: number) {
    super(`chat template: a string of ${chars} characters exceeds the limit of ${limit}`);
    this.name = 'ChatTemplateOutputLimitError';
  }
}

/** ChatML, used only when a caller asks for it explicitly for a model without a template. */
export const DEFAULT_CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const DEFAULT_MAX_STEPS = 1_000_000;
const DEFAULT_MAX_ITEMS = 1_000_000;
export const DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024 * 1024;


/** An interpreter that counts evaluation steps and checks the size of every value it produces. */
class BoundedInterpreter extends Interpreter {
  private steps = 0;

  constructor(env: Environment, private readonly maxSteps: number, private readonly maxChars: number, private readonly maxItems: number) {
    super(env);
  }

  override evaluate(statement: unknown, environment: Environment): RuntimeValue {
    this.charge(1);
    const v = super.evaluate(statement, environment);
    const value = v.value;
    if (typeof value === 'string' && value.length > this.maxChars) throw new ChatTemplateOutputLimitError(value.length, this.maxChars);
    if (Array.isArray(value)) {
      if (value.length > this.maxItems) {
        throw new ChatTemplateError(`chat template: a list of ${value.length} items exceeds the limit of ${this.maxItems}`);
      }
      // A for loop's iterations are not evaluations of their own (an empty body evaluates
      // nothing), so every list or mapping produced is charged its length up front.
      this.charge(value.length);
    } else if (value instanceof Map) {
      this.charge(value.size);
    }
    return v;
  }

  private charge(n: number): void {
    this.steps += n;
    if (this.steps > this.maxSteps) {
      throw new ChatTemplateError(`chat template: stopped after ${this.maxSteps} evaluation steps (runaway loop?)`);
    }
  }
}

const templateCache = new Map<string, Template>();

function parse(template: string): Template {
  let parsed = templateCache.get(template);
  if (parsed === undefined) {
    try {
      parsed = new Template(template);
    } catch (e) {
      throw new ChatTemplateError(`chat template does not parse: ${showMessage((e as Error).message)}`);
    }
    if (templateCache.size >= 16) templateCache.delete(templateCache.keys().next().value as string);
    templateCache.set(template, parsed);
  }
  return parsed;
}

/** Renders a chat template over `messages`. The template sees only the variables passed here. */
export function renderChatTemplate(template: string, opts: RenderChatTemplateOptions): string {
  if (typeof template !== 'string') throw new ChatTemplateError('chat template must be a string');
  const maxItems = opts.maxItems ?? DEFAULT_MAX_ITEMS;
  let inputChars = 0;
  const messages = opts.messages.map((m, i) => {
    if (typeof m !== 'object' || m === null || typeof m.role !== 'string' || typeof m.content !== 'string') {
      throw new ChatTemplateError(`messages[${i}] must be {role: string, content: string}`);
    }
    inputChars += m.content.length;
    return { ...m };
  });
  const maxChars = opts.maxOutputChars ?? DEFAULT_MAX_OUTPUT_CHARS + inputChars;
  const parsed = parse(template);

  // The library's globals (true/false/none, raise_exception, range, strftime_now) live in `globals`;
  // ours shadow them in a child scope: a capped range(), then the caller's variables.
  const globals = new Environment();
  setupTemplateGlobals(globals);
  const env = new Environment(globals);
  env.set('range', (start: number, stop?: number, step = 1) => boundedRange(start, stop, step, maxItems));
  env.set('raise_exception', (message: unknown) => {
    throw new ChatTemplateError(`chat template raised: ${String(message)}`);
  });
  const reserved = new Set(['messages', 'add_generation_prompt', 'bos_token', 'eos_token', 'range', 'raise_exception']);
  for (const [key, value] of Object.entries(opts.extra ?? {})) {
    if (!reserved.has(key)) env.set(key, value);
  }
  env.set('messages', messages);
  env.set('add_generation_prompt', opts.addGenerationPrompt ?? false);
  env.set('bos_token', opts.bosToken ?? '');
  env.set('eos_token', opts.eosToken ?? '');

  const interpreter = new BoundedInterpreter(env, opts.maxSteps ?? DEFAULT_MAX_STEPS, maxChars, maxItems);
  try {
    return String(interpreter.run(parsed.parsed).value);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
    if (e instanceof RangeError) throw new ChatTemplateError(`chat template exceeded a JS limit: ${e.message}`);
    throw new ChatTemplateError(`chat template failed: ${showMessage((e as Error).message)}`);
  }
}

/** range() as Python's, refusing lists longer than maxItems before building them. */
function boundedRange(start: number, stop: number | undefined, step: number, maxItems: number): number[] {
  if (stop === undefined || stop === null) {
    stop = start;
    start = 0;
  }
  for (const x of [start, stop, step]) {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new ChatTemplateError('range() takes integers');
  }
  if (step === 0) throw new ChatTemplateError('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > maxItems) throw new ChatTemplateError(`range() of ${n} items exceeds the limit of ${maxItems}`);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = start + i * step;
  return out;
}

function setupTemplateGlobals(env: Environment): void {
  // The library's own globals: constants and strftime_now (range / raise_exception are shadowed).
  for (const [k, v] of [['true', true], ['false', false], ['none', null], ['True', true], ['False', false], ['None', null]] as const) {
    env.set(k, v);
  }
  env.set('strftime_now', (format: string) => strftime(new Date(), String(format)));
}

/** The subset of Python's strftime that chat templates use (Llama 3.x: "%d %b %Y"). */
function strftime(d: Date, format: string): string {
  const months = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
  const days = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
  const pad = (n: number) => String(n).padStart(2, '0');
  return format.replace(/%([a-zA-Z%])/g, (m, c: string) => {
    switch (c) {
      case 'd': return pad(d.getDate());
      case 'm': return pad(d.getMonth() + 1);
      case 'Y': return String(d.getFullYear());
      case 'y': return pad(d.getFullYear() % 100);
      case 'b': return months[d.getMonth()].slice(0, 3);
      case 'B': return months[d.getMonth()];
      case 'a': return days[d.getDay()].slice(0, 3);
      case 'A': return days[d.getDay()];
      case 'H': return pad(d.getHours());
      case 'M': return pad(d.getMinutes());
      case 'S': return pad(d.getSeconds());
      case '%': return '%';
      default: return m;
    }
  });
}

/**
 * Renders `tokenizer`'s chat template; a model without one is an error that says what to do.
 * `modelName` names the model in that error.
 */
export function applyChatTemplate(
  tokenizer: Tokenizer,
  modelName: string,
  opts: Omit<RenderChatTemplateOptions, 'bosToken' | 'eosToken'> & { template?: string },
): string {
  const template = opts.template ?? tokenizer.chatTemplate;
  if (template === null || template === undefined) {
    throw new ChatTemplateError(`${modelName} has no chat template; pass --template or use generate`);
  }
  const bos = tokenizer.bosTokenId === null ? '' : tokenizer.idToToken(tokenizer.bosTokenId) ?? '';
  const eosId = tokenizer.eosTokenIds[0];
  const eos = eosId === undefined ? '' : tokenizer.idToToken(eosId) ?? '';
  return renderChatTemplate(template, { ...opts, bosToken: bos, eosToken: eos });
}
