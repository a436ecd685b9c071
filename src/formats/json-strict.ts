// A strict JSON parser for files that are hostile input (safetensors headers, config.json, index files).
// Why not JSON.parse: it silently keeps the last of two duplicate keys, so a file could show one value
// to a checker and another to a loader (safetensors requires duplicates to be rejected). This parser:
//   - rejects duplicate keys in any object;
//   - is iterative (an explicit stack), so `[[[[…` 1e5 deep fails with a FormatError at maxDepth
//     instead of a stack overflow;
//   - runs in time linear in the input (every character is looked at a bounded number of times);
//   - follows RFC 8259's grammar exactly (no comments, trailing commas, NaN, leading zeros…);
//   - stores a key named "__proto__" with defineProperty, so it is plain data, never a prototype.
// Numbers become JS numbers (1e400 → Infinity); callers check ranges/integrality themselves.

import { FormatError } from './errors.js';

export interface StrictJsonOptions {
  /** Deepest allowed nesting of objects/arrays (default 128). */
  maxDepth?: number;
  /** Prefix for error messages, e.g. 'header' → "header: duplicate key …". */
  context?: string;
  /** Most members of one object or elements of one array (default unlimited). Checked while parsing,
   *  so a huge table is refused before it is built. */
  maxEntries?: number;
}

export const DEFAULT_MAX_JSON_DEPTH = 128;

type Frame =
  | { array: false; value: Record<string, unknown>; key: string; count: number }
  | { array: true; value: unknown[]; count: number };

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Parses `text` as one JSON value; throws FormatError(source, …) on any deviation from RFC 8259,
 *  on duplicate keys and on nesting deeper than maxDepth. */
export function parseJsonStrict(text: string, source: string, opts: StrictJsonOptions = {}): unknown {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const maxEntries = opts.maxEntries ?? Infinity;
  const prefix = opts.context ? `${opts.context}: ` : '';
  const n = text.length;
  let i = 0;
  const stack: Frame[] = [];

  const fail = (what: string): never => {
    throw new FormatError(source, `${prefix}invalid JSON at offset ${i}: ${what}`);
  };
  const skipWs = (): void => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const describe = (): string => (i >= n ? 'unexpected end of input' : `unexpected character ${JSON.stringify(text[i])}`);

  const parseString = (): string => {
    // text[i] === '"'
    i++;
    let out = '';
    let start = i;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) { out += text.slice(start, i); i++; return out; }
      if (c < 0x20) fail('control character in string (must be escaped)');
      if (c !== 0x5c) { i++; continue; }
      out += text.slice(start, i);
      const e = text[i + 1];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape (needs 4 hex digits)');
          out += String.fromCharCode(parseInt(hex, 16));
          i += 4;
          break;
        }
        default: fail('bad escape in string');
      }
      i += 2;
      start = i;
    }
  };

  // Parses `"key" :` after an object's `{` or `,`; leaves i at the value.
  const parseKey = (): string => {
    skipWs();
    if (text.charCodeAt(i) !== 0x22) fail(`expected a string key, found ${describe()}`);
    const key = parseString();
    skipWs();
    if (text.charCodeAt(i) !== 0x3a) fail(`expected ':' after key, found ${describe()}`);
    i++;
    return key;
  };


  for (;;) {
    // State: a value is expected at i.
    skipWs();
    let value: unknown;
    const c = text.charCodeAt(i);
    if ((c === 0x7b || c === 0x5b) && stack.length >= maxDepth) fail(`nesting deeper than ${maxDepth} levels`);
    if (c === 0x7b) { // {
      i++;
      const obj: Record<string, unknown> = {};
      skipWs();
      if (text.charCodeAt(i) === 0x7d) { i++; value = obj; }
      else { stack.push({ array: false, value: obj, key: parseKey(), count: 0 }); continue; }
    } else if (c === 0x5b) { // [
      i++;
      const arr: unknown[] = [];
      skipWs();
      if (text.charCodeAt(i) === 0x5d) { i++; value = arr; }
      else { stack.push({ array: true, value: arr, count: 0 }); continue; }
    } else if (c === 0x22) {
      value = parseString();
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) fail('malformed number');
      i += m![0].length;
      value = Number(m![0]);
    } else if (text.startsWith('true', i)) { i += 4; value = true; }
    else if (text.startsWith('false', i)) { i += 5; value = false; }
    else if (text.startsWith('null', i)) { i += 4; value = null; }
    else fail(`expected a value, found ${describe()}`);

    // A value is complete: attach it to its parent, closing as many containers as end here.
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        skipWs();
        if (i !== n) fail(`trailing ${describe().replace('unexpected ', '')} after the JSON value`);
        return value;
      }
      if (++top.count > maxEntries) {
        throw new FormatError(source, `${prefix}more than ${maxEntries} entries in one JSON ${top.array ? 'array' : 'object'} (at offset ${i})`);
      }
      if (top.array) top.value.push(value);
      else {
        if (Object.hasOwn(top.value, top.key)) {
          const shown = top.key.length > 80 ? `${top.key.slice(0, 80)}…` : top.key;
          throw new FormatError(source, `${prefix}duplicate key ${JSON.stringify(shown)} in a JSON object (offset ${i})`);
        }
        // Plain assignment keeps objects fast; only "__proto__" would hit the prototype setter.
        if (top.key === '__proto__') Object.defineProperty(top.value, top.key, { value, enumerable: true, writable: true, configurable: true });
        else top.value[top.key] = value;
      }
      skipWs();
      const d = text.charCodeAt(i);
      if (d === 0x2c) { // ,
        i++;
        if (!top.array) top.key = parseKey();
        break;
      }
      if (d === (top.array ? 0x5d : 0x7d)) { // ] or }
        i++;
        stack.pop();
        value = top.value;
        continue;
      }
      fail(`expected ',' or '${top.array ? ']' : '}'}', found ${describe()}`);
    }
  }
}

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
