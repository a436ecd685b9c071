// The entry point of the research and benchmark scripts run as `node dist/src/.../x.js` (they are
// not `tessera` commands): their flags are parsed by args.ts like the commands' flags, and their
// errors are reported the same way: a usage mistake exits 2 with a --help hint, a failure exits 1
// with its message and no stack trace (TESSERA_DEBUG=1 prints it).

import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';
import { CliError, UsageError, formatHelp, parseFlags, type FlagSpec, type FlagSpecs, type FlagValues } from './args.js';

const HELP: FlagSpec = { type: 'boolean', description: 'show this help', short: 'h' };

/** The script's path as the user types it after `node` (relative to the working directory). */
export function scriptName(moduleUrl: string): string {
  return relative(process.cwd(), fileURLToPath(moduleUrl)) || fileURLToPath(moduleUrl);
}

/** Whether the module at `moduleUrl` is the one node was asked to run (not imported by a test). */
export function isMainModule(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(moduleUrl) === process.argv[1];
}

/**
 * The scripts' prologue: the script's flags parsed from `argv` (the arguments after its path), or
 * null once `--help` has printed the help (the script then returns 0 without running). `--help` is
 * added to `specs` when missing. A usage mistake throws a UsageError, which runScript reports with
 * exit code 2, so a typo never starts a long run with the defaults.
 */
export function scriptFlags(moduleUrl: string, specs: FlagSpecs, summary: string, argv: readonly string[] = process.argv.slice(2)): FlagValues | null {
  const name = scriptName(moduleUrl);
  const all: FlagSpecs = specs.help ? specs : { ...specs, help: HELP };
  const v = parseFlags(argv, all, name);
  if (!v.help) return v;
  process.stdout.write(formatHelp(name, summary, all, 'node'));
  return null;
}

/** Runs `main`, then exits with its code, or reports its error as the `tessera` command does. */
export function runScript(moduleUrl: string, main: () => Promise<number | void>): void {
  const name = scriptName(moduleUrl);
  main().then((code) => process.exit(code ?? 0), (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    if (process.env.TESSERA_DEBUG) process.stderr.write(`${err.stack}\n`);
    if (err instanceof UsageError) {
      process.stderr.write(`${name}: ${err.message}\n  hint: run 'node ${name} --help' for the options\n`);
      process.exit(2);
    }
    process.stderr.write(`${name}: ${err.message}\n${err instanceof CliError && err.hint ? `  hint: ${err.hint}\n` : ''}`);
    process.exit(1);
  });
}
