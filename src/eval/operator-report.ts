// Operator-level results as a table (terminal and markdown), JSON and an SVG plot of relative
// error against the fraction of keys touched, one series per estimator (engine backends dashed).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linePlotSvg, type Series } from '../training/plot-svg.js';
import type { OperatorResults } from './operator.js';
import { formatTable, markdownTable } from './report.js';

export function operatorRows(r: OperatorResults): string[][] {
  const rows = [['source', 'backend', 'setting', 'keys touched', 'rel. error']];
  for (const p of r.points) rows.push([p.source, p.backend, p.setting, (100 * p.fraction).toFixed(2) + '%', p.error.toPrecision(3)]);
  return rows;
}

export function operatorTable(r: OperatorResults): string { return formatTable(operatorRows(r)); }

export function operatorMarkdown(r: OperatorResults): string {
  return `# Operator-level attention error: ${r.model}\n\n` +
    `Q/K/V captured from a dense forward pass over a \`${r.task}\` prompt of ${r.promptTokens} tokens; the last ${r.queries} ` +
    `positions are decode queries (the prefix is the prefill). Relative error ‖o_est − o_dense‖/‖o_dense‖ of the attention ` +
    `output vs fraction of the context's keys read, mean over ${r.heads} query heads × ${r.queries} positions × layers ` +
    `${r.layers.join(', ')} (${r.kvHeads} KV heads, head dim ${r.headDim}). "offline" rows are the float64 estimators of ` +
    `src/eval/estimators.ts; "engine" rows are Tessera's attention backends run on the same tensors (dense layers off). ` +
    `${r.seconds.toFixed(0)} s.\n\n` + markdownTable(operatorRows(r));
}

export function operatorSvg(r: OperatorResults): string {
  const series: Series[] = [];
  const backends = [...new Set(r.points.map((p) => `${p.source}|${p.backend}`))];
  for (const key of backends) {
    const [source, backend] = key.split('|');
    const pts = r.points.filter((p) => p.source === source && p.backend === backend && p.error > 0 && p.fraction > 0 && p.fraction < 1)
      .map((p) => [Math.log10(p.fraction), p.error] as [number, number]).sort((a, b) => a[0] - b[0]);
    if (pts.length) series.push({ name: source === 'engine' ? `${backend} (engine)` : backend, points: pts, dashed: source === 'engine' });
  }
  return linePlotSvg({
    title: `Attention output error vs keys touched (${r.task}, ${r.promptTokens} tokens)`,
    xLabel: 'log10(fraction of keys touched)', yLabel: 'relative error (log scale)', series, logY: true, width: 720, height: 440,
  });
}

export function writeOperatorReport(r: OperatorResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [['operator.json', JSON.stringify(r, null, 1) + '\n'], ['operator.md', operatorMarkdown(r)], ['operator.svg', operatorSvg(r)]];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return files.map(([n]) => join(dir, n));
}
