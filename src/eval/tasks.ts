// The evaluation tasks by name: RULER-style synthetic long-context tasks generated at any length
// with the model's tokenizer, each a TextTask (input, expected answers, exact scorer).
//   niah_single / niah_multikey / niah_multivalue / niah_multiquery   retrieval (src/data/synthetic-needle.ts)
//   cwe / fwe                                                         aggregation (./cwe.ts, ./fwe.ts)
//   vt                                                                multi-hop tracing (./vt.ts)
//   most_frequent / count                                             the counting tasks the small
//                                                                     models are trained on (src/data/synthetic-count.ts)
// Scoring is RULER's string match: the fraction of expected answers found in the output (whole
// words/numbers); most_frequent and count score the first word/number of the output.
// Per-task options (e.g. cwe numCommon=3) come as `name:key=value,key=value`.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed } from '../data/rng.js';
import { countingTask, marginForFraction } from '../data/synthetic-count.js';
import { needleTask, type NeedleVariant } from '../data/synthetic-needle.js';
import type { CountTokens, TextTask } from '../data/synthetic-task.js';
import { commonWordsTask } from './cwe.js';
import { frequentWordsTask } from './fwe.js';
import { variableTrackingTask } from './vt.js';
import { NAMES } from '../data/synthetic-words.js';

export const TASK_NAMES = ['niah_single', 'niah_multikey', 'niah_multivalue', 'niah_multiquery', 'cwe', 'fwe', 'vt', 'most_frequent', 'count'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/** What kind of ability a task measures (for the tables). */
export const TASK_KIND: Record<TaskName, 'retrieval' | 'aggregation' | 'tracing'> = {
  niah_single: 'retrieval', niah_multikey: 'retrieval', niah_multivalue: 'retrieval', niah_multiquery: 'retrieval',
  cwe: 'aggregation', fwe: 'aggregation', vt: 'tracing', most_frequent: 'aggregation', count: 'aggregation',
};

export interface TaskSpec {
  name: TaskName;
  /** Numeric options passed to the generator (numCommon, numNeedles, …). */
  options: Record<string, number>;
  /** The text form, e.g. "cwe:numCommon=3". */
  label: string;
}

const OPTIONS: Record<TaskName, readonly string[]> = {
  niah_single: ['valueDigits', 'words'], niah_multikey: ['numNeedles', 'valueDigits', 'words'], niah_multivalue: ['numValues', 'valueDigits', 'words'],
  niah_multiquery: ['numQueries', 'valueDigits', 'words'], cwe: ['numCommon', 'freqCommon', 'freqUncommon'],
  fwe: ['alpha', 'wordLength', 'vocabSize'], vt: ['numChains', 'numHops'], most_frequent: ['distinctWords', 'margin', 'marginFraction', 'names'], count: ['distinctWords'],
};

/** Prompt/option profiles: `ruler` (RULER's defaults) and `long-context`, the options the
 *  long-context model was trained with (src/experiments/long-context/tasks.ts: needle values are
 *  words — one-token first names —, lists of 10 nouns with the planted word ahead by half a share).
 *  Explicit task options win. */
export const PROFILES: Record<string, Partial<Record<TaskName, Record<string, number>>>> = {
  ruler: {},
  'long-context': {
    niah_single: { words: 1 }, niah_multikey: { words: 1 }, niah_multivalue: { words: 1 },
    niah_multiquery: { words: 1 }, most_frequent: { distinctWords: 10, marginFraction: 0.5 },
  },
};

/** The file in which a model folder records the task options it was trained with
 *  (`{ needle: { values: 'word' | 'number', digits }, counting: { distinctWords, marginFraction } }`). */
export const TASK_OPTIONS_FILE = 'long_context_tasks.json';

function sameOptions(a: Partial<Record<string, Record<string, number>>>, b: Partial<Record<string, Record<string, number>>>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => {
    const x = a[k] ?? {}, y = b[k] ?? {};
    return Object.keys({ ...x, ...y }).every((o) => x[o] === y[o]);
  });
}

/**
 * The profile to evaluate a model with: the one matching the task options its folder records
 * (TASK_OPTIONS_FILE), else `ruler`. Throws when the folder records options no profile has, so a
 * model is never scored on prompts it was not trained to read without the user choosing that.
 */
export function profileForModel(modelPath: string): { profile: string; reason: string } {
  const file = join(modelPath, TASK_OPTIONS_FILE);
  if (!existsSync(file)) return { profile: 'ruler', reason: `${modelPath} records no training tasks (${TASK_OPTIONS_FILE})` };
  let rec: { needle?: { values?: string; digits?: number }; counting?: { distinctWords?: number; marginFraction?: number } };
  try { rec = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { throw new RangeError(`eval: cannot read ${file}: ${(e as Error).message}`); }
  const wanted: Partial<Record<TaskName, Record<string, number>>> = {};
  const needle: Record<string, number> | undefined = rec?.needle?.values === 'word' ? { words: 1 } : rec?.needle?.digits !== undefined ? { valueDigits: rec.needle.digits } : undefined;
  if (needle) for (const t of ['niah_single', 'niah_multikey', 'niah_multivalue', 'niah_multiquery'] as const) wanted[t] = needle;
  const c = rec?.counting;
  if (c?.distinctWords !== undefined || c?.marginFraction !== undefined) {
    wanted.most_frequent = { ...(c.distinctWords !== undefined ? { distinctWords: c.distinctWords } : {}), ...(c.marginFraction !== undefined ? { marginFraction: c.marginFraction } : {}) };
  }
  const match = Object.keys(PROFILES).find((name) => name !== 'ruler' && sameOptions(PROFILES[name], wanted));
  if (!match) {
    throw new RangeError(`eval: ${file} records training options that no profile has (${JSON.stringify(rec)}); ` +
      `choose --profile ${Object.keys(PROFILES).join('|')} and give task options explicitly, e.g. most_frequent:distinctWords=10`);
  }
  return { profile: match, reason: `${file} says the model was trained on these task options` };
}

/** The spec with the profile's defaults under its explicit options. */
export function withProfile(spec: TaskSpec, profile: string): TaskSpec {
  const p = PROFILES[profile];
  if (!p) throw new RangeError(`eval: unknown profile "${profile}"; choose from ${Object.keys(PROFILES).join(', ')}`);
  return { ...spec, options: { ...(p[spec.name] ?? {}), ...spec.options } };
}

/** Parses "cwe" or "cwe:numCommon=3,freqCommon=20". */
export function parseTaskSpec(text: string): TaskSpec {
  const t = text.trim();
  const colon = t.indexOf(':');
  const name = (colon < 0 ? t : t.slice(0, colon)) as TaskName;
  if (!(TASK_NAMES as readonly string[]).includes(name)) throw new RangeError(`eval: unknown task "${name}"; choose from ${TASK_NAMES.join(', ')}`);
  const options: Record<string, number> = {};
  if (colon >= 0 && t.slice(colon + 1) !== '') {
    for (const part of t.slice(colon + 1).split(',')) {
      const [k, v] = part.split('=');
      if (!OPTIONS[name].includes(k)) throw new RangeError(`eval: task ${name} has no option "${k}" (options: ${OPTIONS[name].join(', ') || 'none'})`);
      const x = Number(v);
      if (v === undefined || v === '' || !Number.isFinite(x)) throw new RangeError(`eval: option ${k} of ${name} needs a number, got "${v}"`);
      options[k] = x;
    }
  }
  return { name, options, label: t };
}

const NEEDLE: Partial<Record<TaskName, NeedleVariant>> = {
  niah_single: 'single', niah_multikey: 'multikey', niah_multivalue: 'multivalue', niah_multiquery: 'multiquery',
};

/** Sample `index` of a task at `length` tokens (as counted by `countTokens`). Deterministic in
 *  (task, seed, index, length); different indices give different needles, depths and lists. */
export function makeTask(spec: TaskSpec, length: number, countTokens: CountTokens, seed: number, index: number): TextTask {
  const s = deriveSeed(seed, TASK_NAMES.indexOf(spec.name), index);
  const o = spec.options;
  const variant = NEEDLE[spec.name];
  if (variant) {
    // words=1: word values (first names) instead of numbers (RULER's "words" value type).
    const { words, ...rest } = o;
    return needleTask({ seed: s, length, variant, countTokens, ...rest, valueType: words === 1 ? 'word' : 'number' });
  }
  switch (spec.name) {
    case 'cwe': return commonWordsTask({ seed: s, length, countTokens, ...o });
    case 'fwe': return frequentWordsTask({ seed: s, length, countTokens, ...o });
    case 'vt': return variableTrackingTask({ seed: s, length, countTokens, ...o });
    case 'most_frequent': {
      // marginFraction: the planted word's lead as a fraction of one word's share.
      // names=1: a list of first names instead of nouns.
      const { marginFraction, names, ...rest } = o;
      const margin = marginFraction === undefined ? rest.margin : marginForFraction(marginFraction, length, rest.distinctWords ?? 20);
      return countingTask({ seed: s, length, countTokens, variant: 'most-frequent', ...rest, margin, ...(names === 1 ? { vocabulary: NAMES } : {}) });
    }
    case 'count': return countingTask({ seed: s, length, countTokens, variant: 'count', ...o });
    default: throw new RangeError(`eval: task ${spec.name} has no generator`);
  }
}
