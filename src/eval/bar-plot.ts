// A grouped bar chart as SVG (groups along x, one bar per series in each group), for accuracy
// tables: tasks × backends. No dependencies; the style follows src/training/plot-svg.ts.

export interface BarPlotOptions {
  title?: string;
  yLabel?: string;
  groups: readonly string[];
  series: readonly { name: string; values: readonly number[] }[];
  yMax?: number;
  width?: number;
  height?: number;
}

const PALETTE = ['#7f7f7f', '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function barPlotSvg(o: BarPlotOptions): string {
  const W = o.width ?? Math.max(480, 110 * o.groups.length + 200), H = o.height ?? 380;
  const m = { left: 56, right: 180, top: o.title ? 36 : 16, bottom: 56 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const finite = o.series.flatMap((s) => s.values.filter(Number.isFinite));
  const yMax = o.yMax ?? Math.max(1e-9, ...finite);
  const sy = (y: number) => m.top + ph - (Math.max(0, Math.min(y, yMax)) / yMax) * ph;
  const gw = pw / Math.max(1, o.groups.length), bw = (gw * 0.8) / Math.max(1, o.series.length);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  if (o.title) out.push(`<text x="${m.left + pw / 2}" y="22" text-anchor="middle" font-size="15">${esc(o.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5, y = sy(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${Number(v.toPrecision(3))}</text>`);
  }
  o.groups.forEach((g, gi) => {
    const x0 = m.left + gi * gw + gw * 0.1;
    o.series.forEach((s, si) => {
      const v = s.values[gi];
      if (!Number.isFinite(v)) return;
      const y = sy(v);
      out.push(`<rect x="${(x0 + si * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw * 0.92).toFixed(1)}" height="${(m.top + ph - y).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${s.name} · ${g}: ${v.toFixed(1)}`)}</title></rect>`);
    });
    out.push(`<text x="${(m.left + gi * gw + gw / 2).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle">${esc(g)}</text>`);
  });
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  if (o.yLabel) out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const y = m.top + 8 + i * 18, x = m.left + pw + 12;
    out.push(`<rect x="${x}" y="${y - 6}" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${x + 18}" y="${y}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
