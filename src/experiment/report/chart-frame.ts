/**
 * The frame every line chart shares: title, axes with ticks and labels, grid lines, a legend on the right, and the
 * palette (one colour per method configuration, in the summary's order). Output is a plain SVG string: no scripts,
 * no external fonts, no ids (several charts share one HTML page), and no xmlns attribute (an inline <svg> in HTML
 * needs none, and the report holds no URL at all).
 */
import { escapeHtml } from './escape';
import type { Scale, Tick } from './scales';

/** Twelve-plus distinct colours on white (Tableau 10 and four more); later series repeat them dashed. */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
  '#1b3a6b',
  '#8cd17d',
  '#d37295',
  '#a0cbe8',
] as const;

export interface SeriesStyle {
  colour: string;
  /** A dasharray for series past the palette's length (empty when solid). */
  dash: string;
}

export function seriesStyle(index: number): SeriesStyle {
  const cycle = Math.floor(index / PALETTE.length);
  return { colour: PALETTE[index % PALETTE.length], dash: cycle === 0 ? '' : cycle === 1 ? '6 3' : '2 2' };
}

/** Pixel coordinates with one decimal: short output, and never "NaN" reaching the markup unnoticed. */
export function px(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`non-finite coordinate ${value} in a chart`);
  return String(Math.round(value * 10) / 10);
}

/** An SVG path through the points in order. */
export function linePath(points: readonly (readonly [number, number])[]): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x)} ${px(y)}`).join(' ');
}

export function dashAttr(dash: string): string {
  return dash ? ` stroke-dasharray="${dash}"` : '';
}

/** A label cut to `max` characters with an ellipsis (the full text goes in a <title>). */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface LegendEntry {
  label: string;
  style: SeriesStyle;
  /** A line swatch (the line charts) or a dot (the scatter). */
  marker: 'line' | 'dot';
}

export interface PlotArea {
  left: number;
  top: number;
  width: number;
  height: number;
}

const WIDTH = 760;
const PLOT: PlotArea = { left: 70, top: 40, width: 460, height: 270 };
const LEGEND_X = PLOT.left + PLOT.width + 24;
const LEGEND_ROW = 16;
const LEGEND_CHARS = 30;

export function plotArea(): PlotArea {
  return { ...PLOT };
}

/** The x (left to right) and y (bottom to top) pixel ranges of the plot area. */
export function plotRanges(plot: PlotArea): { x: [number, number]; y: [number, number] } {
  return { x: [plot.left, plot.left + plot.width], y: [plot.top + plot.height, plot.top] };
}

export interface ChartFrame {
  title: string;
  xLabel: string;
  yLabel: string;
  x: Scale;
  y: Scale;
  xTicks: Tick[];
  yTicks: Tick[];
  legend: LegendEntry[];
  /** The series' markup, drawn over the grid and under the axes. */
  body: string;
  /** A line under the x-axis label (what the band means, what was left out). */
  note?: string;
}

export function chartSvg(frame: ChartFrame): string {
  const plot = PLOT;
  const bottom = plot.top + plot.height;
  const height = Math.max(bottom + (frame.note ? 62 : 48), plot.top + frame.legend.length * LEGEND_ROW + 8);
  const xTicks = frame.xTicks.filter((t) => inside(frame.x(t.value), plot.left, plot.left + plot.width));
  const yTicks = frame.yTicks.filter((t) => inside(frame.y(t.value), plot.top, bottom));
  const parts = [
    svgOpen(WIDTH, height, frame.title),
    `<text x="${plot.left}" y="22" font-size="14" font-weight="600">${escapeHtml(frame.title)}</text>`,
    ...yTicks.map((t) => {
      const y = px(frame.y(t.value));
      return (
        `<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>` +
        `<text x="${plot.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(t.label)}</text>`
      );
    }),
    ...xTicks.map((t) => {
      const x = px(frame.x(t.value));
      return (
        `<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}" stroke="#374151"/>` +
        `<text x="${x}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(t.label)}</text>`
      );
    }),
    frame.body,
    `<path d="M${plot.left} ${plot.top} V${bottom} H${plot.left + plot.width}" fill="none" stroke="#374151"/>`,
    `<text x="${plot.left + plot.width / 2}" y="${bottom + 34}" text-anchor="middle">${escapeHtml(frame.xLabel)}</text>`,
    `<text transform="translate(16 ${plot.top + plot.height / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(frame.yLabel)}</text>`,
    frame.note
      ? `<text x="${plot.left}" y="${bottom + 50}" font-size="10" fill="#6b7280">${escapeHtml(frame.note)}</text>`
      : '',
    legendSvg(frame.legend),
    '</svg>',
  ];
  return parts.join('');
}

/** A chart with nothing to draw says so rather than drawing empty axes. */
export function emptyChartSvg(title: string, message: string): string {
  return [
    svgOpen(WIDTH, 120, title),
    `<text x="${PLOT.left}" y="22" font-size="14" font-weight="600">${escapeHtml(title)}</text>`,
    `<text x="${PLOT.left}" y="64" fill="#6b7280">${escapeHtml(message)}</text>`,
    '</svg>',
  ].join('');
}

/** The opening tag and the accessible name; a white background so the chart reads the same on any page. */
export function svgOpen(width: number, height: number, title: string): string {
  return (
    `<svg class="chart" viewBox="0 0 ${px(width)} ${px(height)}" width="${px(width)}" height="${px(height)}" ` +
    `role="img" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="11" fill="#111827">` +
    `<title>${escapeHtml(title)}</title><rect width="${px(width)}" height="${px(height)}" fill="#ffffff"/>`
  );
}

function legendSvg(entries: readonly LegendEntry[]): string {
  return entries
    .map((entry, i) => {
      const y = PLOT.top + i * LEGEND_ROW + 6;
      const { colour, dash } = entry.style;
      const swatch =
        entry.marker === 'line'
          ? `<line x1="${LEGEND_X}" x2="${LEGEND_X + 18}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="2.5"${dashAttr(dash)}/>`
          : `<circle cx="${LEGEND_X + 9}" cy="${y}" r="4" fill="${colour}"/>`;
      const label = escapeHtml(truncate(entry.label, LEGEND_CHARS));
      return `<g><title>${escapeHtml(entry.label)}</title>${swatch}<text x="${LEGEND_X + 24}" y="${y}" dominant-baseline="middle">${label}</text></g>`;
    })
    .join('');
}

function inside(v: number, lo: number, hi: number): boolean {
  return Number.isFinite(v) && v >= lo - 0.5 && v <= hi + 0.5;
}
