// A small argv parser for the `tessera` subcommands: typed flags, range checks and generated --help.
// Every mistake is a UsageError that names the flag (exit code 2); runtime failures are CliErrors
// (exit code 1) that carry a hint of what to do.

export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A runtime failure with a hint for the user (printed on the next line). */
export class CliError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface FlagSpec {
  type: 'string' | 'number' | 'integer' | 'boolean';
  description: string;
  /** Shown in help after the flag, e.g. PATH or N. */
  placeholder?: string;
  /** May be given several times (values collected in an array). */
  multiple?: boolean;
  /** A comma-separated list (`--ctx 512,4096`): each item is checked as `type` says; the value is an array. */
  list?: boolean;
  required?: boolean;
  /** Inclusive bounds for numbers; `exclusiveMin` makes the lower bound strict. */
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  choices?: readonly string[];
  default?: string | number | boolean;
  short?: string;
  /** Bare arguments give this flag's value (`script.js 3` = `script.js --steps 3`); for the research
   *  scripts' older forms, one flag at most, `multiple` to take several. Commands take no positionals. */
  positional?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;
export type FlagValues = Record<string, string | number | boolean | string[] | number[] | undefined>;

/** A user's text quoted in a message, cut so a pasted megabyte does not flood the terminal. */
export function clip(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function convert(flag: string, spec: FlagSpec, raw: string, command: string): string | number {
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new UsageError(`--${flag} must be one of ${spec.choices.join(', ')}, got '${clip(raw)}'`, command);
    }
    return raw;
  }
  const x = raw.trim() === '' ? NaN : Number(raw);
  const what = spec.type === 'integer' ? 'an integer' : 'a number';
  if (!Number.isFinite(x) || (spec.type === 'integer' && !Number.isSafeInteger(x))) {
    throw new UsageError(`--${flag} expects ${what}, got '${clip(raw)}'`, command);
  }
  const lowOk = spec.min === undefined || (spec.exclusiveMin ? x > spec.min : x >= spec.min);
  const highOk = spec.max === undefined || x <= spec.max;
  if (!lowOk || !highOk) {
    const lo = spec.min === undefined ? '' : `${spec.exclusiveMin ? '>' : '≥'} ${spec.min}`;
    const hi = spec.max === undefined ? '' : `≤ ${spec.max}`;
    throw new UsageError(`--${flag} must be ${what} ${[lo, hi].filter(Boolean).join(' and ')}, got ${clip(raw)}`, command);
  }
  return x;
}

/** Whether `arg` names one of this command's options (so it cannot be the value of the option before it). */
function namesOption(arg: string, specs: FlagSpecs, shorts: Map<string, string>): boolean {
  if (/^-[a-zA-Z]/.test(arg)) return shorts.has(arg[1]);
  if (!arg.startsWith('--') || arg.length <= 2) return false;
  const eq = arg.indexOf('='), name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
  return specs[name] !== undefined || (name.startsWith('no-') && specs[name.slice(3)]?.type === 'boolean');
}

/**
 * Parses `--flag value`, `--flag=value`, `-f value`, `-fVALUE` (e.g. `-n3`), `--bool`, `--no-bool`.
 * A value may start with '-' ('-1', '-- text') unless it is itself one of the command's options, so a
 * forgotten value is still reported. Bare arguments are refused unless a flag is `positional`.
 */
export function parseFlags(argv: readonly string[], specs: FlagSpecs, command: string): FlagValues {
  const values: FlagValues = {};
  const shorts = new Map(Object.entries(specs).filter(([, s]) => s.short).map(([name, s]) => [s.short!, name]));
  const positional = Object.entries(specs).find(([, s]) => s.positional && s.type !== 'boolean')?.[0];
  let bare = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let name: string, inline: string | undefined, shown: string;
    if (arg.startsWith('--') && arg.length > 2) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
    } else if (/^-[a-zA-Z]/.test(arg) && shorts.has(arg[1])) {
      name = shorts.get(arg[1])!;
      inline = arg.length > 2 ? arg.slice(2) : undefined;
      shown = `-${arg[1]}`;
    } else if (arg.startsWith('-') && arg.length > 1 && Number.isNaN(Number(arg))) {
      throw new UsageError(`unknown option ${clip(arg)}`, command);
    } else if (positional !== undefined && (bare++ === 0 || specs[positional]!.multiple)) {
      name = positional;
      inline = arg;
      shown = `--${name}`;
    } else {
      throw new UsageError(`unexpected argument '${clip(arg)}' (options are given as --name value)`, command);
    }
    const spec = specs[name];
    if (!spec && name.startsWith('no-') && specs[name.slice(3)]?.type === 'boolean' && inline === undefined) {
      values[name.slice(3)] = false;
      continue;
    }
    if (!spec) throw new UsageError(`unknown option --${clip(name)}`, command);
    if (spec.type === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`${shown} takes no value (or =true/=false), got '${clip(inline)}'`, command);
      values[name] = inline !== 'false';
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      if (i + 1 >= argv.length || namesOption(argv[i + 1], specs, shorts)) throw new UsageError(`--${name} needs a value${spec.placeholder ? ` (${spec.placeholder})` : ''}`, command);
      raw = argv[++i];
    }
    if (spec.list) {
      const items = raw.split(',').map((x) => x.trim());
      if (items.some((x) => x === '')) throw new UsageError(`--${name} expects a comma-separated list without empty items, got '${clip(raw)}'`, command);
      const converted = items.map((x) => convert(name, spec, x, command)) as string[] | number[];
      values[name] = spec.multiple ? [...((values[name] as (string | number)[] | undefined) ?? []), ...converted] as string[] | number[] : converted;
      continue;
    }
    const v = convert(name, spec, raw, command);
    if (spec.multiple) {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(String(v));
      values[name] = list;
    } else {
      values[name] = v;
    }
  }
  if (values.help) return values; // --help wins over missing required flags
  for (const [name, spec] of Object.entries(specs)) {
    if (values[name] === undefined && spec.default !== undefined) {
      values[name] = spec.list ? String(spec.default).split(',').map((x) => convert(name, spec, x, command)) as string[] | number[] : spec.default;
    }
    if (values[name] === undefined && spec.required) throw new UsageError(`missing required option --${name}${spec.placeholder ? ` ${spec.placeholder}` : ''}`, command);
  }
  return values;
}

/** Help text: usage line, summary, then one line per flag. Scripts pass `program` 'node' and their path as `command`. */
export function formatHelp(command: string, summary: string, specs: FlagSpecs, program = 'tessera'): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  ${s.short ? `-${s.short}, ` : ''}--${name}${s.type === 'boolean' ? '' : ` ${s.placeholder ?? (s.type === 'string' ? 'TEXT' : 'N')}`}`;
    const extra = [s.required ? 'required' : '', s.default !== undefined && s.type !== 'boolean' ? `default ${s.default}` : '', s.list ? 'comma-separated' : '', s.multiple ? 'repeatable' : '',
      s.positional && s.type !== 'boolean' ? 'also given bare' : '']
      .filter(Boolean).join(', ');
    // One parenthesis per row: "… (the last N; default 16)", not "… (the last N) (default 16)".
    const text = !extra ? s.description : s.description.endsWith(')') ? `${s.description.slice(0, -1)}; ${extra})` : `${s.description} (${extra})`;
    return [left, text];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const bare = Object.values(specs).find((s) => s.positional && s.type !== 'boolean');
  const tail = bare ? ` [${bare.placeholder ?? (bare.type === 'string' ? 'TEXT' : 'N')}${bare.multiple ? '…' : ''}]` : '';
  return `Usage: ${program} ${command} [options]${tail}\n\n${summary}\n\nOptions:\n${rows.map(([l, r]) => l.padEnd(width) + r).join('\n')}\n`;
}
