/**
 * The rank each adapted module got, for each configuration's representative run (chosen rate, lowest seed): a
 * layer x module-kind grid per configuration, coloured on one scale shared by all grids so they compare at a glance.
 */
import { GPT2_MODULES, LLAMA_MODULES } from '../../model/layout';
import type { ExperimentResults } from '../types';
import { px, svgOpen, truncate } from './chart-frame';
import { escapeHtml } from './escape';
import { formatLr } from './format';
import { representativeRun } from './selection';

const TITLE = 'Rank per module (chosen run of each configuration)';
const MIN_WIDTH = 760;
const GAP = 24;
const CELL_H = 16;
const ROW_LABEL_W = 30;
const PANEL_TITLE_H = 32;
const HEADER_H = 16;
const TOP = 36;
const SCALE_H = 44;

/** Columns in forward-pass order (attention, then MLP), whichever family. */
const KIND_ORDER: string[] = [...LLAMA_MODULES, ...GPT2_MODULES];

export interface ModuleCell {
  layer: number;
  /** The path after the layer index: "self_attn.q_proj", "attn.c_proj". */
  rest: string;
}

/** Where a module path sits in the grid: `...layers.N.<rest>` (Llama family) or `...h.N.<rest>` (GPT-2). */
export function moduleCell(path: string): ModuleCell | null {
  const match = /(?:^|\.)(?:layers|h)\.(\d+)\.(.+)$/.exec(path);
  return match ? { layer: Number(match[1]), rest: match[2] } : null;
}

/**
 * Column names: the last path segment (q_proj, c_attn), except where two modules share it (GPT-2's attn.c_proj
 * and mlp.c_proj), which keep their block.
 */
function kindNames(rests: readonly string[]): Map<string, string> {
  const last = (rest: string) => rest.slice(rest.lastIndexOf('.') + 1);
  const distinct = [...new Set(rests)];
  return new Map(
    distinct.map((rest) => [rest, distinct.filter((r) => last(r) === last(rest)).length > 1 ? rest : last(rest)]),
  );
}

function kindOrder(kind: string, rest: string): number {
  const i = KIND_ORDER.findIndex((k) => k === kind || k === rest);
  return i < 0 ? KIND_ORDER.length : i;
}

/** A sequential scale (viridis stops): dark purple for the lowest rank, yellow for the highest. */
const STOPS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function rankColour(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0.5)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = STOPS[i].map((v, j) => Math.round(v + f * (STOPS[i + 1][j] - v)));
  return `rgb(${r},${g},${b})`;
}

interface Panel {
  /** The configuration's name (first line) and what run the grid shows (second line). */
  title: string;
  subtitle: string;
  width: number;
  height: number;
  /** Markup relative to the panel's top-left corner. */
  body: string;
}

interface Grid {
  layers: number[];
  kinds: { rest: string; name: string }[];
  ranks: Map<string, number>;
  /** Modules outside any layer (not drawn, counted in the panel's title). */
  outside: number;
}

const key = (layer: number, rest: string) => `${layer}/${rest}`;

function gridOf(ranks: Record<string, number>, names: Map<string, string>): Grid {
  const cells = Object.entries(ranks)
    .filter(([, rank]) => Number.isFinite(rank))
    .map(([path, rank]) => ({ cell: moduleCell(path), rank }));
  const placed = cells.filter((c): c is { cell: ModuleCell; rank: number } => c.cell !== null);
  const layers = [...new Set(placed.map((c) => c.cell.layer))].sort((a, b) => a - b);
  const rests = [...new Set(placed.map((c) => c.cell.rest))];
  const kinds = rests
    .map((rest) => ({ rest, name: names.get(rest) ?? rest }))
    .sort((a, b) => kindOrder(a.name, a.rest) - kindOrder(b.name, b.rest) || a.name.localeCompare(b.name));
  return {
    layers,
    kinds,
    ranks: new Map(placed.map((c) => [key(c.cell.layer, c.cell.rest), c.rank])),
    outside: cells.length - placed.length,
  };
}

function panelTitle(title: string, subtitle: string, width: number): string {
  const chars = Math.floor(width / 6.5);
  return (
    `<text x="0" y="12" font-weight="600">${escapeHtml(truncate(title, chars))}</text>` +
    `<text x="0" y="25" font-size="10" fill="#6b7280">${escapeHtml(truncate(subtitle, Math.floor(width / 5.5)))}</text>`
  );
}

function panelOf(title: string, subtitle: string, grid: Grid, range: [number, number]): Panel {
  const labelChars = Math.max(4, ...grid.kinds.map((k) => shortKind(k.name).length));
  const cellW = Math.max(30, labelChars * 6 + 6);
  const width = Math.max(ROW_LABEL_W + grid.kinds.length * cellW, 160);
  const height = PANEL_TITLE_H + HEADER_H + grid.layers.length * CELL_H;
  const [lo, hi] = range;
  const t = (rank: number) => (hi > lo ? (rank - lo) / (hi - lo) : 0.5);
  const parts = [
    panelTitle(title, subtitle, width),
    ...grid.kinds.map(
      (k, c) =>
        `<text x="${px(ROW_LABEL_W + (c + 0.5) * cellW)}" y="${PANEL_TITLE_H + 11}" text-anchor="middle" font-size="10">${escapeHtml(shortKind(k.name))}</text>`,
    ),
  ];
  grid.layers.forEach((layer, r) => {
    const y = PANEL_TITLE_H + HEADER_H + r * CELL_H;
    parts.push(
      `<text x="${ROW_LABEL_W - 4}" y="${y + 11.5}" text-anchor="end" font-size="10">L${layer}</text>`,
      ...grid.kinds.map((k, c) => {
        const rank = grid.ranks.get(key(layer, k.rest));
        const x = ROW_LABEL_W + c * cellW;
        if (rank === undefined) {
          return `<rect x="${x}" y="${y}" width="${cellW - 1}" height="${CELL_H - 1}" fill="#f3f4f6"/>`;
        }
        const ink = t(rank) > 0.6 ? '#111827' : '#ffffff';
        return (
          `<rect x="${x}" y="${y}" width="${cellW - 1}" height="${CELL_H - 1}" fill="${rankColour(t(rank))}"/>` +
          `<text x="${px(x + cellW / 2)}" y="${y + 11.5}" text-anchor="middle" font-size="10" fill="${ink}">${rank}</text>`
        );
      }),
    );
  });
  return { title, subtitle, width, height, body: parts.join('') };
}

function messagePanel(title: string, message: string): Panel {
  return { title, subtitle: message, width: 220, height: PANEL_TITLE_H, body: panelTitle(title, message, 220) };
}

/** "q_proj" -> "q", "gate_proj" -> "gate"; GPT-2's names stay whole. */
function shortKind(name: string): string {
  return name.endsWith('_proj') ? name.slice(0, -'_proj'.length) : name;
}

export function rankHeatmapSvg(results: ExperimentResults): string {
  const chosen = results.summary.map((summary) => ({ summary, run: representativeRun(results, summary) }));
  const allRanks = chosen.flatMap(({ run }) => Object.values(run?.ranks ?? {}).filter(Number.isFinite));
  const range: [number, number] = allRanks.length ? [Math.min(...allRanks), Math.max(...allRanks)] : [0, 0];
  const names = kindNames(
    chosen.flatMap(({ run }) => Object.keys(run?.ranks ?? {}).flatMap((p) => moduleCell(p)?.rest ?? [])),
  );

  const panels = chosen.map(({ summary, run }) => {
    if (!run) return messagePanel(summary.name, 'no finished run at the chosen rate');
    const grid = gridOf(run.ranks, names);
    if (grid.layers.length === 0) return messagePanel(summary.name, 'no per-layer adapter ranks');
    const outside = grid.outside ? `, ${grid.outside} module(s) outside the layers not shown` : '';
    return panelOf(summary.name, `lr ${formatLr(run.lr)}, seed ${run.seed}${outside}`, grid, range);
  });

  // Panels flow left to right in rows, each row as tall as its tallest panel.
  const slotW = Math.max(0, ...panels.map((p) => p.width)) + GAP;
  const perRow = Math.max(1, Math.floor((MIN_WIDTH - 16 + GAP) / slotW));
  const width = Math.max(MIN_WIDTH, 16 + perRow * slotW);
  const placed: string[] = [];
  let y = TOP;
  for (let start = 0; start < panels.length; start += perRow) {
    const row = panels.slice(start, start + perRow);
    row.forEach((panel, i) => {
      placed.push(
        `<g transform="translate(${16 + i * slotW} ${y})"><title>${escapeHtml(`${panel.title}: ${panel.subtitle}`)}</title>${panel.body}</g>`,
      );
    });
    y += Math.max(...row.map((p) => p.height)) + GAP;
  }
  const height = y + SCALE_H;
  return [
    svgOpen(width, height, TITLE),
    `<text x="16" y="22" font-size="14" font-weight="600">${escapeHtml(TITLE)}</text>`,
    ...placed,
    allRanks.length ? colourKey(y, range) : '',
    '</svg>',
  ].join('');
}

/** The scale's key: "rank", the lowest rank, ten swatches, the highest rank. */
function colourKey(y: number, [lo, hi]: [number, number]): string {
  const swatchX = 90;
  const swatches = Array.from({ length: 10 }, (_, i) => {
    const t = hi > lo ? i / 9 : 0.5;
    return `<rect x="${swatchX + i * 18}" y="${y}" width="18" height="12" fill="${rankColour(t)}"/>`;
  });
  return (
    `<text x="16" y="${y + 10}" font-size="10">rank</text>` +
    `<text x="${swatchX - 4}" y="${y + 10}" font-size="10" text-anchor="end">${lo}</text>` +
    swatches.join('') +
    `<text x="${swatchX + 180 + 4}" y="${y + 10}" font-size="10">${hi}</text>`
  );
}
