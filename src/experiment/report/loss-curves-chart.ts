/** Training loss against step at each configuration's chosen rate: the mean over seeds with its 95% band. */
import type { ExperimentResults } from '../types';
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
import { linearScale, linearTicks, paddedExtent } from './scales';
import { chosenRuns, meanLossCurve } from './selection';

const TITLE = 'Training loss at the chosen rate';

export function lossCurvesSvg(results: ExperimentResults): string {
  const series = results.summary.map((summary, i) => {
    const runs = chosenRuns(results, summary);
    const points = meanLossCurve(runs).filter(
      (p) => Number.isFinite(p.mean) && Number.isFinite(p.lo) && Number.isFinite(p.hi),
    );
    return { summary, runs, points, style: seriesStyle(i) };
  });
  const all = series.flatMap((s) => s.points);
  const xDomain = paddedExtent(
    all.map((p) => p.step),
    0,
  );
  const yDomain = paddedExtent(all.flatMap((p) => [p.lo, p.hi]));
  if (!xDomain || !yDomain) return emptyChartSvg(TITLE, 'No finished run has a training curve to plot.');

  const plot = plotArea();
  const ranges = plotRanges(plot);
  const x = linearScale(xDomain, ranges.x);
  const y = linearScale(yDomain, ranges.y);
  const body = series
    .map(({ points, style, summary, runs }) => {
      if (points.length === 0) return '';
      const upper = points.map((p) => [x(p.step), y(p.hi)] as const);
      const lower = points.map((p) => [x(p.step), y(p.lo)] as const).reverse();
      const band =
        points.length > 1
          ? `<path d="${linePath([...upper, ...lower])} Z" fill="${style.colour}" fill-opacity="0.15" stroke="none"/>`
          : '';
      const last = points[points.length - 1];
      const tip = `${summary.name} at lr ${formatLr(summary.bestLr)}: ${runs.length} seed(s), last loss ${formatLoss(last.mean)}`;
      // A single step has no line to draw: a dot stands for it.
      const mark =
        points.length > 1
          ? `<path d="${linePath(points.map((p) => [x(p.step), y(p.mean)]))}" fill="none" stroke="${style.colour}" stroke-width="1.8"${dashAttr(style.dash)}/>`
          : `<circle cx="${px(x(last.step))}" cy="${px(y(last.mean))}" r="3" fill="${style.colour}"/>`;
      return `<g><title>${escapeHtml(tip)}</title>${band}${mark}</g>`;
    })
    .join('');

  const legend: LegendEntry[] = series.map(({ summary, style, runs }) => ({
    label: `${summary.name} (lr ${formatLr(summary.bestLr)}, n=${runs.length})`,
    style,
    marker: 'line',
  }));
  return chartSvg({
    title: TITLE,
    xLabel: 'step',
    yLabel: 'training loss (nats)',
    x,
    y,
    xTicks: linearTicks(xDomain).filter((t) => Number.isInteger(t.value)),
    yTicks: linearTicks(yDomain),
    legend,
    body,
    note: 'Mean over the seeds that finished, with its 95% interval; skipped steps are left out.',
  });
}
