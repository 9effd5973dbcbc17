/** Helpers for the allocation charts: a method analysis as a layer x module grid, summaries, a colour scale. Pure. */
import type { MethodAnalysis, MethodSnapshot, ModuleAllocation } from '../engine/methods';
import { GPT2_MODULES, LLAMA_MODULES } from '../model/layout';

/** Columns in the order of the forward pass (attention, then MLP), whichever family. */
const KIND_ORDER: string[] = [...LLAMA_MODULES, ...GPT2_MODULES];

/**
 * "q_proj" -> "q", "gate_proj" -> "gate"; GPT-2's by their module names, c_attn, attn.c_proj, c_fc and mlp.c_proj
 * (its two c_proj keep their block to tell them apart).
 */
export function kindLabel(kind: string): string {
  if (kind.includes('.')) return kind.endsWith('.c_proj') ? kind : kind.slice(kind.indexOf('.') + 1);
  return kind.endsWith('_proj') ? kind.slice(0, -'_proj'.length) : kind;
}

export interface ModuleGrid {
  layers: number[];
  kinds: string[];
  cells: Map<string, ModuleAllocation>;
}

export const cellKey = (layer: number, kind: string) => `${layer}/${kind}`;

export function moduleGrid(modules: ModuleAllocation[]): ModuleGrid {
  const layers = [...new Set(modules.map((m) => m.layer))].sort((a, b) => a - b);
  const rank = (k: string) => (KIND_ORDER.includes(k) ? KIND_ORDER.indexOf(k) : KIND_ORDER.length);
  const kinds = [...new Set(modules.map((m) => m.kind))].sort((a, b) => rank(a) - rank(b));
  return { layers, kinds, cells: new Map(modules.map((m) => [cellKey(m.layer, m.kind), m])) };
}

export function rankRange(a: MethodAnalysis): [number, number] | null {
  if (a.modules.length === 0) return null;
  const ranks = a.modules.map((m) => m.rank);
  return [Math.min(...ranks), Math.max(...ranks)];
}

/** "8" when every module has rank 8, "2–16" otherwise; GraLoRA adds its k. */
export function rankSummary(a: MethodAnalysis): string {
  const range = rankRange(a);
  if (!range) return '–';
  const ks = [...new Set(a.modules.map((m) => m.k).filter((k): k is number => k !== undefined))];
  const ranks = range[0] === range[1] ? String(range[0]) : `${range[0]}–${range[1]}`;
  return ks.length ? `${ranks} (k=${ks.join('/')})` : ranks;
}

/** A sequential scale readable on the dark theme: deep blue (low) through teal and green to yellow (high). */
const STOPS: [number, number, number][] = [
  [30, 45, 84],
  [45, 94, 178],
  [38, 160, 160],
  [126, 200, 96],
  [242, 222, 92],
];

export function scaleColor(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const [r, g, b] = STOPS[i].map((v, j) => Math.round(v + f * (STOPS[i + 1][j] - v)));
  return `rgb(${r}, ${g}, ${b})`;
}

/** Dark text on the light end of the scale, light text on the dark end. */
export function textOn(t: number): string {
  return t > 0.62 ? '#0a0d14' : '#eef2ff';
}

/** Position of v in [lo, hi]; a single value sits in the middle. */
export function normalize(v: number, [lo, hi]: [number, number]): number {
  return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

/**
 * The analysis with a snapshot added (one per step: a later one for the same step replaces it), in step order. The
 * newest snapshot's ranks (AdaLoRA's, as it prunes) become the modules' ranks, as the engine's analysis keeps them.
 */
export function withSnapshot(a: MethodAnalysis, snap: MethodSnapshot): MethodAnalysis {
  const timeline = [...(a.timeline ?? []).filter((s) => s.step !== snap.step), snap].sort((x, y) => x.step - y.step);
  const ranks = timeline.at(-1)!.ranks;
  const modules = ranks?.length === a.modules.length ? a.modules.map((m, i) => ({ ...m, rank: ranks[i] })) : a.modules;
  return { ...a, timeline, modules };
}

/** What a snapshot measures, per module (in the analysis' module order). */
export type SnapshotQuantity = 'ranks' | 'magnitudeDrift';

/** The snapshots that measure `quantity`, oldest first. */
export function snapshotsOf(
  a: MethodAnalysis,
  quantity: SnapshotQuantity,
): (MethodSnapshot & Record<SnapshotQuantity, number[]>)[] {
  return (a.timeline ?? []).filter((s) => s[quantity]?.length === a.modules.length) as never;
}

/** The top singular values a PiSSA or LoRA-GA init captured in a module, summed: the module's share of W (or Ḡ). */
export function capturedSpectrum(m: ModuleAllocation): number {
  return (m.singularValues ?? []).reduce((n, s) => n + s, 0);
}
