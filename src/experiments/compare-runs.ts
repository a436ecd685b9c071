// Compares finished `tessera train` runs: one plot of their held-out loss against training tokens
// (from each run's loss.json) and a markdown table of their final results (result.json).
//
// Run:  node dist/src/experiments/compare-runs.js --svg docs/plots/NAME.svg [--title TEXT] RUN_DIR…   (or --run RUN_DIR, repeated)

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { linePlotSvg } from '../training/plot-svg.js';
import { markdownTable, fmt } from './report.js';
import type { LogRow } from '../training/trainer.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface RunSummaryRow { name: string; family: string; layers: number; parameters: number; tokens: number; loss: number; perplexity: number }

export function compareRuns(dirs: readonly string[], title: string): { svg: string; table: string; rows: RunSummaryRow[] } {
  const runs = dirs.map((dir) => {
    const history = JSON.parse(readFileSync(join(dir, 'loss.json'), 'utf8')) as LogRow[];
    const r = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
      config: { family: string; model: { layers: number } }; parameters: number; tokens: number; final: { loss: number; perplexity: number };
    };
    const row: RunSummaryRow = { name: basename(dir), family: r.config.family, layers: r.config.model.layers, parameters: r.parameters,
      tokens: r.tokens, loss: r.final.loss, perplexity: r.final.perplexity };
    return { row, history };
  });
  const svg = linePlotSvg({
    title, xLabel: 'training tokens', yLabel: 'held-out loss (nats)',
    series: runs.map(({ row, history }) => ({
      name: `${row.family === 'llama' ? 'transformer' : 'mosaic'} L${row.layers}`, dashed: row.family === 'llama',
      points: history.filter((h) => h.evalLoss !== undefined).map((h) => [h.tokens, h.evalLoss!] as [number, number]),
    })),
  });
  const table = markdownTable(['run', 'parameters', 'training tokens', 'val loss', 'val ppl'],
    runs.map(({ row }) => [row.name, row.parameters.toLocaleString('en-US'), row.tokens.toLocaleString('en-US'), fmt(row.loss), fmt(row.perplexity, 1)]));
  return { svg, table, rows: runs.map((r) => r.row) };
}

const FLAGS: FlagSpecs = {
  run: { type: 'string', multiple: true, positional: true, required: true, placeholder: 'RUN_DIR', description: 'a finished `tessera train` output folder' },
  svg: { type: 'string', placeholder: 'PATH', description: 'write the loss plot here' },
  title: { type: 'string', default: 'held-out loss', description: "the plot's title" },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Compares finished `tessera train` runs: a plot of their held-out loss and a markdown table of their final results.');
  if (!v) return 0;
  const svgPath = v.svg as string | undefined;
  const { svg, table } = compareRuns(v.run as string[], v.title as string);
  if (svgPath) { mkdirSync(dirname(svgPath), { recursive: true }); writeFileSync(svgPath, svg); }
  process.stdout.write(table);
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
