/** results.json: the experiment's runs and summary in the CLI's snake_case contract (other tools read it). */
import type { ExperimentResults, ExperimentRunResult, MethodSummary } from './types';

function runJson(r: ExperimentRunResult): Record<string, unknown> {
  return {
    name: r.name,
    method: r.method,
    lr: r.lr,
    seed: r.seed,
    status: r.status,
    ...(r.error ? { error: r.error } : {}),
    trainable_params: r.trainableParams,
    val_loss: r.valLoss,
    test_loss: r.testLoss,
    val_tokens: r.valTokens,
    test_tokens: r.testTokens,
    ...(r.exactMatch !== undefined ? { exact_match: r.exactMatch } : {}),
    adapter: r.adapter,
    elapsed_s: r.elapsedMs / 1000,
    tokens_per_s: r.tokensPerSecond,
    batch_hash: r.batchHash,
  };
}

function summaryJson(s: MethodSummary): Record<string, unknown> {
  return {
    name: s.name,
    method: s.method,
    best_lr: s.bestLr,
    val_loss_mean: s.valLossMean,
    test_loss_mean: s.testLossMean,
    test_loss_ci95: s.testLossCi95,
    n_seeds: s.nSeeds,
    ...(s.exactMatchMean !== undefined ? { exact_match_mean: s.exactMatchMean } : {}),
    trainable_params: s.trainableParams,
    budget_ratio: s.budgetRatio,
    vs_baseline: s.vsBaseline
      ? {
          diff_mean: s.vsBaseline.diffMean,
          diff_ci95: s.vsBaseline.diffCi95,
          p_value: s.vsBaseline.pValue,
          n_pairs: s.vsBaseline.nPairs,
        }
      : null,
    verdict: s.verdict,
    ...(s.lrAtGridEdge ? { lr_at_grid_edge: s.lrAtGridEdge } : {}),
  };
}

export function resultsJson(results: Pick<ExperimentResults, 'runs'> & Partial<ExperimentResults>): {
  runs: Record<string, unknown>[];
  baseline?: string;
  summary: Record<string, unknown>[];
  best?: string[];
  reference_params?: number;
  split?: ExperimentResults['splitSizes'];
} {
  return {
    runs: results.runs.map(runJson),
    baseline: results.baseline,
    summary: (results.summary ?? []).map(summaryJson),
    best: results.best,
    reference_params: results.referenceParams,
    split: results.splitSizes,
  };
}

export { runJson };
