// Seeded mutators for fuzzing Tessera's parsers: the one home of the mutations used by the fuzz tests
// (test/formats/*-fuzz.test.ts) and by the long fuzz command (src/testing/fuzz.ts).
//
//   mutateBytes     binary mutations of a whole file (bit flips, interesting u32/u64 values, inserts,
//                   deletions, truncation), biased towards the header where the counts and lengths live
//   mutateJsonText  edits of JSON text that keep it mostly well-formed (nasty numbers and values,
//                   duplicate keys, deep nesting), so the mutant reaches the checks behind the parser
//   mutateJsonTree  edits of a parsed JSON value at a random path (replace, delete, duplicate, swap,
//                   grow), serialised again: reaches the semantic checks of tokenizer.json and config.json
//   mutateTemplate  edits of a Jinja chat template (loops, string doubling, recursion, broken syntax)
//
// Every mutator takes its randomness from `r` (uniform in [0, 1)) only, so a case is reproduced by its
// seed alone.

export type Rand = () => number;

const pickIndex = (r: Rand, n: number): number => Math.floor(r() * n);
const pickOne = <T>(r: Rand, xs: readonly T[]): T => xs[pickIndex(r, xs.length)]!;

/** u32/u64 values that sit on the edges of the checks: zero, small counts, powers of two, all ones. */
export const INTERESTING_INTEGERS: readonly bigint[] = [
  0n, 1n, 2n, 3n, 4n, 5n, 8n, 13n, 31n, 32n, 63n, 64n, 0x7fn, 0xffn, 0x7fffffffn, 0xffffffffn,
  2n ** 32n, 2n ** 53n, 2n ** 60n, 2n ** 63n, 2n ** 64n - 1n,
];

/**
 * 1–3 rounds of binary mutation. Overwrites with interesting values land in the first `headerBytes`
 * bytes (default 400) half of the time and anywhere the other half.
 */
export function mutateBytes(src: Uint8Array, r: Rand, headerBytes = 400): Uint8Array {
  let b: Uint8Array = Uint8Array.from(src);
  for (let round = 1 + pickIndex(r, 3); round > 0; round--) {
    switch (pickIndex(r, 6)) {
      case 0: { if (b.length > 0) { const i = pickIndex(r, b.length); b[i] = b[i]! ^ (1 << pickIndex(r, 8)); } break; }
      case 1: { if (b.length > 0) b[pickIndex(r, b.length)] = pickIndex(r, 256); break; }
      case 2: { // a little-endian u32/u64 with an interesting value
        const v = pickOne(r, INTERESTING_INTEGERS);
        const width = r() < 0.5 ? 4 : 8;
        const span = r() < 0.5 ? Math.min(b.length, headerBytes) : b.length;
        if (span < width) break;
        const at = pickIndex(r, span - width + 1);
        for (let i = 0; i < width; i++) b[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
        break;
      }
      case 3: { b = b.subarray(0, pickIndex(r, b.length + 1)); break; }
      case 4: { // insert 1–16 random bytes
        const at = pickIndex(r, b.length + 1);
        const ins = Uint8Array.from({ length: 1 + pickIndex(r, 16) }, () => pickIndex(r, 256));
        const nb = new Uint8Array(b.length + ins.length);
        nb.set(b.subarray(0, at)); nb.set(ins, at); nb.set(b.subarray(at), at + ins.length);
        b = nb;
        break;
      }
      default: { // delete a run of 1–16 bytes
        const at = pickIndex(r, b.length + 1);
        const n = Math.min(1 + pickIndex(r, 16), b.length - at);
        const nb = new Uint8Array(b.length - n);
        nb.set(b.subarray(0, at)); nb.set(b.subarray(at + n), at);
        b = nb;
      }
    }
  }
  return b;
}

/** Numbers (as JSON text) on the edges of the checks: negative, zero, fractional, beyond 2^32/2^53/2^64. */
export const NASTY_NUMBERS: readonly string[] = [
  '-1', '0', '-0', '1', '3', '0.5', '1e-9', '1e400', '-1e400', '1e308', '99999999999999999999', '9007199254740993',
  '4294967296', '4294967295', '2147483648', '18446744073709551615', '65536', '1000000', '1e9',
];

/** Values (as JSON text) of the wrong type or shape where a value is expected. */
export const NASTY_VALUES: readonly string[] = [
  '""', 'null', 'true', 'false', '{}', '[]', '[[[[[[[[[[[[1]]]]]]]]]]]]', '"F32"', '"BF16"', '"X"', '"__proto__"',
  '"constructor"', '"<s>"', '" "', '"\\u0000"', '"\\ud800"', '"ünï"', '"a b"', '"(a+)+$"', '"[unclosed"', '"(?<=x)y"',
  '"\\\\p{L}+"', '"\\\\"', '"%s%n"', '["a","b"]', '{"Regex":"(a|a)*$"}', '{"String":""}', '[-1]', '[1e400]',
];

/** Replaces the text of one regex match, or returns null when there is none. */
function replaceMatch(text: string, re: RegExp, r: Rand, make: (m: RegExpExecArray) => string): string | null {
  const all = [...text.matchAll(re)] as RegExpExecArray[];
  if (all.length === 0) return null;
  const m = pickOne(r, all);
  return text.slice(0, m.index) + make(m) + text.slice(m.index + m[0].length);
}

/**
 * One edit of JSON text: a nasty number or value in place of an existing one, a duplicated member
 * (`"k":v` twice: strict JSON must refuse it), deep nesting where a value goes, or a byte mutation.
 */
export function mutateJsonText(text: string, r: Rand): string {
  switch (pickIndex(r, 6)) {
    case 0: return replaceMatch(text, /-?\d+(\.\d+)?([eE][+-]?\d+)?/g, r, () => pickOne(r, NASTY_NUMBERS)) ?? text;
    case 1: return replaceMatch(text, /"(?:[^"\\]|\\.)*"/g, r, () => pickOne(r, NASTY_VALUES)) ?? text;
    case 2: { // duplicate a `"key":value` member whose value is a scalar or a flat object/array
      return replaceMatch(text, /"(?:[^"\\]|\\.)*"\s*:\s*(\{[^{}]*\}|\[[^[\]]*\]|"(?:[^"\\]|\\.)*"|[-\w.+]+)/g, r, (m) => `${m[0]},${m[0]}`) ?? text;
    }
    case 3: { // deep nesting (up to 100,000 levels) in front of a value, closed or not
      const depth = pickOne(r, [9, 100, 1000, 100_000]);
      const colons = [...text.matchAll(/:/g)];
      if (colons.length === 0) return text;
      const at = pickOne(r, colons).index! + 1;
      return text.slice(0, at) + '['.repeat(depth) + text.slice(at, at + 1) + (r() < 0.5 ? ']'.repeat(depth) : '') + text.slice(at + 1);
    }
    case 4: { // cut the text at a random point (a file truncated mid-write)
      return text.slice(0, pickIndex(r, text.length + 1));
    }
    default: return new TextDecoder().decode(mutateBytes(new TextEncoder().encode(text), r, text.length));
  }
}

/** A random path into a JSON value: a walk from the root that stops at each level with probability 1/4. */
function randomPath(root: unknown, r: Rand): (string | number)[] {
  const path: (string | number)[] = [];
  let node = root;
  while (typeof node === 'object' && node !== null && r() >= 0.25) {
    const keys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    if (keys.length === 0) break;
    const k = pickOne(r, keys);
    path.push(k);
    node = (node as Record<string | number, unknown>)[k];
  }
  return path;
}

function getAt(root: unknown, path: readonly (string | number)[]): unknown {
  let node = root;
  for (const k of path) node = (node as Record<string | number, unknown>)[k];
  return node;
}

/**
 * 1–2 edits of a JSON value at random paths, serialised again; a quarter of the results also get a
 * text edit (duplicate keys and broken syntax cannot be made on a parsed value).
 */
export function mutateJsonTree(value: unknown, r: Rand): string {
  let root: unknown = structuredClone(value);
  for (let round = 1 + pickIndex(r, 2); round > 0; round--) {
    const path = randomPath(root, r);
    const old = getAt(root, path);
    let next: unknown;
    let remove = false;
    switch (pickIndex(r, 6)) {
      case 0: next = JSON.parse(pickOne(r, NASTY_NUMBERS.filter((n) => Number.isFinite(Number(n))))); break;
      case 1: next = JSON.parse(pickOne(r, NASTY_VALUES)); break;
      case 2: remove = true; break;
      case 3: next = structuredClone(getAt(root, randomPath(root, r))); break; // a value from elsewhere: type confusion
      case 4: { // grow a list or string, or repeat a scalar into a list
        if (Array.isArray(old)) next = Array.from({ length: old.length * (1 + pickIndex(r, 8)) }, (_, i) => old[i % Math.max(1, old.length)]);
        else if (typeof old === 'string') next = old.repeat(1 + pickIndex(r, 64));
        else next = [old, old];
        break;
      }
      default: { // shrink a list or object to a prefix, or change a number slightly
        if (Array.isArray(old)) next = old.slice(0, pickIndex(r, old.length + 1));
        else if (typeof old === 'object' && old !== null) next = Object.fromEntries(Object.entries(old).slice(0, pickIndex(r, Object.keys(old).length + 1)));
        else if (typeof old === 'number') next = old + pickOne(r, [-1, 1, -old, old]);
        else next = null;
      }
    }
    if (path.length === 0) {
      root = remove ? null : next;
      continue;
    }
    const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown> & unknown[];
    const key = path[path.length - 1]!;
    if (remove && Array.isArray(parent)) parent.splice(key as number, 1);
    else if (remove) delete parent[key];
    else parent[key] = next;
  }
  const text = root === undefined ? '' : JSON.stringify(root);
  return r() < 0.25 ? mutateJsonText(text, r) : text;
}

/** Jinja fragments that stress a template engine: loops, doubling, recursion, huge ranges, escapes
 *  to JS objects, broken delimiters. */
export const TEMPLATE_FRAGMENTS: readonly string[] = [
  '{% for m in messages %}', '{% endfor %}', '{% for i in range(1000) %}', '{% for i in range(10**9) %}', '{% if %}', '{% endif %}',
  '{% set s = s + s %}', '{% set s = "ab" %}', '{{ s }}', "{{ 'x' * 100000000 }}", '{{ messages * 1000 }}', "{{ 'x'|center(1000000) }}",
  '{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}', "{{ raise_exception('no') }}", '{{ messages[0].__class__ }}',
  '{{ messages.constructor }}', "{{ ''.__proto__ }}", '{{ range(5)|join(",") }}', '{{ loop.index }}', "{{ message['content']|trim }}",
  '{{ 1/0 }}', '{{ 10**10**10 }}', '{{', '}}', '{%', '%}', '{#', '#}', '{%- ', ' -%}', '{{ messages|length }}', '{{ x.y.z }}',
  "{% set ns = namespace(a=1) %}{{ ns.a }}", '{{ strftime_now("%d %b %Y") }}', '{{ messages|tojson }}', '{{ [1,2]|map("upper")|list }}',
];

/** 1–3 edits of a template: insert a fragment, duplicate or delete a span, or change characters. */
export function mutateTemplate(text: string, r: Rand): string {
  let t = text;
  for (let round = 1 + pickIndex(r, 3); round > 0; round--) {
    const at = pickIndex(r, t.length + 1);
    switch (pickIndex(r, 5)) {
      case 0: case 1: t = t.slice(0, at) + pickOne(r, TEMPLATE_FRAGMENTS) + t.slice(at); break;
      case 2: { // duplicate a span (nests loops and blocks)
        const end = Math.min(t.length, at + pickIndex(r, 200));
        t = t.slice(0, end) + t.slice(at, end) + t.slice(end);
        break;
      }
      case 3: t = t.slice(0, at) + t.slice(Math.min(t.length, at + 1 + pickIndex(r, 40))); break;
      default: t = t.slice(0, at) + pickOne(r, [...'{}%#-+*/()[]\'"|.~=!<>,:\\\n ']) + t.slice(at + (r() < 0.5 ? 1 : 0));
    }
  }
  return t;
}

/** A refusal message with its numbers, quoted strings and parenthesised details blanked, so messages
 *  of one rule compare equal (used to count how many distinct rules a fuzz run reached). */
export function refusalRule(message: string): string {
  return message.replace(/"(?:[^"\\]|\\.)*"|\(.*?\)|-?\d[\d.]*(e[+-]?\d+)?|Infinity/g, '_').slice(0, 160);
}
