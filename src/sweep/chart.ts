/**
 * Learning curves of all trials as one self-contained HTML page: inline SVG, no script, no CDN.
 * One panel per metric (the sweep's metric first), one line per trial, the best trial drawn thicker.
 */
import { num, paramString } from './format.js';
import type { SweepResultsFile } from './results.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3'];

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) || 1;
    return [lo - d * 0.05, lo, lo + d * 0.05];
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/** Options of {@link renderLearningCurves}. */
export interface ChartOptions {
  title?: string;
  /** Metrics to draw, in order. Default: the sweep's metric, then loss/val_loss/acc/val_acc and any others (at most 6). */
  metrics?: string[];
}

/** Renders the learning-curves page for a results file. */
export function renderLearningCurves(file: SweepResultsFile, options: ChartOptions = {}): string {
  const present = [...new Set(file.trials.flatMap((t) => t.history.flatMap((h) => Object.keys(h.metrics))))];
  const preferred = [file.metric, 'loss', 'val_loss', 'acc', 'val_acc'];
  const metrics = options.metrics ?? [...new Set([...preferred.filter((m) => present.includes(m)), ...present.sort()])].slice(0, 6);
  const colour = new Map(file.trials.map((t, i) => [t.id, { stroke: PALETTE[i % PALETTE.length]!, dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length]! }]));
  const bestId = file.best?.id;
  const title = options.title ?? `Sweep: ${file.trials.length} trial(s), best ${file.metric}`;

  const panels = metrics.map((m) => panel(file, m, colour, bestId)).join('\n');
  const rows = file.trials
    .map((t) => {
      const c = colour.get(t.id)!;
      const swatch = `<svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" stroke="${c.stroke}" stroke-width="${t.id === bestId ? 4 : 2}" stroke-dasharray="${c.dash}"/></svg>`;
      const status = t.status === 'failed' ? `failed: ${esc(t.error?.message ?? '')}` : t.stopReason ? `${t.status} (${esc(t.stopReason)})` : t.status;
      return (
        `<tr${t.id === bestId ? ' class="best"' : ''}><td>${swatch}</td><td><code>${esc(t.id)}</code></td><td>${esc(paramString(t.params))}</td>` +
        `<td>${status}</td><td class="n">${t.history.length}</td><td class="n">${num(t.score)}</td><td class="n">${t.testAccuracy === null ? '' : num(t.testAccuracy)}</td>` +
        `<td>${esc(t.backend ?? '')}${t.gpu === null || t.gpu === undefined ? '' : ` / GPU ${t.gpu}`}</td></tr>`
      );
    })
    .join('\n');
  const best = file.best
    ? `<p>Best trial <code>${esc(file.best.id)}</code> (${esc(paramString(file.best.params))}): ${esc(file.metric)} ${num(file.best.score)} at epoch ${file.best.epoch}` +
      (file.best.testAccuracy === null ? '' : `, test accuracy ${num(file.best.testAccuracy)}`) +
      '.</p>'
    : '<p>No trial finished an epoch.</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
.panels { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
table { border-collapse: collapse; margin-top: 16px; }
td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #fff7d6; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p>Started ${esc(file.startedAt)}, ${num(file.seconds, 4)} s. ${esc(file.placement)}. Metric: ${esc(file.metric)} (${file.mode === 'max' ? 'higher' : 'lower'} is better).</p>
${best}
<div class="panels">
${panels}
</div>
<table>
<thead><tr><th></th><th>trial</th><th>params</th><th>status</th><th>epochs</th><th>best ${esc(file.metric)}</th><th>test accuracy</th><th>backend</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</body>
</html>
`;
}

function panel(file: SweepResultsFile, metric: string, colour: Map<string, { stroke: string; dash: string }>, bestId: string | undefined): string {
  const W = 460;
  const H = 280;
  const L = 56;
  const R = 12;
  const T = 10;
  const B = 36;
  const series = file.trials
    .map((t) => ({ t, pts: t.history.filter((h) => Number.isFinite(h.metrics[metric])).map((h) => [h.epoch, h.metrics[metric]!] as const) }))
    .filter((s) => s.pts.length);
  if (!series.length) return '';
  const xs = series.flatMap((s) => s.pts.map((p) => p[0]));
  const ys = series.flatMap((s) => s.pts.map((p) => p[1]));
  const xt = niceTicks(Math.min(1, ...xs), Math.max(...xs), Math.min(10, Math.max(...xs))).filter((v) => Number.isInteger(v));
  const yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const [x0, x1] = [xt[0]!, xt[xt.length - 1]!];
  const [y0, y1] = [yt[0]!, yt[yt.length - 1]!];
  const sx = (v: number) => L + ((v - x0) / (x1 - x0 || 1)) * (W - L - R);
  const sy = (v: number) => H - B - ((v - y0) / (y1 - y0 || 1)) * (H - T - B);
  const grid = [
    ...yt.map((v) => `<line x1="${L}" x2="${W - R}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#eee"/><text x="${L - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end">${num(v, 4)}</text>`),
    ...xt.map((v) => `<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${T}" y2="${H - B}" stroke="#f3f3f3"/><text x="${sx(v).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${v}</text>`),
  ].join('');
  // Best trial last, so it is drawn on top.
  series.sort((a, b) => Number(a.t.id === bestId) - Number(b.t.id === bestId));
  const lines = series
    .map(({ t, pts }) => {
      const c = colour.get(t.id)!;
      const w = t.id === bestId ? 3.5 : 1.6;
      const d = pts.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      const tip = `<title>${esc(`${t.id} ${paramString(t.params)}`)}</title>`;
      const shape = pts.length === 1
        ? `<circle cx="${sx(pts[0]![0]).toFixed(1)}" cy="${sy(pts[0]![1]).toFixed(1)}" r="${w + 1}" fill="${c.stroke}">${tip}</circle>`
        : `<polyline points="${d}" fill="none" stroke="${c.stroke}" stroke-width="${w}" stroke-dasharray="${c.dash}" stroke-linejoin="round">${tip}</polyline>`;
      return shape;
    })
    .join('\n');
  return `<figure><figcaption>${esc(metric)}</figcaption>
<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(metric)} by epoch">
${grid}
<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#888"/><line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#888"/>
<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle">epoch</text>
${lines}
</svg></figure>`;
}
