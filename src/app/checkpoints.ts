/**
 * Resuming a run from its last checkpoint, as pure decisions: which checkpoints are worth storing, whether
 * a stored one is intact, what must be loaded before a run can resume, and which history the resumed steps
 * replace. IndexedDB and the worker are the store's business.
 */
import {
  CHECKPOINT_LIMIT_BYTES,
  type DatasetPreview,
  type ModelCard,
  type RunCheckpointData,
} from '../worker/protocol';
import type { RunRecord } from './run-record';

export { CHECKPOINT_LIMIT_BYTES };

/** What the UI keeps of a run's latest checkpoint; the state itself lives in IndexedDB only (it can be MBs). */
export interface CheckpointInfo {
  /** Steps completed: the resumed run continues at this step. */
  step: number;
  /** Weights and optimizer moments, in bytes. */
  bytes: number;
  /** False when the state exceeded CHECKPOINT_LIMIT_BYTES and was not stored. */
  kept: boolean;
}

export function checkpointBytes(c: RunCheckpointData): number {
  return c.state.reduce((n, t) => n + t.param.byteLength + t.m.byteLength + t.v.byteLength, 0);
}

export function checkpointInfo(c: RunCheckpointData): CheckpointInfo {
  const bytes = checkpointBytes(c);
  return { step: c.step, bytes, kept: bytes <= CHECKPOINT_LIMIT_BYTES };
}

/** Cut off by a reload (interrupted) or a lost GPU (failed): the runs a stored checkpoint can continue. */
export function canUseCheckpoint(run: RunRecord): boolean {
  return run.status === 'interrupted' || run.status === 'failed';
}

/** The step a run can resume from, or null when it cannot. */
export function resumeStep(run: RunRecord): number | null {
  return canUseCheckpoint(run) && run.checkpoint?.kept ? run.checkpoint.step : null;
}

/** The format and column mapping a dataset was read with, as one comparable string. */
export function formatChoice(p: DatasetPreview): string {
  return JSON.stringify({ format: p.format, columns: p.columns, promptJoin: p.override.promptJoin ?? 'none' });
}

/** Why the run cannot resume with what is loaded now (it must continue on the same model and data), or null. */
export function resumeProblem(run: RunRecord, card: ModelCard | null, dataset: DatasetPreview | null): string | null {
  const model = run.modelName ?? 'its model';
  const data = run.datasetName ?? 'its dataset';
  if (!card) return `Load ${model} to resume this run.`;
  if (card.key !== run.modelKey) return `This run trained on ${model}; load it to resume (${card.name} is loaded).`;
  if (!dataset) return `Load ${data} to resume this run.`;
  if (run.datasetName !== null && dataset.name !== run.datasetName)
    return `This run trained on ${data}; load it to resume (${dataset.name} is loaded).`;
  // The same name is not the same data: the batches after the checkpoint must be the ones the run would have seen.
  if (run.datasetDigest != null && dataset.digest !== run.datasetDigest) {
    return `The loaded ${dataset.name} is not the file this run trained on (its size or contents differ); load the original file to resume.`;
  }
  if (run.datasetFormat != null && formatChoice(dataset) !== run.datasetFormat) {
    return `This run read ${data} with another format or column mapping; choose the same one in the Dataset panel to resume.`;
  }
  return null;
}

/** A stored checkpoint checked field by field (storage can be cleared or damaged), or null when unusable. */
export function readCheckpoint(value: unknown, steps: number): RunCheckpointData | null {
  if (typeof value !== 'object' || value === null) return null;
  const c = value as Partial<RunCheckpointData>;
  const count = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (!Number.isInteger(c.step) || c.step! <= 0 || c.step! >= steps || !count(c.tokens) || !count(c.elapsedMs))
    return null;
  if (!Array.isArray(c.state) || c.state.length === 0) return null;
  const intact = c.state.every(
    (t) =>
      typeof t?.name === 'string' &&
      t.param instanceof Float32Array &&
      t.m instanceof Float32Array &&
      t.v instanceof Float32Array &&
      t.m.length === t.param.length &&
      t.v.length === t.param.length,
  );
  if (!intact) return null;
  return { step: c.step!, tokens: c.tokens!, elapsedMs: c.elapsedMs!, state: c.state };
}

/** The history before a checkpoint: the resumed run reports every step (and evaluation) from it onward again. */
export function historyBefore(run: RunRecord, step: number): Pick<RunRecord, 'points' | 'evals'> {
  return { points: run.points.filter((p) => p.step < step), evals: run.evals.filter((e) => e.step < step) };
}
