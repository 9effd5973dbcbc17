/** Run configuration checks shared by the form (main thread) and the worker; pure. */
import type { ModelCard, RunConfig } from './protocol';

/** The checks trainRun would make, phrased for the form instead of the CLI. */
export function configProblem(c: RunConfig, card: ModelCard): string | null {
  const int = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!int(c.steps, 1)) return 'Steps must be a whole number of at least 1.';
  if (!int(c.batch, 1)) return 'Batch must be a whole number of at least 1.';
  if (!int(c.seq, 2)) return 'Sequence length must be a whole number of at least 2.';
  if (c.seq > card.maxPositions) return `Sequence length ${c.seq} is longer than this model's context (${card.maxPositions} tokens).`;
  if (!(c.lr > 0)) return 'The learning rate must be positive.';
  if (!int(c.warmupSteps, 0)) return 'Warmup must be a whole number of steps (0 for none).';
  if (!int(c.valExamples, 0)) return 'Validation examples must be a whole number (0 for none).';
  if (!int(c.evalEvery, 0)) return 'Evaluate-every must be a whole number of steps (0 = start and end only).';
  if (c.method !== 'full') {
    if (!int(c.rank, 1)) return 'Rank must be a whole number of at least 1.';
    if (!(c.alpha > 0)) return 'Alpha must be positive.';
  }
  return null;
}
