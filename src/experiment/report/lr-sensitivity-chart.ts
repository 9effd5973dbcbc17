/** Final validation loss against the learning rate (log x), one line and 95% band per configuration. */
import type { ExperimentResults, MethodSummary } from '../types';
import {
  chartSvg,
  dashAttr,
  emptyChartSvg,
  type LegendEntry,
  linePath,
  plotArea,
  plotRanges,
  px,
  seriesStyle,
} from './chart-frame';
import { escapeHtml } from './escape';
import { formatLoss, formatLr } from './format';
import { linearScale, linearTicks, logScale, logTicks, paddedExtent, paddedLogExtent, type Tick } from './scales';
import { sameLr } from './selection';

const TITLE = 'Learning-rate sensitivity (validation loss)';

interface LrPoint {
  lr: number;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/** A summary's finite points in rate order; a missing interval collapses to the mean. */
function pointsOf(summary: MethodSummary): LrPoint[] {
  return summary.lrCurve
    .filter((p) => Number.isFinite(p.lr) && p.lr > 0 && Number.isFinite(p.valMean))
    .map((p) => {
      const [lo, hi] = p.valCi95 ?? [p.valMean, p.valMean];
      const banded = Number.isFinite(lo) && Number.isFinite(hi);
      return { lr: p.lr, mean: p.valMean, lo: banded ? lo : p.valMean, hi: banded ? hi : p.valMean, n: p.n };
    })
    .sort((a, b) => a.lr - b.lr);
}

export function lrSensitivitySvg(results: ExperimentResults): string {
  const series = results.summary.map((summary, i) => ({ summary, style: seriesStyle(i), points: pointsOf(summary) }));
  const all = series.flatMap((s) => s.points);
  const xDomain = paddedLogExtent(all.map((p) => p.lr));
  const yDomain = paddedExtent(all.flatMap((p) => [p.lo, p.hi, p.mean]));
  if (!xDomain || !yDomain) return emptyChartSvg(TITLE, 'No configuration has a finished run to plot.');

  const plot = plotArea();
  const ranges = plotRanges(plot);
  const x = logScale(xDomain, ranges.x);
  const y = linearScale(yDomain, ranges.y);
  const body = series
    .map(({ summary, style, points }) => {
      if (points.length === 0) return '';
      const upper = points.map((p) => [x(p.lr), y(p.hi)] as const);
      const lower = points.map((p) => [x(p.lr), y(p.lo)] as const).reverse();
      // Several rates: a shaded band; a single rate: a whisker (a band of zero width would not show).
      const band =
        points.length > 1
          ? `<path d="${linePath([...upper, ...lower])} Z" fill="${style.colour}" fill-opacity="0.15" stroke="none"/>`
          : `<line x1="${px(x(points[0].lr))}" x2="${px(x(points[0].lr))}" y1="${px(y(points[0].lo))}" y2="${px(y(points[0].hi))}" stroke="${style.colour}"/>`;
      const line = `<path d="${linePath(points.map((p) => [x(p.lr), y(p.mean)]))}" fill="none" stroke="${style.colour}" stroke-width="2"${dashAttr(style.dash)}/>`;
      const dots = points.map((p) => {
        const best = sameLr(p.lr, summary.bestLr);
        const tip = `${summary.name}: lr ${formatLr(p.lr)}, val ${formatLoss(p.mean)} [${formatLoss(p.lo)}, ${formatLoss(p.hi)}], n = ${p.n}${best ? ' (chosen)' : ''}`;
        const shape = best
          ? `<circle cx="${px(x(p.lr))}" cy="${px(y(p.mean))}" r="5.5" fill="${style.colour}" stroke="#111827" stroke-width="1.5"/>`
          : `<circle cx="${px(x(p.lr))}" cy="${px(y(p.mean))}" r="2.5" fill="${style.colour}"/>`;
        return `<g><title>${escapeHtml(tip)}</title>${shape}</g>`;
      });
      return `<g>${band}${line}${dots.join('')}</g>`;
    })
    .join('');

  const legend: LegendEntry[] = series.map(({ summary, style }) => ({ label: summary.name, style, marker: 'line' }));
  return chartSvg({
    title: TITLE,
    xLabel: 'learning rate (log scale)',
    yLabel: 'final validation loss (nats)',
    x,
    y,
    xTicks: lrTicks(
      all.map((p) => p.lr),
      xDomain,
    ),
    yTicks: linearTicks(yDomain),
    legend,
    body,
    note: 'Mean over seeds with its 95% interval; the large dot is the rate chosen on validation.',
  });
}

/** The grid's own rates when there are few (what the user typed), powers of ten otherwise. */
function lrTicks(lrs: number[], domain: [number, number]): Tick[] {
  const distinct = [...new Set(lrs)].sort((a, b) => a - b);
  if (distinct.length <= 7) return distinct.map((value) => ({ value, label: formatLr(value) }));
  return logTicks(domain, formatLr);
}
