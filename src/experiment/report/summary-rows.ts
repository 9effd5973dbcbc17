/**
 * The summary table's content as plain text cells, shared by the Markdown and HTML renderers (each escapes and
 * decorates: the "best" badge, the budget warning).
 */
import type { ExperimentResults, MethodSummary, PairedDifference } from '../types';
import {
  formatLoss,
  formatLr,
  formatParams,
  formatPercent,
  formatPValue,
  formatRatio,
  formatSigned,
  halfWidth,
} from './format';

/** The budget is matched when trainable parameters are within ±5% of the reference LoRA's. */
export const BUDGET_TOLERANCE: [number, number] = [0.95, 1.05];
export const BUDGET_WARNING = '⚠ outside ±5%';

export interface SummaryRow {
  name: string;
  method: string;
  params: string;
  budget: string;
  budgetOutside: boolean;
  bestLr: string;
  valLoss: string;
  /** "1.2345 ± 0.0123" (the 95% interval's half-width), the mean alone with a single seed. */
  testLoss: string;
  seeds: string;
  /** Null when the summary has no exact-match figure. */
  exactMatch: string | null;
  vsBaseline: string;
  verdict: string;
  best: boolean;
  isBaseline: boolean;
}

export const SUMMARY_HEADERS = {
  name: 'Configuration',
  method: 'Method',
  params: 'Trainable params',
  budget: 'Budget',
  bestLr: 'Chosen lr',
  valLoss: 'Val loss',
  testLoss: 'Test loss ± 95% CI',
  seeds: 'Seeds',
  exactMatch: 'Exact match',
  vsBaseline: 'vs baseline (Δ test loss, 95% CI, p)',
  verdict: 'Verdict',
} as const;

export function budgetOutside(ratio: number): boolean {
  return !(ratio >= BUDGET_TOLERANCE[0] && ratio <= BUDGET_TOLERANCE[1]);
}

export function testLossText(summary: MethodSummary): string {
  const half = halfWidth(summary.testLossCi95);
  const mean = formatLoss(summary.testLossMean);
  return summary.nSeeds >= 2 && half !== null ? `${mean} ± ${formatLoss(half)}` : mean;
}

export function differenceText(diff: PairedDifference): string {
  // One pair has no spread: an interval [d, d] would read as certainty.
  if (diff.nPairs < 2) return `${formatSigned(diff.diffMean)} (${diff.nPairs} pair, no interval)`;
  const [lo, hi] = diff.diffCi95;
  return `${formatSigned(diff.diffMean)} [${formatSigned(lo)}, ${formatSigned(hi)}], ${formatPValue(diff.pValue)}`;
}

export function summaryRows(results: ExperimentResults): SummaryRow[] {
  const best = new Set(results.best);
  return results.summary.map((s) => {
    const isBaseline = s.name === results.baseline;
    return {
      name: s.name,
      method: s.method,
      params: formatParams(s.trainableParams),
      budget: formatRatio(s.budgetRatio),
      budgetOutside: budgetOutside(s.budgetRatio),
      bestLr: formatLr(s.bestLr),
      valLoss: formatLoss(s.valLossMean),
      testLoss: testLossText(s),
      seeds: String(s.nSeeds),
      exactMatch: s.exactMatchMean === undefined ? null : formatPercent(s.exactMatchMean),
      vsBaseline: s.vsBaseline ? differenceText(s.vsBaseline) : isBaseline ? 'baseline' : '–',
      verdict: s.verdict,
      best: best.has(s.name),
      isBaseline,
    };
  });
}

/** The table's column titles in order (the exact-match column only when some configuration has the figure). */
export function summaryHeaders(withExactMatch: boolean): string[] {
  const h = SUMMARY_HEADERS;
  return [
    h.name,
    h.method,
    h.params,
    h.budget,
    h.bestLr,
    h.valLoss,
    h.testLoss,
    h.seeds,
    ...(withExactMatch ? [h.exactMatch] : []),
    h.vsBaseline,
    h.verdict,
  ];
}

/** Whether the exact-match column is shown (some configuration has the figure). */
export function hasExactMatch(rows: readonly SummaryRow[]): boolean {
  return rows.some((r) => r.exactMatch !== null);
}
