/**
 * The paragraph that states what the evidence allows. It only arranges the verdicts the statistics already worded
 * (summary.verdict) and the facts of the run (best, budgets, failures): no figure here is computed anew.
 */
import type { ExperimentResults } from '../types';
import { formatLr, formatRatio } from './format';
import { budgetOutside } from './summary-rows';

export function evidenceSentences(results: ExperimentResults): string[] {
  const others = results.summary.filter((s) => s.name !== results.baseline);
  const sentences: string[] = [];
  if (others.length === 0) {
    sentences.push('Only the baseline has results, so there is nothing to compare.');
  } else {
    sentences.push(
      `Test loss of each configuration minus the baseline's (${results.baseline}), paired by seed, each at the rate it chose on validation:`,
    );
    sentences.push(
      `${others.map((s) => (s.verdict.startsWith(s.name) ? s.verdict : `${s.name}: ${s.verdict}`)).join('; ')}.`,
    );
    sentences.push(
      results.best.length
        ? `Resolved in favour of: ${results.best.join(', ')} (the 95% interval of the difference excludes 0).`
        : "No configuration's difference from the baseline excludes 0 in its favour.",
    );
  }
  const edge = results.summary.filter((s) => s.lrAtGridEdge);
  if (edge.length) {
    sentences.push(
      `The chosen rate is at the edge of its grid for ${edge.map((s) => `${s.name} (${s.lrAtGridEdge} rate, ${formatLr(s.bestLr)})`).join(', ')}: a better rate may lie beyond it, so widen the grid before trusting that comparison.`,
    );
  }
  const offBudget = results.summary.filter((s) => budgetOutside(s.budgetRatio));
  if (offBudget.length) {
    sentences.push(
      `Outside ±5% of the reference budget: ${offBudget.map((s) => `${s.name} (${formatRatio(s.budgetRatio)})`).join(', ')}; those comparisons are not at equal trainable parameters.`,
    );
  }
  const failed = results.runs.filter((r) => r.status === 'failed').length;
  if (failed) {
    sentences.push(
      `${failed} of ${results.runs.length} runs failed; they are listed below and left out of the statistics and the figures.`,
    );
  }
  return sentences;
}
