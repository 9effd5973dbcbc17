/**
 * Test loss against trainable parameters (log x): one point per configuration with its 95% whiskers, coloured by
 * method, configurations of one method joined in parameter order. Only meaningful when the budgets differ.
 */
import type { ExperimentResults, MethodSummary } from '../types';
import {
  chartSvg,
  dashAttr,
  type LegendEntry,
  linePath,
  plotArea,
  plotRanges,
  px,
  seriesStyle,
  truncate,
} from './chart-frame';
import { escapeHtml } from './escape';
import { formatLoss, formatParams, formatParamsShort } from './format';
import { linearScale, linearTicks, logScale, logTicks, paddedExtent, paddedLogExtent } from './scales';

const TITLE = 'Test loss against trainable parameters';
/** Past this many points, names beside the points would overlap: the legend and tooltips carry them. */
const MAX_POINT_LABELS = 10;

interface SweepPoint {
  summary: MethodSummary;
  params: number;
  mean: number;
  lo: number;
  hi: number;
}

function pointOf(summary: MethodSummary): SweepPoint | null {
  const { trainableParams: params, testLossMean: mean } = summary;
  if (!(Number.isFinite(params) && params > 0 && Number.isFinite(mean))) return null;
  const [lo, hi] = summary.testLossCi95 ?? [mean, mean];
  const banded = Number.isFinite(lo) && Number.isFinite(hi);
  return { summary, params, mean, lo: banded ? lo : mean, hi: banded ? hi : mean };
}

/** Null when fewer than two distinct parameter counts exist (a sweep needs budgets to differ). */
export function budgetSweepSvg(results: ExperimentResults): string | null {
  const points = results.summary.map(pointOf).filter((p): p is SweepPoint => p !== null);
  if (new Set(points.map((p) => p.params)).size < 2) return null;

  const methods: string[] = [...new Set(points.map((p) => p.summary.method))];
  const styleOf = (method: string) => seriesStyle(methods.indexOf(method));
  const reference = Number.isFinite(results.referenceParams) && results.referenceParams > 0;
  // Wider margins than the line charts: points at the ends carry a name and a whisker.
  const xDomain = paddedLogExtent(
    [...points.map((p) => p.params), ...(reference ? [results.referenceParams] : [])],
    0.15,
  )!;
  const yDomain = paddedExtent(
    points.flatMap((p) => [p.lo, p.hi]),
    0.12,
  )!;
  const ranges = plotRanges(plotArea());
  const x = logScale(xDomain, ranges.x);
  const y = linearScale(yDomain, ranges.y);

  const referenceLine = reference
    ? `<line x1="${px(x(results.referenceParams))}" x2="${px(x(results.referenceParams))}" y1="${ranges.y[1]}" y2="${ranges.y[0]}" stroke="#9ca3af" stroke-dasharray="4 4"/>` +
      `<text x="${px(x(results.referenceParams) + 4)}" y="${ranges.y[1] + 10}" font-size="10" fill="#6b7280">reference (rank ${results.experiment.referenceRank})</text>`
    : '';
  const lines = methods.map((method) => {
    const ofMethod = points.filter((p) => p.summary.method === method).sort((a, b) => a.params - b.params);
    if (ofMethod.length < 2) return '';
    const { colour, dash } = styleOf(method);
    return `<path d="${linePath(ofMethod.map((p) => [x(p.params), y(p.mean)]))}" fill="none" stroke="${colour}" stroke-width="1.5"${dashAttr(dash)}/>`;
  });
  const labelled = points.length <= MAX_POINT_LABELS;
  const marks = points.map((p) => {
    const { colour } = styleOf(p.summary.method);
    const cx = px(x(p.params));
    const tip = `${p.summary.name} (${p.summary.method}): ${formatParams(p.params)} parameters, test ${formatLoss(p.mean)} [${formatLoss(p.lo)}, ${formatLoss(p.hi)}]`;
    // Names sit on the side of the point facing the plot's middle, so they stay inside it.
    const onRight = x(p.params) < (ranges.x[0] + ranges.x[1]) / 2;
    const label = labelled
      ? `<text x="${px(x(p.params) + (onRight ? 7 : -7))}" y="${px(y(p.mean) + 3.5)}" text-anchor="${onRight ? 'start' : 'end'}" font-size="10" fill="#374151">${escapeHtml(truncate(p.summary.name, 24))}</text>`
      : '';
    return (
      `<g><title>${escapeHtml(tip)}</title>` +
      `<line x1="${cx}" x2="${cx}" y1="${px(y(p.lo))}" y2="${px(y(p.hi))}" stroke="${colour}" stroke-width="1.5"/>` +
      `<circle cx="${cx}" cy="${px(y(p.mean))}" r="4.5" fill="${colour}" stroke="#ffffff"/>${label}</g>`
    );
  });

  const legend: LegendEntry[] = methods.map((method) => ({ label: method, style: styleOf(method), marker: 'dot' }));
  return chartSvg({
    title: TITLE,
    xLabel: 'trainable parameters (log scale)',
    yLabel: 'test loss (nats)',
    x,
    y,
    xTicks: logTicks(xDomain, formatParamsShort),
    yTicks: linearTicks(yDomain),
    legend,
    body: referenceLine + lines.join('') + marks.join(''),
    note: 'Mean test loss over seeds at the chosen rate, whiskers its 95% interval; colour by method.',
  });
}
