/**
 * A run's settings beyond its method: every default in one place. The CLI's flags (src/cli/main.ts) and the
 * studio's form (src/worker/studio-runs.ts, trainOptionsOf) each parse their input once into TrainRunOptions from
 * these; the method's own options and defaults come from the method registry (src/adapters/registry.ts).
 */
import type { PromptJoin } from '../data/prompt-join';
import { DEFAULT_TRUNCATION, type Truncation } from '../data/truncation';
import type { Recompute } from '../model/recompute';

export const RUN_DEFAULTS = {
  rank: 8,
  alpha: 8,
  seed: 0,
  steps: 100,
  batch: 4,
  /** Micro-batches per optimizer step (the effective batch is batch x gradAccum). */
  gradAccum: 1,
  /** Tokens per row (capped at the model's maximum when not given). */
  seq: 128,
  lr: 1e-3,
  lrRatioB: 1,
  warmupSteps: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  minLrRatio: 0,
  validationFraction: 0.1,
  evalEvery: 0,
  maxValidationBatches: 16,
  recompute: 'none' as Recompute,
  truncation: DEFAULT_TRUNCATION as Truncation,
  promptJoin: 'none' as PromptJoin,
};

/** Tokens per row when none is given: 128, or the model's maximum if smaller. */
export function defaultSeqLen(maxPositions: number | undefined): number {
  return Math.min(RUN_DEFAULTS.seq, maxPositions ?? RUN_DEFAULTS.seq);
}

/**
 * What the studio fixes instead of asking: clipping at 1 (the non-finite advice assumes it), no weight decay, and a
 * cosine floor at 10% of the peak so late steps still learn on the short runs people start there.
 */
export const STUDIO_FIXED = { weightDecay: 0, maxGradNorm: 1, minLrRatio: 0.1 } as const;

/** The studio checkpoints about every 10% of a run (at least 5 steps apart). */
export function studioCheckpointEvery(steps: number): number {
  return Math.max(5, Math.ceil(steps / 10));
}
