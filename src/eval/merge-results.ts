// Joins the results.json files of accuracy runs made on the same prompts (same model, profile, seed,
// lengths, tasks, samples, decode-last) with different backends into one report, as if the backends
// had been given to one `tessera eval` run: a table can then be rerun one column at a time.
//
//   node dist/src/eval/merge-results.js A/results.json B/results.json … --out DIR

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AccuracyResults } from './harness.js';
import { writeAccuracyReport } from './report.js';

const SAME = ['model', 'profile', 'seed', 'decodeLast', 'samples', 'lengths', 'tasks'] as const;

export function mergeAccuracyResults(runs: readonly AccuracyResults[], names: readonly string[] = runs.map((_, i) => `run ${i + 1}`)): AccuracyResults {
  if (runs.length === 0) throw new RangeError('merge-results: give at least one results.json');
  const first = runs[0]!;
  runs.forEach((r, i) => {
    for (const k of SAME) {
      if (JSON.stringify(r[k]) !== JSON.stringify(first[k])) {
        throw new RangeError(`merge-results: ${names[i]} has ${k} ${JSON.stringify(r[k])}, ${names[0]} has ${JSON.stringify(first[k])}: not the same prompts`);
      }
    }
  });
  const backends = runs.flatMap((r) => r.backends);
  const twice = backends.find((b, i) => backends.indexOf(b) !== i);
  if (twice !== undefined) throw new RangeError(`merge-results: backend ${twice} is in two runs; keep one`);
  return {
    ...first, backends, cells: runs.flatMap((r) => r.cells), details: runs.flatMap((r) => r.details),
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2), o = args.indexOf('--out');
  const files = o < 0 ? args : args.filter((_, i) => i !== o && i !== o + 1);
  const usage = 'usage: node dist/src/eval/merge-results.js A/results.json B/results.json … --out DIR\n';
  const unknown = files.find((f) => f.startsWith('-'));
  if (unknown !== undefined) { process.stderr.write(`merge-results: unknown option ${unknown}\n${usage}`); process.exit(2); }
  if (o < 0 || args[o + 1] === undefined || files.length === 0) { process.stderr.write(usage); process.exit(2); }
  try {
    const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as AccuracyResults);
    for (const f of writeAccuracyReport(mergeAccuracyResults(runs, files), args[o + 1]!)) process.stderr.write(`wrote ${f}\n`);
  } catch (e) {
    process.stderr.write(`merge-results: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
