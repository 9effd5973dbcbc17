/**
 * Run records of finished runs for the tests of what the panels show (visible-runs, archived runs): each a done
 * stories260K run with two steps and an adapter, told apart by its final validation loss.
 */
import type { RunRecord } from '../../src/app/run-record';
import type { RunSummary } from '../../src/worker/protocol';
import { point, record } from '../app/fixtures';

/** A finished run's summary whose only varying figure is its final validation loss (what "best" compares). */
const summary = (finalValLoss: number): RunSummary => ({
  steps: 2,
  stopReason: 'done',
  message: null,
  initialValLoss: 5,
  finalValLoss,
  trainableParams: 1000,
  elapsedMs: 10,
  tokensPerSecond: 10,
  tokens: 10,
  trainExamples: 10,
  validationExamples: 2,
  peakGpuBytes: 1,
});

/** A done run `id` on stories260K, its adapter kept, ending at `loss`; `patch` overrides. */
export const trained = (id: string, loss: number, patch: Partial<RunRecord> = {}) =>
  record(id, {
    status: 'done',
    modelKey: 'stories:llama',
    modelName: 'stories260K',
    datasetName: 'tiny.txt',
    weights: 'adapter',
    points: [point(0), point(1)],
    summary: summary(loss),
    ...patch,
  });
