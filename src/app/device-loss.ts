/**
 * A lost GPU device as the run list records it (the worker recovers; see src/worker/studio-device.ts): a run the
 * loss cut off drops the steps and evaluations it will report again from where it resumes, and says so on its card;
 * a full fine-tune whose weights were only on the lost device loses them, and says so too. Pure: the reducer applies
 * these to the state.
 */
import { historyBefore } from './checkpoints';
import type { RunRecord } from './run-record';

export const WEIGHTS_LOST =
  'The GPU was lost, and the trained weights of this full fine-tune were only on it: they are gone, so it can no longer be exported or used in the playground. Run it again to train them anew.';

/**
 * The record of a run queued again after a loss, from `step` (its last checkpoint, or 0): its metrics from `step` on
 * are reported again, so they go now (no step twice, none missing); `message` joins its warnings.
 */
export function resumedAfterLoss(r: RunRecord, step: number, message: string): Partial<RunRecord> {
  const restart = step === 0;
  return {
    ...historyBefore(r, step),
    status: 'queued',
    stage: 'Waiting for the new GPU device',
    message: null,
    progress: null,
    prepare: null,
    summary: null,
    finishedAt: null,
    warnings: [...r.warnings, message],
    // From step 0 the method prepares anew: what it chose before is reported again.
    ...(restart ? { analysis: null, checkpoint: null } : {}),
  };
}

/** `runs` with the full fine-tunes in `ids` stripped of their weights (only those the session held). */
export function withWeightsLost(runs: Record<string, RunRecord>, ids: string[]): Record<string, RunRecord> {
  const lost = ids.filter((id) => runs[id]?.weights === 'session');
  if (lost.length === 0) return runs;
  const next = { ...runs };
  for (const id of lost) next[id] = { ...runs[id], weights: null, warnings: [...runs[id].warnings, WEIGHTS_LOST] };
  return next;
}
