// Accuracy results as a terminal table, a markdown report, JSON and SVG plots in an output folder.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { linePlotSvg, type Series } from '../training/plot-svg.js';
import { barPlotSvg } from './bar-plot.js';
import type { AccuracyCell, AccuracyResults } from './harness.js';

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) + '%' : '100%');

/** Rows: task (per length) and the mean; columns: backends; plus the keys-touched rows (sparse layers, all layers). */
export function accuracyRows(r: AccuracyResults): string[][] {
  const head = ['length', 'task', ...r.backends];
  const rows: string[][] = [head];
  const cell = (task: string, length: number, b: string) => r.cells.find((c) => c.task === task && c.length === length && c.backend === b);
  for (const length of r.lengths) {
    for (const t of r.tasks) rows.push([String(length), t, ...r.backends.map((b) => cell(t, length, b)?.accuracy.toFixed(1) ?? '')]);
    const mean = (b: string) => { const cs = r.cells.filter((c) => c.length === length && c.backend === b); return cs.reduce((s, c) => s + c.accuracy, 0) / cs.length; };
    rows.push([String(length), 'mean', ...r.backends.map((b) => mean(b).toFixed(1))]);
    const keys = (b: string, f: (c: AccuracyCell) => number) => {
      const cs = r.cells.filter((c) => c.length === length && c.backend === b && Number.isFinite(f(c)));
      return cs.length ? cs.reduce((s, c) => s + f(c), 0) / cs.length : NaN;
    };
    rows.push([String(length), 'keys touched', ...r.backends.map((b) => pct(keys(b, (c) => c.keysFraction)))]);
    // older results files have no all-layers count: an empty cell, not a made-up number
    rows.push([String(length), 'keys touched, all layers', ...r.backends.map((b) => {
      const k = keys(b, (c) => c.keysFractionAllLayers);
      return Number.isFinite(k) ? pct(k) : '';
    })]);
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
    `${dense ? ` (${dense.denseLayers} layer(s) stay dense for some backends)` : ''}; "keys touched, all layers" counts every ` +
    `layer, a dense layer reading all its keys. ${r.seconds.toFixed(0)} s in all.\n\n` +
    markdownTable(accuracyRows(r));
}

const kindOf = (backend: string) => backend.split(':')[0]!;
/** A line of the accuracy-vs-keys plot: the backend kind and its dense layers (settings that differ
 *  in which layers are sparse are not points of one budget curve). */
const denseOf = (backend: string) => /(?:^|[:,])dense=([^,]+)/.exec(backend)?.[1] ?? '';
function lineNamer(backends: readonly string[]): (backend: string) => string {
  const settings = new Map<string, Set<string>>();
  for (const b of backends) { const k = kindOf(b); if (!settings.has(k)) settings.set(k, new Set()); settings.get(k)!.add(denseOf(b)); }
  return (b) => (settings.get(kindOf(b))!.size > 1 ? `${kindOf(b)} (dense=${denseOf(b) || 'default'})` : kindOf(b));
}

/** One task at one length: accuracy (%) vs % of keys touched (log scale), a line per backend kind
 *  (and dense-layer setting) through its settings; backends without sparse layers (dense) are a
 *  horizontal reference line. */
export function accuracyVsKeysSvg(r: AccuracyResults, task: string, length: number): string {
  const cells = r.cells.filter((c) => c.task === task && c.length === length);
  const sparse = cells.filter((c) => Number.isFinite(c.keysFraction) && c.keysFraction > 0);
  const xs = sparse.map((c) => Math.log10(100 * c.keysFraction));
  const lo = Math.min(...xs, 0) - 0.1, hi = Math.max(...xs, 1) + 0.1;
  const series: Series[] = [];
  for (const c of cells.filter((c) => !Number.isFinite(c.keysFraction))) {
    series.push({ name: `${c.backend} (all keys)`, points: [[lo, c.accuracy], [hi, c.accuracy]], dashed: true });
  }
  const lineOf = lineNamer(sparse.map((c) => c.backend));
  for (const line of [...new Set(sparse.map((c) => lineOf(c.backend)))]) {
    const pts = sparse.filter((c) => lineOf(c.backend) === line).map((c) => [Math.log10(100 * c.keysFraction), c.accuracy] as [number, number]);
    series.push({ name: line, points: pts.sort((a, b) => a[0] - b[0]) });
  }
  return linePlotSvg({
    title: `${task} at ${length} tokens: accuracy vs keys touched`, xLabel: 'log10(% of keys touched per decode step)',
    yLabel: 'accuracy (%)', series, yRange: [0, 100], xRange: [lo, hi], width: 720, height: 440,
  });
}

/** Writes results.json, results.md, accuracy-<length>.svg (and accuracy-vs-length.svg, and for a
 *  budget sweep accuracy-vs-keys-<length>-<task #>.svg) to `dir`. */
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
  // A budget sweep (some backend kind run at two or more settings): accuracy vs keys touched per task.
  const kinds = [...new Set(r.backends.map(kindOf))];
  if (kinds.some((k) => r.backends.filter((b) => kindOf(b) === k).length > 1)) {
    for (const length of r.lengths) {
      r.tasks.forEach((task, ti) => put(`accuracy-vs-keys-${length}-${ti + 1}.svg`, accuracyVsKeysSvg(r, task, length)));
    }
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
