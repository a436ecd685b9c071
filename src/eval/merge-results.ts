// Joins the results.json files of accuracy runs made on the same prompts (same model, profile, seed,
// lengths, tasks, samples, decode-last) with different backends into one report, as if the backends
// had been given to one `tessera eval` run: a table can then be rerun one column at a time.
//
//   node dist/src/eval/merge-results.js A/results.json B/results.json … --out DIR   (or --results FILE, repeated)

import { readFileSync } from 'node:fs';
import type { AccuracyResults } from './harness.js';
import { writeAccuracyReport } from './report.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const SAME = ['model', 'profile', 'seed', 'decodeLast', 'samples', 'lengths', 'tasks'] as const;

export function mergeAccuracyResults(runs: readonly AccuracyResults[], names: readonly string[] = runs.map((_, i) => `run ${i + 1}`)): AccuracyResults {
  if (runs.length === 0) throw new RangeError('give at least one results.json');
  const first = runs[0]!;
  runs.forEach((r, i) => {
    for (const k of SAME) {
      if (JSON.stringify(r[k]) !== JSON.stringify(first[k])) {
        throw new RangeError(`${names[i]} has ${k} ${JSON.stringify(r[k])}, ${names[0]} has ${JSON.stringify(first[k])}: not the same prompts`);
      }
    }
  });
  const backends = runs.flatMap((r) => r.backends);
  const twice = backends.find((b, i) => backends.indexOf(b) !== i);
  if (twice !== undefined) throw new RangeError(`backend ${twice} is in two runs; keep one`);
  return {
    ...first, backends, cells: runs.flatMap((r) => r.cells), details: runs.flatMap((r) => r.details),
    seconds: runs.reduce((s, r) => s + r.seconds, 0),
  };
}

/** One run's results.json, checked to be an accuracy report before anything is merged. */
function readResults(file: string): AccuracyResults {
  let x: unknown;
  try { x = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new RangeError(`${file}: ${(e as Error).message}`); }
  const r = x as Partial<AccuracyResults> | null;
  const missing = typeof r !== 'object' || r === null ? ['everything'] : (['backends', 'cells', 'details'] as const).filter((k) => !Array.isArray(r[k]));
  if (missing.length) throw new RangeError(`${file} is not the results.json of a \`tessera eval\` run (no ${missing.join(', ')} list)`);
  return r as AccuracyResults;
}

const FLAGS: FlagSpecs = {
  results: { type: 'string', multiple: true, positional: true, required: true, placeholder: 'results.json', description: 'a run\'s results.json' },
  out: { type: 'string', required: true, placeholder: 'DIR', description: 'where the merged report goes' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Joins the results.json of accuracy runs on the same prompts with different backends into one report.');
  if (!v) return 0;
  const files = v.results as string[];
  const runs = files.map(readResults);
  for (const f of writeAccuracyReport(mergeAccuracyResults(runs, files), v.out as string)) process.stderr.write(`wrote ${f}\n`);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
