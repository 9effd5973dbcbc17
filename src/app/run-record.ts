/**
 * A run as the studio keeps it (RunRecord: its configuration, status, metrics and what the worker reported),
 * and the pure helpers about records. The store, its reducer, its persistence, the IndexedDB layer and the
 * checkpoint decisions all import the type from here, so none of them needs to import another for it.
 * No state here but `lastCreated` (below); no DOM, no IndexedDB, no worker.
 */
import type { AdapterFormat } from '../adapters/options';
import type { MethodAnalysis } from '../engine/methods';
import type {
  DataFit,
  EvalPoint,
  ModelCard,
  RunConfig,
  RunProgress,
  RunStatus,
  RunSummary,
  StepPoint,
} from '../worker/protocol';
import { DEFAULT_TRUNCATION, type Truncation } from '../data/truncation';
import type { WeightStorage } from '../model/weights';
import type { CheckpointInfo } from './checkpoints';

/** What a run and an experiment both record of a GPU job: where it is, when, and what model and data it ran on. */
export interface JobRecord {
  /** What it is doing now ("Compiling kernels", "Training", "Tokenizing"). */
  stage: string | null;
  /** Why it failed or stopped, or a warning. */
  message: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  modelKey: string | null;
  modelName: string | null;
  datasetName: string | null;
  /** The dataset file's size and SHA-256, and the format choice it was read with: resuming needs the same batches. */
  datasetDigest: string | null;
  datasetFormat: string | null;
}

export interface RunRecord extends JobRecord {
  config: RunConfig;
  status: RunStatus;
  points: StepPoint[];
  evals: EvalPoint[];
  progress: RunProgress | null;
  /** The method's preparation phase as last reported (GoRA's gradients, GeLoRA's hidden states, compiling). */
  prepare: RunPrepare | null;
  /** Ranks, scales and importance per module, GeLoRA's dimensions: what the method chose before step 0. */
  analysis: MethodAnalysis | null;
  summary: RunSummary | null;
  /** 'adapter': adapter weights, kept in IndexedDB; 'session': a full fine-tune on the GPU until reload. */
  weights: 'adapter' | 'session' | null;
  /** The PEFT format of the adapter: a 'gralora' one can also be exported as its equivalent plain LoRA. */
  adapterFormat: AdapterFormat | null;
  /** The latest checkpoint of an unfinished run (its state is in IndexedDB only), or null. */
  checkpoint: CheckpointInfo | null;
  /** Its examples at its sequence length (truncated, dropped), as the worker tokenized them before step 0. */
  data: DataFit | null;
  /** What to know about the run that did not stop it (a split too small, steps without supervised tokens). */
  warnings: string[];
  /** Draft fields whose text is not a valid number: Start waits until they are (not saved). */
  invalidFields: string[];
  /** The user's own words about the run (the card's notes). */
  notes: string;
  /** The user's labels, in the order given, without duplicates (run-tags.ts); the list filters on them. */
  tags: string[];
  /** Hidden from the run list (shown under its "Archived" toggle) until restored; nothing else changes. */
  archived: boolean;
  /** How the model's base matrices were kept on the GPU when the run started (null: a draft, or saved before). */
  weightStorage: WeightStorage | null;
}

export interface RunPrepare {
  phase: string;
  done: number;
  total: number;
}

/** Statuses of a run the worker has (waiting for the GPU, preparing, training). */
export const ACTIVE: readonly RunStatus[] = ['queued', 'preparing', 'training'];
/** Statuses the worker ends a run with. */
export const FINISHED: readonly RunStatus[] = ['done', 'cancelled', 'failed'];

export const isActive = (r: RunRecord) => ACTIVE.includes(r.status);

/**
 * The latest creation time handed out (module state: one clock for the page). Strictly increasing creation
 * times keep the run order (and colors) stable across reloads.
 */
let lastCreated = 0;

/** A draft of `config`, created now (later than every record created before it). */
export function newRecord(config: RunConfig): RunRecord {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return {
    config,
    status: 'draft',
    stage: null,
    message: null,
    createdAt: lastCreated,
    startedAt: null,
    finishedAt: null,
    modelKey: null,
    modelName: null,
    datasetName: null,
    datasetDigest: null,
    datasetFormat: null,
    points: [],
    evals: [],
    progress: null,
    prepare: null,
    analysis: null,
    summary: null,
    weights: null,
    adapterFormat: null,
    checkpoint: null,
    data: null,
    warnings: [],
    invalidFields: [],
    notes: '',
    tags: [],
    archived: false,
    weightStorage: null,
  };
}

export type RunPatch = Partial<RunRecord> | ((r: RunRecord) => Partial<RunRecord>);

/** `records` with `patch` merged into record `id`; null when it is gone. */
export function patchedRecord<T extends object>(
  records: Record<string, T>,
  id: string,
  patch: Partial<T> | ((r: T) => Partial<T>),
): Record<string, T> | null {
  const r = records[id];
  if (!r) return null;
  return { ...records, [id]: { ...r, ...(typeof patch === 'function' ? patch(r) : patch) } };
}

/** The state update that merges `patch` into run `id`'s record: none (an empty update) when the run is gone. */
export function patchedRuns(
  runs: Record<string, RunRecord>,
  id: string,
  patch: RunPatch,
): { runs?: Record<string, RunRecord> } {
  const next = patchedRecord(runs, id, patch);
  return next ? { runs: next } : {};
}

/** Records saved by earlier releases lack the fields added since. */
export function upgradeRecord(r: RunRecord): RunRecord {
  return {
    ...r,
    prepare: null,
    analysis: r.analysis ?? null,
    adapterFormat: r.adapterFormat ?? (r.weights === 'adapter' ? 'lora' : null),
    checkpoint: r.checkpoint ?? null,
    data: r.data ?? null,
    datasetDigest: r.datasetDigest ?? null,
    datasetFormat: r.datasetFormat ?? null,
    warnings: r.warnings ?? [],
    invalidFields: [],
    notes: r.notes ?? '',
    tags: r.tags ?? [],
    archived: r.archived ?? false,
    weightStorage: r.weightStorage ?? null,
  };
}

/** Live progress is not worth a write: it is rebuilt by the next run. */
export function storedRecord(r: RunRecord): RunRecord {
  return { ...r, progress: null, prepare: null, invalidFields: [] };
}

/** Why a draft cannot start while some of its fields do not hold a number (null when all do). */
export function invalidFieldsProblem(fields: string[]): string | null {
  if (fields.length === 0) return null;
  const names = fields.map((f) => `"${f}"`).join(', ');
  return `${names} ${fields.length > 1 ? 'are not valid numbers' : 'is not a valid number'}: correct ${fields.length > 1 ? 'them' : 'it'} to start this run.`;
}

/** The run list as the store keeps it: records by id, in display order. */
export interface RunList {
  runs: Record<string, RunRecord>;
  order: string[];
}

/** The sequence length and truncation of the run being configured: the last draft, else the last run. */
export function previewFitOf(s: RunList): { seq: number; truncation: Truncation } | null {
  const ids = [...s.order].reverse();
  const id = ids.find((x) => s.runs[x].status === 'draft') ?? ids[0];
  const c = id ? s.runs[id].config : null;
  if (!c || !Number.isInteger(c.seq) || c.seq < 2) return null;
  return { seq: c.seq, truncation: c.truncation ?? DEFAULT_TRUNCATION };
}

/** Runs that can generate with the loaded model (their adapter fits it, or a full fine-tune still on the GPU). */
export function generationRuns(s: RunList & { model: { card: ModelCard | null } }): string[] {
  const key = s.model.card?.key;
  return s.order.filter((id) => {
    const r = s.runs[id];
    return r.weights !== null && r.modelKey === key;
  });
}
