// Small helpers shared by the experiments: markdown tables, the command-line switches every
// experiment takes (--quick, --out, --docs), and writing a results file set.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseFlags, type FlagSpecs, type FlagValues } from '../cli/args.js';

/** The repository root (this file is dist/src/experiments/report.js once built). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A GitHub markdown table; numbers are right-aligned. */
export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number' || /^[\d.,%+−-]+( ?[a-zA-Z/%]*)?$/.test(String(r[c]))));
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`, ...rows.map(line)].join('\n') + '\n';
}

export interface ExperimentArgs {
  quick: boolean;
  /** Where run folders go (checkpoints, models, logs). */
  runsDir: string;
  /** Where the markdown table, SVG plots and results JSON go (docs/ for full runs). */
  docsDir: string;
}

/** The switches every experiment takes (spread into a script's own FLAGS). */
export const EXPERIMENT_FLAGS: FlagSpecs = {
  quick: { type: 'boolean', description: 'tiny settings in seconds, written to a temporary folder' },
  runs: { type: 'string', placeholder: 'DIR', description: 'where run folders go (default results/<experiment>, or the temporary folder with --quick)' },
  docs: { type: 'string', placeholder: 'DIR', description: 'where tables, plots and results JSON go (default docs/, or the temporary folder with --quick)' },
};

/** The folders of parsed EXPERIMENT_FLAGS; quick runs write to a temporary folder by default. */
export function experimentDirs(v: FlagValues, name: string, repoRoot: string): ExperimentArgs {
  const quick = v.quick === true;
  const scratch = join(tmpdir(), `tessera-${name}-quick`);
  return {
    quick,
    runsDir: (v.runs as string | undefined) ?? (quick ? join(scratch, 'runs') : join(repoRoot, 'results', name)),
    docsDir: (v.docs as string | undefined) ?? (quick ? join(scratch, 'docs') : join(repoRoot, 'docs')),
  };
}

/** Parses `[--quick] [--runs DIR] [--docs DIR]` (for a script that parses the rest of its argv itself). */
export function experimentArgs(argv: readonly string[], name: string, repoRoot: string): ExperimentArgs {
  return experimentDirs(parseFlags(argv, EXPERIMENT_FLAGS, name), name, repoRoot);
}

/** Writes text files relative to a base folder (creating folders). */
export function writeFiles(base: string, files: Record<string, string>): string[] {
  return Object.entries(files).map(([rel, text]) => {
    const path = join(base, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return path;
  });
}

export const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

/** Mean and half-range of a list (the spread over seeds). */
export function meanSpread(xs: readonly number[]): { mean: number; spread: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, spread: (Math.max(...xs) - Math.min(...xs)) / 2 };
}

/** Loss history for a results file: rows with a held-out loss and every `every`-th step, numbers to 5 digits. */
export function thinHistory<T extends { step: number; evalLoss?: number }>(rows: readonly T[], every = 10): T[] {
  const round = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(5)) : v);
  return rows.filter((r, i) => r.evalLoss !== undefined || r.step % every === 0 || i === rows.length - 1)
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)])) as T);
}
