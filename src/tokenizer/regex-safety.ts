// Regular expressions from tokenizer.json (Split pre-tokenizers, Replace normalizers and decoders) run
// in V8's backtracking engine, where a pattern such as `(a+)+$` takes time exponential in the text:
// 40 `a`s and a `!` is minutes of CPU with the main thread blocked (so not even Ctrl-C is handled).
// There is no linear-time engine to run them in, so patterns that can backtrack exponentially are
// refused before the tokenizer is built. The rule is star height: a group repeated more than once
// ({n,m} with m > 1, *, +) must not contain anything that can match in more than one way — a
// repetition of varying count (`+`, `*`, `?`, {n,m} with n < m), an alternation, or something that
// can match the empty string. That covers (a+)+, (a*)*, (a|a)*, (a?){30}a{30}; it is conservative
// (it also refuses the harmless (a|b)+, which [ab]+ writes safely) and accepts every pre-tokenizer
// pattern of released models (GPT-2, Llama 3, Qwen2, o200k, DeepSeek, BLOOM: single repetitions
// side by side). Backreferences are refused too (matching with them is NP-hard in general).
// Polynomial backtracking (`\s*\s*x`) is not refused: its cost is bounded by a power of the text,
// and prompts are bounded by the context.

/** Why `pattern` can backtrack exponentially (or cannot be checked), or null if it cannot. */
export function exponentialBacktrackingReason(pattern: string): string | null {
  try {
    new Parser(pattern).parse();
    return null;
  } catch (e) {
    if (e instanceof Unsafe) return e.message;
    throw e;
  }
}

class Unsafe extends Error {}

/** What a parsed piece can do: match in more than one way, or match the empty string. */
interface Shape {
  ambiguous: boolean;
  nullable: boolean;
}

const QUANTIFIER = /\{(\d*)(?:(,)(\d*))?\}/y;

class Parser {
  private i = 0;

  constructor(private readonly p: string) {}

  parse(): void {
    this.alternation();
    if (this.i < this.p.length) this.fail(`unbalanced ')' at offset ${this.i}`);
  }

  private fail(why: string): never {
    throw new Unsafe(why);
  }

  private alternation(): Shape {
    const branches = [this.sequence()];
    while (this.p[this.i] === '|') {
      this.i++;
      branches.push(this.sequence());
    }
    return {
      ambiguous: branches.length > 1 || branches.some((b) => b.ambiguous),
      nullable: branches.some((b) => b.nullable),
    };
  }

  private sequence(): Shape {
    const shape: Shape = { ambiguous: false, nullable: true };
    while (this.i < this.p.length && this.p[this.i] !== '|' && this.p[this.i] !== ')') {
      const start = this.i;
      let atom = this.atom();
      const q = this.quantifier();
      if (q) {
        if (q.max > 1 && (atom.ambiguous || atom.nullable)) {
          const text = this.p.slice(start, this.i);
          this.fail(`${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)} at offset ${start} repeats a part that can match in more than one way `
            + '(a repetition, an alternation or an empty match inside a repetition, as in (a+)+, (a|a)* or (a?){n}), which can take time exponential in the text');
        }
        atom = { ambiguous: atom.ambiguous || q.min !== q.max, nullable: atom.nullable || q.min === 0 };
      }
      shape.ambiguous ||= atom.ambiguous;
      shape.nullable &&= atom.nullable;
    }
    return shape;
  }

  /** A quantifier after an atom (with its lazy `?` or possessive `+` suffix), or null. */
  private quantifier(): { min: number; max: number } | null {
    const c = this.p[this.i];
    let q: { min: number; max: number } | null = null;
    if (c === '*') q = { min: 0, max: Infinity };
    else if (c === '+') q = { min: 1, max: Infinity };
    else if (c === '?') q = { min: 0, max: 1 };
    if (q) this.i++;
    else if (c === '{') {
      QUANTIFIER.lastIndex = this.i;
      const m = QUANTIFIER.exec(this.p);
      if (!m || (m[1] === '' && m[2] === undefined)) return null; // a literal '{'
      const min = m[1] === '' ? 0 : Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      q = { min, max };
      this.i += m[0].length;
    }
    if (q && (this.p[this.i] === '?' || this.p[this.i] === '+')) this.i++;
    return q;
  }

  private atom(): Shape {
    const c = this.p[this.i]!;
    const one: Shape = { ambiguous: false, nullable: false };
    const empty: Shape = { ambiguous: false, nullable: true };
    if (c === '(') return this.group();
    if (c === '[') { this.charClass(); return one; }
    if (c === '^' || c === '$') { this.i++; return empty; }
    if (c === '\\') return this.escape() ? empty : one;
    this.i++;
    return one;
  }

  private group(): Shape {
    this.i++; // (
    let lookaround = false;
    if (this.p[this.i] === '?') {
      const rest = this.p.slice(this.i + 1);
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (rest.startsWith('=') || rest.startsWith('!')) { lookaround = true; this.i += 2; }
      else if (rest.startsWith('<=') || rest.startsWith('<!')) { lookaround = true; this.i += 3; }
      else if (named) this.i += 1 + named[0].length;
      else {
        // (?:…), (?>…), (?i:…), (?i-m:…), or inline flags alone: (?i)
        const flags = /^[a-zA-Z-]*/.exec(rest)![0];
        const after = rest[flags.length];
        if (after === ')') { this.i += 2 + flags.length; return { ambiguous: false, nullable: true }; }
        if (after !== ':' && !(flags === '' && after === '>')) this.fail(`unsupported group syntax at offset ${this.i - 1}`);
        this.i += 2 + flags.length;
      }
    }
    const inner = this.alternation();
    if (this.p[this.i] !== ')') this.fail(`unclosed '(' in the pattern`);
    this.i++;
    // A lookaround matches no text; what it contains was checked when it was parsed.
    return lookaround ? { ambiguous: inner.ambiguous, nullable: true } : inner;
  }

  /** `[…]`, with Oniguruma's nested classes (`[a[bc]]`) and escapes; one character wide. */
  private charClass(): void {
    let depth = 0;
    do {
      const c = this.p[this.i];
      if (c === undefined) this.fail(`unclosed '[' in the pattern`);
      if (c === '\\') { this.i += 2; continue; }
      if (c === '[') {
        depth++;
        this.i++;
        if (this.p[this.i] === '^') this.i++;
        if (this.p[this.i] === ']') this.i++; // a leading ']' is literal
        continue;
      }
      if (c === ']') depth--;
      this.i++;
    } while (depth > 0);
  }

  /** Consumes an escape; true if it matches no text (\b, \B, \A, \z, \Z, \G). */
  private escape(): boolean {
    const c = this.p[this.i + 1];
    if (c === undefined) this.fail('the pattern ends with a lone backslash');
    if (/[1-9]/.test(c) || (c === 'k' && this.p[this.i + 2] === '<')) this.fail(`backreference at offset ${this.i} (matching with backreferences can take exponential time)`);
    this.i += 2;
    if ((c === 'p' || c === 'P' || c === 'x' || c === 'u') && this.p[this.i] === '{') {
      const end = this.p.indexOf('}', this.i);
      if (end < 0) this.fail(`unclosed '\\${c}{' in the pattern`);
      this.i = end + 1;
    }
    return 'bBAzZG'.includes(c);
  }
}
