// Accuracy results as a terminal table, a markdown report, JSON and SVG plots in an output folder.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linePlotSvg } from '../training/plot-svg.js';
import { barPlotSvg } from './bar-plot.js';
import type { AccuracyResults } from './harness.js';

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) + '%' : '100%');

/** Rows: task (per length) and the mean; columns: backends; plus the keys-touched row. */
export function accuracyRows(r: AccuracyResults): string[][] {
  const head = ['length', 'task', ...r.backends];
  const rows: string[][] = [head];
  const cell = (task: string, length: number, b: string) => r.cells.find((c) => c.task === task && c.length === length && c.backend === b);
  for (const length of r.lengths) {
    for (const t of r.tasks) rows.push([String(length), t, ...r.backends.map((b) => cell(t, length, b)?.accuracy.toFixed(1) ?? '')]);
    const mean = (b: string) => { const cs = r.cells.filter((c) => c.length === length && c.backend === b); return cs.reduce((s, c) => s + c.accuracy, 0) / cs.length; };
    rows.push([String(length), 'mean', ...r.backends.map((b) => mean(b).toFixed(1))]);
    const keys = (b: string) => {
      const cs = r.cells.filter((c) => c.length === length && c.backend === b && Number.isFinite(c.keysFraction));
      return cs.length ? cs.reduce((s, c) => s + c.keysFraction, 0) / cs.length : NaN;
    };
    rows.push([String(length), 'keys touched', ...r.backends.map((b) => pct(keys(b)))]);
  }
  return rows;
}

export function formatTable(rows: string[][]): string {
  const w = rows[0].map((_, j) => Math.max(...rows.map((r) => (r[j] ?? '').length)));
  return rows.map((r) => r.map((c, j) => (j < 2 ? c.padEnd(w[j]) : c.padStart(w[j]))).join('  ')).join('\n') + '\n';
}

export function markdownTable(rows: string[][]): string {
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  return [line(rows[0]), line(rows[0].map((_, j) => (j < 2 ? '---' : '---:'))), ...rows.slice(1).map(line)].join('\n') + '\n';
}

export function accuracyMarkdown(r: AccuracyResults): string {
  const dense = r.cells.find((c) => c.denseLayers > 0 && Number.isFinite(c.keysFraction));
  return `# Accuracy: ${r.model}\n\n` +
    `Tasks × attention backends, accuracy in % (RULER string match: fraction of expected answers in the greedy output), ` +
    `${r.samples} samples per cell, profile \`${r.profile}\`, seed ${r.seed}, decode-last ${r.decodeLast}. ` +
    `"keys touched" is the mean fraction of the context's keys read per decode step on the sparse layers` +
    `${dense ? ` (${dense.denseLayers} layer(s) stay dense for some backends)` : ''}. ${r.seconds.toFixed(0)} s in all.\n\n` +
    markdownTable(accuracyRows(r));
}

/** Writes results.json, results.md, accuracy-<length>.svg (and accuracy-vs-length.svg) to `dir`. */
export function writeAccuracyReport(r: AccuracyResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, text: string) => { writeFileSync(join(dir, name), text); files.push(join(dir, name)); };
  put('results.json', JSON.stringify(r, null, 1) + '\n');
  put('results.md', accuracyMarkdown(r));
  for (const length of r.lengths) {
    const groups = [...r.tasks, 'mean'];
    const series = r.backends.map((b) => {
      const vals = r.tasks.map((t) => r.cells.find((c) => c.task === t && c.length === length && c.backend === b)?.accuracy ?? NaN);
      return { name: b, values: [...vals, vals.reduce((s, v) => s + v, 0) / vals.length] };
    });
    put(`accuracy-${length}.svg`, barPlotSvg({ title: `Accuracy at ${length} tokens`, yLabel: 'accuracy (%)', groups, series, yMax: 100 }));
  }
  if (r.lengths.length > 1) {
    const series = r.backends.map((b) => ({
      name: b,
      points: r.lengths.map((L) => { const cs = r.cells.filter((c) => c.length === L && c.backend === b); return [L, cs.reduce((s, c) => s + c.accuracy, 0) / cs.length] as [number, number]; }),
    }));
    put('accuracy-vs-length.svg', linePlotSvg({ title: 'Mean accuracy vs context length', xLabel: 'prompt tokens', yLabel: 'accuracy (%)', series, yRange: [0, 100] }));
  }
  return files;
}
