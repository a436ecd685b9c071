// `tessera train --config FILE [overrides]`: trains a Llama-architecture transformer or a Memory
// Mosaic as the JSON config says (src/training/train-config.ts), with a progress bar, held-out
// loss, resumable checkpoints and loss curves, and exports a model folder `tessera generate` runs.

import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { ConfigError, overrideConfig, parseTrainConfig } from '../training/train-config.js';
import { runTraining } from '../training/train-run.js';
import { readTextFile } from '../formats/regular-file.js';
import { parseJsonStrict } from '../formats/json-strict.js';
import { prepareOutputDir } from './output-path.js';
import { THREADS_FLAG } from './model-flags.js';

/** 1 MiB: a training config is a few hundred bytes. */
const MAX_CONFIG_FILE_BYTES = 1 << 20;

const FLAGS: FlagSpecs = {
  config: { type: 'string', placeholder: 'FILE', description: 'training config (JSON; see configs/ and docs/EXPERIMENTS.md)', short: 'c' },
  family: { type: 'string', choices: ['llama', 'mosaic'], placeholder: 'llama|mosaic', description: 'override the model family' },
  layers: { type: 'integer', min: 1, placeholder: 'N', description: 'override model.layers' },
  d: { type: 'integer', min: 1, placeholder: 'N', description: 'override model.d (width)' },
  heads: { type: 'integer', min: 1, placeholder: 'N', description: 'override model.heads' },
  steps: { type: 'integer', min: 1, placeholder: 'N', description: 'override the number of optimizer steps' },
  batch: { type: 'integer', min: 1, placeholder: 'N', description: 'override sequences per micro-batch' },
  context: { type: 'integer', min: 2, placeholder: 'N', description: 'override the training context (tokens per sequence)' },
  lr: { type: 'number', min: 0, exclusiveMin: true, placeholder: 'X', description: 'override the peak learning rate' },
  seed: { type: 'integer', min: 0, placeholder: 'N', description: 'override the seed' },
  out: { type: 'string', placeholder: 'DIR', description: 'override the output folder' },
  threads: { ...THREADS_FLAG, description: 'override matmul threads' },
  'eval-every': { type: 'integer', min: 0, placeholder: 'N', description: 'override evalEvery' },
  resume: { type: 'boolean', description: 'continue from OUT/checkpoint (same config)' },
  overwrite: { type: 'boolean', description: 'start over even if OUT/checkpoint holds a checkpoint (it is replaced)' },
  quiet: { type: 'boolean', description: 'no progress bar' },
  json: { type: 'boolean', description: 'print the result as one JSON object on stdout' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const TRAIN_HELP = formatHelp('train',
  'Trains a model from a JSON config and writes OUT/{checkpoint,model,loss.json,loss.svg,per-position.svg,result.json}.\n' +
  'Example: tessera train --config configs/sotu-llama-d128-l1.json --steps 20 --out results/try\n' +
  'Then:    tessera generate --model results/try/model --prompt "The Congress"', FLAGS);

const OVERRIDES: Record<string, string> = {
  family: 'family', layers: 'model.layers', d: 'model.d', heads: 'model.heads', steps: 'steps', batch: 'batch', context: 'context',
  lr: 'lr', seed: 'seed', out: 'out', threads: 'threads', 'eval-every': 'evalEvery',
};

export async function runTrain(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'train');
  if (v.help) { process.stdout.write(TRAIN_HELP); return 0; }
  if (v.config === undefined) throw new UsageError('missing required option --config FILE', 'train');
  let raw: unknown;
  try { raw = parseJsonStrict(readTextFile(v.config as string, MAX_CONFIG_FILE_BYTES, '--config'), String(v.config)); } catch (e) {
    throw new CliError(`cannot read --config: ${(e as Error).message}`, 'give a JSON training config, e.g. configs/sotu-llama-d128-l1.json');
  }
  const overrides: Record<string, string | number> = {};
  for (const [flag, key] of Object.entries(OVERRIDES)) if (v[flag] !== undefined) overrides[key] = v[flag] as string | number;
  let cfg;
  try {
    cfg = parseTrainConfig(typeof raw === 'object' && raw !== null ? overrideConfig(raw as Record<string, unknown>, overrides) : raw, String(v.config));
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.message, 'fix the config file or the flag (docs/EXPERIMENTS.md lists the fields)');
    throw e;
  }
  // Before the run, so its results cannot be lost to an output folder that cannot be written.
  prepareOutputDir(v.out !== undefined ? '--out' : `"out" of ${String(v.config)}`, cfg.out);
  const result = await runTraining(cfg, { resume: v.resume === true, overwrite: v.overwrite === true, progress: v.quiet !== true });
  if (v.json) process.stdout.write(JSON.stringify({ ...result, history: undefined }) + '\n');
  return 0;
}
