// Evaluates the long-context model with Tessera's INFERENCE engine: loadModel (HF Llama folder) and
// greedy generation, dense attention by default (--attention takes any spec loadModel accepts, e.g.
// "magicpig:K=10,L=150", so the same script measures sparse attention). Held-out examples (seeds the
// training stream never draws) are built with the model's own tokenizer so BOS + prompt + answer
// fits the window; the generated text is scored by the task's scorer (needles: the exact value — a
// name, or a number; most-frequent: the word).
//
//   node dist/src/experiments/long-context/eval.js [--model models/long-context] [--n 100]
//        [--contexts 1024,2048] [--tasks needle-single,needle-multikey,most-frequent] [--attention dense]
//        [--seed 1] [--json FILE] [--margin 0.5] [--distinct 10]
// --margin / --distinct: the most-frequent lists' lead (in shares of one word) and word count
// (default: what the model was trained with, long_context_tasks.json)
//
// Chance: a blind guess of a needle value is 1 in 96 (word values: the names) or 1 in 9·10^(digits−1)
// (numbers); guessing among the values present in the context is 1 (single), 1/4 (multikey, four
// needles); most-frequent: 1/distinctWords (10).

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlagSpecs } from '../../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../../cli/script.js';
import { loadModel } from '../../models/load.js';
import { generateText } from '../../generation/generate.js';
import { bpeFromTokenizerJson } from '../../data/bpe-encoder.js';
import { deriveSeed } from '../../data/rng.js';
import { NAMES, NOUNS } from '../../data/synthetic-words.js';
import { DEFAULT_COUNTING, DEFAULT_NEEDLE, LongContextTasks, readTaskOptions, TASK_KINDS, type CountingSpec, type NeedleSpec, type TaskKind } from './tasks.js';

/** Chance levels: a blind guess of the answer (a needle value: one of the names, or of the numbers
 *  of its digits; the word: one of the nouns or names) and a guess among the candidates present in
 *  the context (the one value of a single needle, one of four keys' values, one of the list's distinct words). */
export function chanceOf(kind: TaskKind, counting: CountingSpec = DEFAULT_COUNTING, needle: NeedleSpec = DEFAULT_NEEDLE): { blind: number; inContext: number } {
  const values = needle.values === 'word' ? NAMES.length : 9 * 10 ** (needle.digits - 1); // numbers: no leading zero
  switch (kind) {
    case 'needle-single': return { blind: 1 / values, inContext: 1 };
    case 'needle-multikey': return { blind: 1 / values, inContext: 1 / 4 };
    case 'needle-multiquery': return { blind: 1 / values ** 2, inContext: 1 / 2 }; // the two values present, the order to pick
    case 'most-frequent': return { blind: 1 / NOUNS.length, inContext: 1 / counting.distinctWords };
    case 'most-frequent-name': return { blind: 1 / NAMES.length, inContext: 1 / counting.distinctWords };
    case 'copy-digits': case 'copy-words': return { blind: 0, inContext: 0 }; // the whole list, in order
  }
}

export interface EvalRow { kind: TaskKind; context: number; n: number; accuracy: number; chance: { blind: number; inContext: number }; meanPromptTokens: number; byDepth?: number[] }

export interface EvalOptions {
  model: string;
  n: number;
  contexts: number[];
  tasks: TaskKind[];
  attention?: string;
  seed?: number;
  counting?: CountingSpec;
  threads?: number;
  /** Called after each example (progress). */
  onExample?: (kind: TaskKind, context: number, i: number, score: number, prediction: string) => void;
}

/** Held-out seed i of the evaluation (disjoint from the training seeds deriveSeed(seed, step, b)). */
export function evalSeed(seed: number, context: number, i: number): number {
  return deriveSeed(seed, 0xe7a1, context, i);
}

/** Accuracy per (task, context) by greedy generation with the inference engine. */
export async function evaluateLongContext(o: EvalOptions): Promise<EvalRow[]> {
  const tokJson = JSON.parse(readFileSync(join(o.model, 'tokenizer.json'), 'utf8')) as object;
  const trained = readTaskOptions(o.model);
  const tasks = new LongContextTasks(bpeFromTokenizerJson(tokJson), o.counting ?? trained.counting, trained.needle);
  const maxCtx = Math.max(...o.contexts);
  // f32 K/V rows, as docs/LONG_CONTEXT_MODEL.md's evaluations were measured (the loader's default is f16)
  const loaded = await loadModel(o.model, { contextLength: maxCtx, threads: o.threads ?? 1, attention: o.attention ?? 'dense', cacheDType: 'f32' });
  const rows: EvalRow[] = [];
  try {
    for (const context of o.contexts) {
      for (const kind of o.tasks) {
        let sum = 0, promptTokens = 0;
        const depth = [0, 0, 0, 0, 0], depthN = [0, 0, 0, 0, 0];
        for (let i = 0; i < o.n; i++) {
          const task = tasks.textTask(kind, context, evalSeed(o.seed ?? 1, context, i));
          const r = await generateText(loaded.model, loaded.tokenizer, task.input, { temperature: 0, maxTokens: 9 });
          const s = task.score(r.text);
          sum += s; promptTokens += r.promptTokens;
          if (typeof task.meta.depth === 'number') { const b = Math.min(4, Math.floor(task.meta.depth * 5)); depth[b] += s; depthN[b]++; }
          o.onExample?.(kind, context, i, s, r.text);
        }
        rows.push({
          kind, context, n: o.n, accuracy: sum / o.n, chance: chanceOf(kind, tasks.counting, tasks.needle), meanPromptTokens: promptTokens / o.n,
          ...(kind.startsWith('needle') ? { byDepth: depth.map((a, b) => (depthN[b] ? a / depthN[b] : NaN)) } : {}),
        });
      }
    }
  } finally {
    loaded.model.dispose();
  }
  return rows;
}

/** The rows as a Markdown table. */
export function markdownTable(rows: readonly EvalRow[]): string {
  const pct = (x: number) => (Number.isNaN(x) ? '–' : `${(100 * x).toFixed(0)}%`);
  const chance = (x: number) => (x >= 0.001 ? `${(100 * x).toFixed(1)}%` : `${(100 * x).toExponential(0)}%`);
  const out = ['| task | context | examples | mean prompt tokens | accuracy | chance: blind guess | chance: guess among candidates in context | accuracy by needle depth (fifths of the haystack) |',
    '|---|---:|---:|---:|---:|---:|---:|---|'];
  for (const r of rows) {
    out.push(`| ${r.kind} | ${r.context} | ${r.n} | ${r.meanPromptTokens.toFixed(0)} | **${(100 * r.accuracy).toFixed(1)}%** | ${chance(r.chance.blind)} | ${chance(r.chance.inContext)} | ${r.byDepth ? r.byDepth.map(pct).join(' / ') : ''} |`);
  }
  return out.join('\n');
}

const FLAGS: FlagSpecs = {
  model: { type: 'string', default: 'models/long-context', placeholder: 'PATH', description: 'the model to evaluate' },
  tasks: { type: 'string', list: true, choices: TASK_KINDS, default: 'needle-single,needle-multikey,most-frequent', placeholder: 'LIST', description: 'tasks' },
  n: { type: 'integer', min: 1, default: 100, placeholder: 'N', description: 'examples per task and context' },
  contexts: { type: 'integer', list: true, min: 16, default: '2048', placeholder: 'LIST', description: 'prompt lengths in tokens' },
  attention: { type: 'string', placeholder: 'SPEC', description: 'attention backend (default dense), e.g. magicpig:K=10,L=150' },
  seed: { type: 'integer', default: 1, placeholder: 'N', description: 'seed of the examples' },
  margin: { type: 'number', min: 0, placeholder: 'F', description: `most-frequent: the winner's lead as a share of the list (default ${DEFAULT_COUNTING.marginFraction})` },
  distinct: { type: 'integer', min: 2, placeholder: 'N', description: `most-frequent: distinct words per list (default ${DEFAULT_COUNTING.distinctWords})` },
  json: { type: 'string', placeholder: 'PATH', description: 'write the rows as JSON here too' },
};

async function main(): Promise<number | void> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Accuracy of a long-context model on the synthetic retrieval and counting tasks.');
  if (!v) return 0;
  const counting = v.margin !== undefined || v.distinct !== undefined
    ? { counting: { marginFraction: (v.margin as number | undefined) ?? DEFAULT_COUNTING.marginFraction, distinctWords: (v.distinct as number | undefined) ?? DEFAULT_COUNTING.distinctWords } }
    : {};
  const opts: EvalOptions = {
    model: v.model as string, n: v.n as number, contexts: v.contexts as number[], tasks: v.tasks as TaskKind[],
    attention: v.attention as string | undefined, seed: v.seed as number, ...counting,
    onExample: (kind, ctx, i) => { if ((i + 1) % 10 === 0) process.stderr.write(`${kind} @${ctx}: ${i + 1} done\r`); },
  };
  const t0 = performance.now();
  const rows = await evaluateLongContext(opts);
  process.stderr.write('\n');
  const lists = opts.counting ? `; lists of ${opts.counting.distinctWords} words, lead ${opts.counting.marginFraction} share(s)` : '';
  process.stdout.write(`Attention: ${opts.attention ?? 'dense'}; model ${opts.model}${lists}; ${((performance.now() - t0) / 1000).toFixed(0)} s\n\n${markdownTable(rows)}\n`);
  const json = v.json as string | undefined;
  if (json) writeFileSync(json, JSON.stringify({ model: opts.model, attention: opts.attention ?? 'dense', seed: opts.seed, rows }, null, 2) + '\n');
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
