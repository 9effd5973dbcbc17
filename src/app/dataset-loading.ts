/**
 * A dataset file being read or tokenized, as the studio keeps it: the state that progress events build (with the
 * first rows' preview a large file sends once), the line the dataset panel shows, and why runs and experiments
 * wait (the dataset in use only changes when the file is done). Pure: no store, no DOM.
 */
import type { DatasetPreview, WorkerEvent } from '../worker/protocol';
import { formatBytes } from './format';

export interface DatasetLoading {
  name: string;
  stage: string;
  /** Bytes read or tokenized so far, of `total`; absent when the worker has not said. */
  done?: number;
  total?: number;
  /** The new file's first rows, while the rest is read: not the dataset in use. */
  preview?: DatasetPreview;
}

type DatasetProgressEvent = Extract<WorkerEvent, { type: 'datasetProgress' }>;

/**
 * The loading state after a progress event. The first rows' preview is sent once, so it is kept for the same file.
 * While a new file loads, progress about the dataset in use (`inUse`, re-tokenized for a new model) is not shown:
 * the panel follows the new file.
 */
export function nextDatasetLoading(
  previous: DatasetLoading | null,
  e: DatasetProgressEvent,
  inUse: string | undefined,
): DatasetLoading {
  if (previous && previous.name !== e.name && e.name === inUse) return previous;
  const preview = e.preview ?? (previous?.name === e.name ? previous.preview : undefined);
  return {
    name: e.name,
    stage: e.stage,
    ...(e.done !== undefined ? { done: e.done } : {}),
    ...(e.total !== undefined ? { total: e.total } : {}),
    ...(preview ? { preview } : {}),
  };
}

/**
 * The loading state once `preview` became the dataset in use: done, unless the preview is of another file (the
 * current one at a new length, while a new file is still read).
 */
export function stillLoading(loading: DatasetLoading | null, preview: DatasetPreview): DatasetLoading | null {
  return loading && loading.name !== preview.name ? loading : null;
}

/** Whole percent done (never 100 before the end), or null when the amount is unknown. */
export function loadingPercent(loading: DatasetLoading): number | null {
  if (loading.done === undefined || !loading.total) return null;
  return Math.min(99, Math.floor((100 * loading.done) / loading.total));
}

/** "Tokenizing data.jsonl — 45% (90.0 MiB of 200.0 MiB)", or "Reading data.jsonl…" while the amount is unknown. */
export function describeDatasetLoading(loading: DatasetLoading): string {
  const percent = loadingPercent(loading);
  if (percent === null) return `${loading.stage} ${loading.name}…`;
  return `${loading.stage} ${loading.name} — ${percent}% (${formatBytes(loading.done!)} of ${formatBytes(loading.total!)})`;
}

/** Why a run or experiment cannot start now: it would train on the previous dataset while the new one loads. */
export function datasetLoadingProblem(loading: DatasetLoading | null): string | null {
  if (!loading) return null;
  const percent = loadingPercent(loading);
  return percent === null
    ? `Wait for ${loading.name} to finish loading.`
    : `Wait for ${loading.name} to finish loading (${loading.stage} ${percent}%).`;
}
