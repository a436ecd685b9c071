// `tessera eval`: RULER-style long-context accuracy of a model under one or more attention
// backends, or (--operator) the attention-output error vs keys touched on captured Q/K/V.
// Writes tables, JSON and SVG plots to --out (default results/eval-<time>).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, formatHelp, parseFlags, UsageError, type FlagSpecs } from './args.js';
import { MODEL_HINT, THREADS_FLAG } from './model-flags.js';
import { prepareOutputDir } from './output-path.js';
import { runAccuracyEval } from '../eval/harness.js';
import { accuracyRows, formatTable, writeAccuracyReport } from '../eval/report.js';
import { parseTaskSpec, profileForModel, PROFILES, TASK_OPTIONS_FILE } from '../eval/tasks.js';
import { DEFAULT_BUDGETS, runOperatorEval } from '../eval/operator.js';
import { operatorTable, writeOperatorReport } from '../eval/operator-report.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'Hugging Face model folder or .gguf file', short: 'm' },
  tasks: { type: 'string', placeholder: 'LIST', default: 'niah_single,niah_multikey,niah_multivalue,cwe,fwe,vt', description: 'comma-separated tasks (niah_single, niah_multikey, niah_multivalue, niah_multiquery, cwe, fwe, vt, most_frequent, count); options as task:key=value+key=value' },
  length: { type: 'integer', min: 16, multiple: true, placeholder: 'N', description: 'prompt length in tokens (default 2048)' },
  samples: { type: 'integer', min: 1, default: 50, placeholder: 'N', description: 'prompts per task and length' },
  attention: { type: 'string', multiple: true, placeholder: 'SPEC', description: 'attention backend (default dense), e.g. magicpig:K=10,L=150' },
  profile: { type: 'string', choices: ['auto', ...Object.keys(PROFILES)], default: 'auto', placeholder: 'NAME', description: `task options: ${Object.keys(PROFILES).join(', ')}, or auto: the profile matching the model folder's ${TASK_OPTIONS_FILE} (what it was trained on), else ruler` },
  'decode-last': { type: 'integer', min: 0, default: 0, placeholder: 'K', description: 'feed the last K prompt tokens one at a time (sparse decode path) instead of prefilling them densely' },
  seed: { type: 'integer', default: 1, placeholder: 'S', description: 'task seed' },
  out: { type: 'string', placeholder: 'DIR', description: 'output folder (default results/eval-<timestamp>)' },
  threads: THREADS_FLAG,
  'kv-type': { type: 'string', choices: ['f32', 'f16'], placeholder: 'f32|f16', description: 'KV-cache storage type (default f32 here, as the published evaluations were measured)' },
  operator: { type: 'boolean', description: 'operator-level measurement: attention-output error vs fraction of keys, on Q/K/V captured from a forward pass' },
  layers: { type: 'string', placeholder: 'LIST', description: '--operator: layers to measure, e.g. 1,3 (default all)' },
  queries: { type: 'integer', min: 1, default: 16, placeholder: 'N', description: '--operator: decode positions measured (the last N of the prompt)' },
  budgets: { type: 'string', placeholder: 'LIST', description: `--operator: key fractions for topk/oracle-sampling/quest/streaming (default ${DEFAULT_BUDGETS.join(',')})` },
  magicpig: { type: 'string', placeholder: 'LIST', description: '--operator: offline MagicPIG settings K:L,… (default 8:75,10:50,10:150,10:300,11:300)' },
  quiet: { type: 'boolean', description: 'no per-sample progress' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

const SUMMARY = 'Evaluate long-context accuracy (RULER-style synthetic tasks, exact scoring, greedy decoding) under attention backends,\nor with --operator the attention-output error vs fraction of keys touched on Q/K/V captured from a real forward pass.';

const list = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

export async function runEval(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'eval');
  if (v.help) { process.stdout.write(formatHelp('eval', SUMMARY, FLAGS)); return 0; }
  const model = v.model as string;
  if (!existsSync(model)) throw new CliError(`model path ${model} does not exist`, MODEL_HINT);
  const out = (v.out as string | undefined) ?? join('results', `eval-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const lengths = (v.length as string[] | undefined)?.map(Number) ?? [2048];
  const attention = (v.attention as string[] | undefined) ?? ['dense'];
  const threads = v.threads as number | undefined;
  let profile = v.profile as string;
  if (profile === 'auto') {
    let chosen;
    try { chosen = profileForModel(model); } catch (e) { throw new CliError((e as Error).message, 'see docs/EVALUATION.md for the profiles'); }
    profile = chosen.profile;
    process.stderr.write(`eval: profile ${profile} (${chosen.reason}; --profile overrides)\n`);
  }
  // Task options are written task:key=value+key=value on the command line (commas separate tasks).
  const taskTexts = list(v.tasks as string).map((t) => t.replace(/\+/g, ','));
  let tasks;
  try { tasks = taskTexts.map(parseTaskSpec); } catch (e) { throw new UsageError((e as Error).message, 'eval'); }

  prepareOutputDir('--out', out); // before the evaluation, so its results cannot be lost

  if (v.operator) {
    const num = (s: string, what: string) => { const x = Number(s); if (!Number.isFinite(x)) throw new UsageError(`--${what}: '${s}' is not a number`, 'eval'); return x; };
    const pigs = v.magicpig === undefined ? undefined : list(v.magicpig as string).map((s) => {
      const [K, L] = s.split(':').map((x) => num(x, 'magicpig'));
      if (!Number.isInteger(K) || !Number.isInteger(L)) throw new UsageError(`--magicpig: '${s}' must be K:L with integers`, 'eval');
      return [K, L] as [number, number];
    });
    const r = await runOperatorEval({
      model, length: lengths[0], task: taskTexts[0], profile, queries: v.queries as number,
      layers: v.layers === undefined ? undefined : list(v.layers as string).map((s) => num(s, 'layers')),
      budgets: v.budgets === undefined ? undefined : list(v.budgets as string).map((s) => num(s, 'budgets')),
      magicpig: pigs, engine: (v.attention as string[] | undefined) ?? ['dense', 'topk', 'quest', 'streaming', 'oracle-sampling', 'magicpig'],
      seed: v.seed as number, threads,
    });
    process.stdout.write(operatorTable(r));
    for (const f of writeOperatorReport(r, out)) process.stderr.write(`wrote ${f}\n`);
    return 0;
  }

  const r = await runAccuracyEval({
    model, tasks, lengths, samples: v.samples as number, attention, profile, seed: v.seed as number,
    decodeLast: v['decode-last'] as number, threads, cacheDType: v['kv-type'] as 'f32' | 'f16' | undefined,
    onSample: v.quiet ? undefined : (s, done, total) => process.stderr.write(`[${done}/${total}] ${s.backend} ${s.task} @${s.length} #${s.index}: ${s.score.toFixed(2)}  ${JSON.stringify(s.output.slice(0, 60))}\n`),
  });
  process.stdout.write(formatTable(accuracyRows(r)));
  for (const f of writeAccuracyReport(r, out)) process.stderr.write(`wrote ${f}\n`);
  return 0;
}
