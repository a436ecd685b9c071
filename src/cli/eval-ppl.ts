// `tessera eval-ppl --model DIR --corpus sotu|moby-dick`: held-out loss and perplexity of a model
// through the inference engine (src/experiments/perplexity.ts), optionally per position.

import { writeFileSync } from 'node:fs';
import { formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { prepareOutputFile } from './output-path.js';
import { evalPerplexity } from '../experiments/perplexity.js';
import { CORPUS_NAMES, type CorpusName } from '../data/corpora.js';
import { linePlotSvg } from '../training/plot-svg.js';
import { bucketed } from '../experiments/evaluate.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'model folder (Llama or Memory Mosaic) or .gguf file', short: 'm' },
  corpus: { type: 'string', required: true, choices: CORPUS_NAMES, placeholder: CORPUS_NAMES.join('|'), description: 'text to score' },
  split: { type: 'string', choices: ['validation', 'train'], default: 'validation', placeholder: 'validation|train', description: 'which split of the corpus' },
  ctx: { type: 'integer', min: 2, placeholder: 'N', description: 'window length (default: the model\'s training context, at most 1024)' },
  windows: { type: 'integer', min: 1, default: 64, placeholder: 'N', description: 'most windows to score' },
  threads: { type: 'integer', min: 1, placeholder: 'N', description: 'worker threads (default: all cores)' },
  'per-position': { type: 'boolean', description: 'also print the loss by position (16 buckets)' },
  svg: { type: 'string', placeholder: 'PATH', description: 'write the per-position loss curve as an SVG' },
  json: { type: 'boolean', description: 'print one JSON object (with perPosition) instead of text' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const EVAL_PPL_HELP = formatHelp('eval-ppl',
  'Scores a corpus split with a model: mean next-token loss, perplexity, bits per byte.\n' +
  'Example: tessera eval-ppl --model models/default --corpus sotu --per-position', FLAGS);

export async function runEvalPpl(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'eval-ppl');
  if (v.help) { process.stdout.write(EVAL_PPL_HELP); return 0; }
  if (v.svg) prepareOutputFile('--svg', v.svg as string); // before the evaluation, so its results cannot be lost
  const r = await evalPerplexity(v.model as string, {
    corpus: v.corpus as CorpusName, split: v.split as 'validation' | 'train', ctx: v.ctx as number | undefined,
    maxWindows: v.windows as number, threads: v.threads as number | undefined,
  });
  if (v.svg) {
    writeFileSync(v.svg as string, linePlotSvg({ title: `loss by position: ${r.model} on ${r.corpus}/${r.split}`, xLabel: 'position', yLabel: 'loss (nats)',
      series: [{ name: r.model, points: r.perPosition.map((y, x) => [x, y] as [number, number]) }] }));
  }
  if (v.json) { process.stdout.write(JSON.stringify(r) + '\n'); return 0; }
  process.stdout.write(`${r.model} on ${r.corpus}/${r.split}: ${r.windows} windows × ${r.ctx} tokens = ${r.tokens} predictions\n`);
  process.stdout.write(`loss ${r.loss.toFixed(4)} nats | perplexity ${r.perplexity.toFixed(2)} | ${r.bitsPerByte.toFixed(3)} bits/byte | ${r.seconds.toFixed(1)} s\n`);
  if (v['per-position']) {
    process.stdout.write('position  loss\n');
    for (const [x, y] of bucketed(r.perPosition, 16)) process.stdout.write(`${x.toFixed(1).padStart(8)}  ${y.toFixed(4)}\n`);
  }
  return 0;
}
