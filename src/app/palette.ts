/**
 * Run colours, by the run's position in the run list (so a run keeps its colour while the runs before it stay):
 * a fixed palette of distinct colours readable on the dark theme, then hues a golden angle apart, so any number
 * of runs gets distinct colours. Pure.
 */

/** The first nine are the studio's original colours: runs that had them keep them. */
export const RUN_PALETTE: readonly string[] = [
  '#7aa2ff',
  '#ff9e64',
  '#5eead4',
  '#f472b6',
  '#facc15',
  '#a78bfa',
  '#4ade80',
  '#fb7185',
  '#38bdf8',
  '#e879f9',
  '#a3e635',
  '#ef4444',
  '#6366f1',
  '#d4a373',
  '#e5e7eb',
  '#10b981',
  '#f9a8d4',
  '#b45309',
  '#ca8a04',
  '#94a3b8',
];

/** 360° · (1 − 1/φ): successive hues land in the largest gap left by the ones before (never repeating). */
export const GOLDEN_ANGLE = 137.50776405003785;
const START_HUE = 20;
/** Lightness cycles too, so that two generated hues that end up close still differ; all readable on the dark theme. */
const LIGHTNESS = [66, 56, 76];

/** The colour of the run at `index` in the run list (a negative index, a run not found, gets the first). */
export function runColor(index: number): string {
  const i = Number.isInteger(index) && index > 0 ? index : 0;
  if (i < RUN_PALETTE.length) return RUN_PALETTE[i];
  const k = i - RUN_PALETTE.length;
  const hue = (START_HUE + k * GOLDEN_ANGLE) % 360;
  return `hsl(${hue.toFixed(1)}, 72%, ${LIGHTNESS[k % LIGHTNESS.length]}%)`;
}
