/**
 * An experiment as the studio keeps it (ExperimentRecord: its definition, status, the runs finished so far and
 * what the worker reported), and the pure decisions about records: the ETA, what a resume keeps, what must be
 * loaded before it can continue, the live summary, and what is stored. No DOM, no IndexedDB, no worker.
 */
import type { OptionValues } from '../adapters/options';
import { resolveMethodOptions } from '../adapters/registry';
import { planRuns, runKey } from '../experiment/plan';
import { experimentToJson } from '../experiment/schema';
import { summarize } from '../experiment/summary';
import type { Experiment, ExperimentMethod, ExperimentResults, ExperimentRunResult } from '../experiment/types';
import {
  experimentAdapterId,
  type DatasetPreview,
  type ExperimentJson,
  type ExperimentPlanInfo,
  type ExperimentRunRef,
  type ExperimentStepInfo,
  type ModelCard,
} from '../worker/protocol';
import { formatChoice } from './checkpoints';
import { patchedRecord, type JobRecord } from './run-record';

export type ExperimentStatus =
  | 'draft'
  | 'queued'
  | 'running'
  | 'done'
  /** Stopped by the user (or another model loading); the finished runs are kept. */
  | 'stopped'
  | 'failed'
  /** The page was closed or reloaded while it was queued or running. */
  | 'interrupted';

/** How the form sets the learning rates: one grid for every configuration, or each its own. */
export type LrMode = 'shared' | 'per-config';

/** The run training now, as the worker last reported it. */
export interface CurrentExperimentRun {
  run: ExperimentRunRef;
  index: number;
  total: number;
  /** Page clock (Date.now()) when it started: the ETA subtracts what it has already taken. */
  startedAt: number;
  step: ExperimentStepInfo | null;
}

/** Its job fields (stage, times, the model and data it ran on: resuming needs the same) are JobRecord's. */
export interface ExperimentRecord extends JobRecord {
  id: string;
  /** The definition as the form edits it (parsed: every default filled in; ranks to match marked rankMatched). */
  experiment: Experiment;
  lrMode: LrMode;
  status: ExperimentStatus;
  /** The grid, split sizes and budget table, as the worker planned them (ranks matched). */
  plan: ExperimentPlanInfo | null;
  /** Finished runs (done or failed), in the order they finished. */
  results: ExperimentRunResult[];
  /** Wall time of each run finished while the page watched (evaluations and export included): the ETA's basis. */
  runMs: number[];
  /** Keys of finished runs whose adapter is kept (IndexedDB, and the worker for export). */
  adapters: string[];
  /** The final results, once every run has finished. */
  final: ExperimentResults | null;
  current: CurrentExperimentRun | null;
  /** Form fields whose text is not a valid value: Start waits until they are (not saved). */
  invalidFields: string[];
}

export const ACTIVE_EXPERIMENT: readonly ExperimentStatus[] = ['queued', 'running'];
export const isExperimentActive = (r: ExperimentRecord) => ACTIVE_EXPERIMENT.includes(r.status);

/** Statuses a started experiment can continue from, keeping its finished runs. */
export const RESUMABLE: readonly ExperimentStatus[] = ['interrupted', 'stopped', 'failed'];

/** Strictly increasing creation times keep the list's order stable across reloads (as run-record's). */
let lastCreated = 0;

export function newExperimentRecord(id: string, experiment: Experiment, lrMode: LrMode): ExperimentRecord {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return {
    id,
    experiment,
    lrMode,
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
    plan: null,
    results: [],
    runMs: [],
    adapters: [],
    final: null,
    current: null,
    invalidFields: [],
  };
}

export type ExperimentPatch = Partial<ExperimentRecord> | ((r: ExperimentRecord) => Partial<ExperimentRecord>);

/** The state update that merges `patch` into experiment `id`: none when it is gone. */
export function patchedExperiments(
  experiments: Record<string, ExperimentRecord>,
  id: string,
  patch: ExperimentPatch,
): { experiments?: Record<string, ExperimentRecord> } {
  const next = patchedRecord(experiments, id, patch);
  return next ? { experiments: next } : {};
}

/** The key of a finished run (as planRuns keys it). */
export const resultKey = (r: Pick<ExperimentRunResult, 'name' | 'lr' | 'seed'>) => runKey(r.name, r.lr, r.seed);

export { experimentAdapterId };

/**
 * The definition as the worker and the CLI read it. experimentToJson writes every rank; a configuration whose rank
 * is to be matched leaves it out, so parsing the file matches it again (to the loaded model) instead of fixing the
 * placeholder rank. Options of other methods a configuration remembers from the form (switching back restores
 * them) are left out: they do not apply.
 */
export function definitionJson(e: Experiment): ExperimentJson {
  const json = experimentToJson({ ...e, methods: e.methods.map(applicableOptions) });
  const methods = json.methods as Record<string, unknown>[];
  json.methods = methods.map((m, i) => {
    if (!e.methods[i]?.rankMatched) return m;
    const { rank: _matched, ...rest } = m;
    return rest;
  });
  return json;
}

/** The configuration with only the options that apply to its method (and structure). */
function applicableOptions(m: ExperimentMethod): ExperimentMethod {
  const given = m.options as OptionValues;
  const { applicable } = resolveMethodOptions(m.method, m.rank, given);
  const options: Record<string, unknown> = {};
  for (const o of applicable) if (given[o.key] !== undefined) options[o.key] = given[o.key];
  return { ...m, options: options as ExperimentMethod['options'] };
}

/** Planned runs: what the worker planned, else the definition's grid. */
export function plannedRuns(r: ExperimentRecord): ExperimentRunRef[] {
  if (r.plan) return r.plan.runs;
  try {
    return planRuns(r.experiment).map((p) => ({
      key: p.key,
      name: p.config.name,
      method: p.config.method,
      lr: p.lr,
      seed: p.seed,
    }));
  } catch {
    return [];
  }
}

/** Runs per configuration and in all: configurations x rates x seeds (each configuration's own grids). */
export function runCount(e: Experiment): number {
  return e.methods.reduce((n, m) => n + (m.lrs ?? e.lrs).length * (m.seeds ?? e.seeds).length, 0);
}

/**
 * Milliseconds left for the whole experiment, evaluations and export included: the mean wall time of the runs
 * finished while the page watched (else the training time the results record) times the runs left, less what the
 * current run has taken. Before any run has finished, the current run's pace extrapolated; null when nothing is known.
 */
export function experimentEta(r: ExperimentRecord, now: number): number | null {
  const total = plannedRuns(r).length;
  if (total === 0) return null;
  const finished = new Set(r.results.map(resultKey)).size;
  const remaining = total - finished;
  if (remaining <= 0) return 0;
  const elapsed = r.current ? Math.max(0, now - r.current.startedAt) : 0;
  const timed = r.runMs.length ? r.runMs : r.results.filter((x) => x.status === 'done').map((x) => x.elapsedMs);
  let perRun: number | null = timed.length ? timed.reduce((a, b) => a + b, 0) / timed.length : null;
  if (perRun === null) {
    const s = r.current?.step;
    // Training pace so far, ignoring the evaluations still to come: a floor that firms up after the first run.
    if (!s || s.phase !== null || s.step <= 0 || s.steps <= 0) return null;
    perRun = elapsed / (s.step / s.steps);
  }
  const current = r.current ? Math.max(0, perRun - elapsed) : perRun;
  return (remaining - 1) * perRun + current;
}

/** The finished runs a resume keeps (failed runs get another try), one per planned run. */
export function resumeDone(r: ExperimentRecord): ExperimentRunResult[] {
  const planned = new Set(plannedRuns(r).map((p) => p.key));
  const byKey = new Map<string, ExperimentRunResult>();
  for (const x of r.results) if (x.status === 'done' && planned.has(resultKey(x))) byKey.set(resultKey(x), x);
  return [...byKey.values()];
}

export function canResumeExperiment(r: ExperimentRecord): boolean {
  return RESUMABLE.includes(r.status) && r.startedAt !== null;
}

/** Why the experiment cannot continue with what is loaded now (the same model and data), or null. */
export function experimentResumeProblem(
  r: ExperimentRecord,
  card: ModelCard | null,
  dataset: DatasetPreview | null,
): string | null {
  const model = r.modelName ?? 'its model';
  const data = r.datasetName ?? 'its dataset';
  if (!card) return `Load ${model} to resume this experiment.`;
  if (r.modelKey !== null && card.key !== r.modelKey)
    return `This experiment ran on ${model}; load it to resume (${card.name} is loaded).`;
  if (!dataset) return `Load ${data} to resume this experiment.`;
  if (r.datasetName !== null && dataset.name !== r.datasetName)
    return `This experiment ran on ${data}; load it to resume (${dataset.name} is loaded).`;
  // The same name is not the same data: the split and batches must be the ones the finished runs saw.
  if (r.datasetDigest !== null && dataset.digest !== r.datasetDigest)
    return `The loaded ${dataset.name} is not the file this experiment ran on (its size or contents differ); load the original file to resume.`;
  if (r.datasetFormat !== null && formatChoice(dataset) !== r.datasetFormat)
    return `This experiment read ${data} with another format or column mapping; choose the same one in the Dataset panel to resume.`;
  return null;
}

/**
 * The summary as it stands: the final results, else the finished runs summarized (the table fills in as runs
 * finish). Null before the plan or the first finished run.
 */
export function liveResults(r: ExperimentRecord): ExperimentResults | null {
  if (r.final) return r.final;
  if (!r.plan || r.results.length === 0) return null;
  try {
    return summarize(r.plan.experiment, r.results, {
      referenceParams: r.plan.budget.referenceParams,
      splitSizes: r.plan.splitSizes,
    });
  } catch {
    return null;
  }
}

/** An experiment saved before train.gradAccum existed trained one micro-batch per step. */
function upgradeDefinition(e: Experiment): Experiment {
  return e.train.gradAccum === undefined ? { ...e, train: { ...e.train, gradAccum: 1 } } : e;
}

/** Records saved by earlier releases lack the fields added since. */
export function upgradeExperiment(r: ExperimentRecord): ExperimentRecord {
  return {
    ...r,
    experiment: upgradeDefinition(r.experiment),
    lrMode: r.lrMode ?? 'per-config',
    plan: r.plan ? { ...r.plan, experiment: upgradeDefinition(r.plan.experiment) } : null,
    results: r.results ?? [],
    runMs: r.runMs ?? [],
    adapters: r.adapters ?? [],
    final: r.final ? { ...r.final, experiment: upgradeDefinition(r.final.experiment) } : null,
    current: null,
    invalidFields: [],
  };
}

/** Live progress is not worth a write: a resumed experiment reports it again. */
export function storedExperiment(r: ExperimentRecord): ExperimentRecord {
  return { ...r, current: null, invalidFields: [] };
}

/** An experiment found queued or running after a reload: cut off, with its finished runs kept. */
export function interruptedExperiment(r: ExperimentRecord): ExperimentRecord {
  if (!isExperimentActive(r)) return r;
  const kept = resumeDone(r).length;
  return {
    ...r,
    status: 'interrupted',
    stage: null,
    current: null,
    message: `Interrupted: the page was closed or reloaded during this experiment${kept ? ` (${kept} finished run${kept === 1 ? '' : 's'} kept)` : ''}.`,
  };
}
