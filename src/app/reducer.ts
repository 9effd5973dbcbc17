/**
 * Worker events -> studio state: applyEvent (one case per event), applyError (errors by scope) and the step
 * buffer (training reports steps faster than a page renders). Written as functions over the store's get and
 * set; what an event needs beyond the state (keeping a checkpoint, saving an adapter, a download) is injected,
 * so this module runs in node without IndexedDB, a worker or a DOM.
 */
import type { StoreApi } from 'zustand';
import type {
  AdapterSnapshot,
  MethodId,
  RunCheckpointData,
  RunProgress,
  StepPoint,
  WorkerEvent,
} from '../worker/protocol';
import { resumedAfterLoss, withWeightsLost } from './device-loss';
import { createExperimentReducer, isExperimentEvent, type ExperimentReducerDeps } from './experiment-reducer';
import { withSnapshot } from './analysis';
import { nextDatasetLoading, stillLoading } from './dataset-loading';
import { FINISHED, patchedRuns, type RunPatch } from './run-record';
import type { StudioState } from './store';

export type GetState = () => StudioState;
export type SetState = StoreApi<StudioState>['setState'];

export interface StepBuffer {
  /** Queues a step's point and progress: they reach the state with the next flush, at most `delayMs` later. */
  push(id: string, point: StepPoint, progress: RunProgress): void;
  /** Moves the queued steps into the state now (before anything that reads or stores a run's history). */
  flush(): void;
}

/**
 * Training can report hundreds of steps a second on a real GPU: batch them into one render per frame or so.
 * The queued steps and the timer belong to the buffer (one per store), not to the module.
 */
export function createStepBuffer(set: SetState, delayMs = 120): StepBuffer {
  /** Steps reported since the last flush, by run, with the latest progress. */
  const pending = new Map<string, { points: StepPoint[]; progress: RunProgress }>();
  /** The flush queued by the first step since the last one; null when none is queued. */
  let timer: ReturnType<typeof setTimeout> | null = null;

  function flush() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    set((s) => {
      const runs = { ...s.runs };
      for (const [id, { points, progress }] of batch) {
        const r = runs[id];
        if (r) runs[id] = { ...r, points: [...r.points, ...points], progress, stage: progress.stage };
      }
      return { runs };
    });
  }

  function push(id: string, point: StepPoint, progress: RunProgress) {
    const entry = pending.get(id) ?? { points: [], progress };
    entry.points.push(point);
    entry.progress = progress;
    pending.set(id, entry);
    timer ??= setTimeout(flush, delayMs);
  }

  return { push, flush };
}

/** What the reducer needs besides the state. */
export interface ReducerDeps {
  steps: StepBuffer;
  /** Stores a run's checkpoint (persistence.ts). */
  keepCheckpoint(id: string, checkpoint: RunCheckpointData): void;
  /** Saves a finished run's adapter (persistence.ts: IndexedDB). */
  saveAdapter(id: string, method: MethodId, adapter: AdapterSnapshot): Promise<void>;
  /** Hands an exported zip to the user (browser.ts). */
  download(fileName: string, bytes: Uint8Array): void;
  /** What experiment events need (experiment-reducer.ts); absent: their adapters are not kept. */
  experiments?: ExperimentReducerDeps;
}

export function createReducer(get: GetState, set: SetState, deps: ReducerDeps) {
  const { steps } = deps;
  const patchRun = (id: string, patch: RunPatch) => set((s) => patchedRuns(s.runs, id, patch));

  /** A run that finished, or was cancelled, needs no checkpoint (the next save deletes it from IndexedDB). */
  const dropCheckpoint = (id: string) => patchRun(id, { checkpoint: null });
  const { applyExperimentEvent } = createExperimentReducer(
    get,
    set,
    deps.experiments ?? { saveAdapter: async () => {} },
  );

  function applyEvent(e: WorkerEvent) {
    if (isExperimentEvent(e)) return applyExperimentEvent(e);
    switch (e.type) {
      case 'gpu':
        return set({ gpu: { status: 'ready', info: e.info } });
      case 'gpuUnavailable':
        return set({ gpu: { status: 'unavailable', reason: e.reason } });
      case 'modelProgress':
        return set((s) => ({ model: { ...s.model, loading: { stage: e.stage, done: e.done, total: e.total } } }));
      case 'model':
        return set((s) => ({
          model: {
            card: e.card,
            ready: e.ready,
            loading: e.ready ? null : s.model.loading,
            error: null,
            gpuBytes: e.gpuBytes,
          },
        }));
      case 'datasetProgress':
        return set((s) => ({
          dataset: { ...s.dataset, loading: nextDatasetLoading(s.dataset.loading, e, s.dataset.preview?.name) },
        }));
      case 'dataset':
        // A new preview of the file in use (its fit at another length) while another file loads leaves that loading.
        return set((s) => ({
          dataset: { preview: e.preview, loading: stillLoading(s.dataset.loading, e.preview), error: null },
        }));
      case 'runStatus':
        // A failed run keeps its checkpoint: it failed on an error (a lost GPU) that resuming can get past.
        if (e.status === 'cancelled') dropCheckpoint(e.id);
        return patchRun(e.id, (r) => ({
          status: e.status,
          stage: e.stage ?? (e.status === 'training' ? r.stage : null),
          message: e.message ?? (e.status === 'failed' || e.status === 'cancelled' ? r.message : null),
          startedAt: r.startedAt ?? (e.status === 'preparing' ? Date.now() : null),
          finishedAt: FINISHED.includes(e.status) ? Date.now() : r.finishedAt,
        }));
      case 'runData':
        return patchRun(e.id, { data: e.data });
      case 'runWarning':
        return patchRun(e.id, (r) => ({ warnings: [...r.warnings, e.message] }));
      case 'runPrepare':
        return patchRun(e.id, { prepare: { phase: e.phase, done: e.done, total: e.total } });
      case 'runAnalysis':
        // A resumed run reports its method again: the snapshots taken before the interruption stay valid.
        return patchRun(e.id, (r) => ({
          analysis: (r.analysis?.timeline ?? []).reduce(withSnapshot, { ...e.analysis, timeline: e.analysis.timeline }),
        }));
      case 'runSnapshot':
        return patchRun(e.id, (r) => (r.analysis ? { analysis: withSnapshot(r.analysis, e.snapshot) } : {}));
      case 'runStep':
        return steps.push(e.id, e.point, e.progress);
      case 'runCheckpoint':
        return deps.keepCheckpoint(e.id, e.checkpoint);
      case 'runEval':
        steps.flush();
        return patchRun(e.id, (r) => ({ evals: [...r.evals, e.point] }));
      case 'deviceLost':
        return set((s) => ({ runs: withWeightsLost(s.runs, e.weightsLost) }));
      case 'runResumed':
        // The steps reported before the loss reach the record first: the resumed ones replace those from e.step on.
        steps.flush();
        return patchRun(e.id, (r) => resumedAfterLoss(r, e.step, e.message));
      case 'deviceRecovered':
        return get().toast(e.autoResume ? 'info' : 'error', e.message);
      case 'runDone':
        steps.flush();
        if (e.adapter)
          void deps.saveAdapter(e.id, get().runs[e.id]?.config.method ?? 'lora', e.adapter).catch(() => {});
        dropCheckpoint(e.id);
        return patchRun(e.id, (r) => ({
          status: e.status,
          stage: null,
          message: e.summary.message,
          finishedAt: Date.now(),
          prepare: null,
          // A resumed run skips the starting evaluation: it was measured (step 0) before the interruption.
          summary: {
            ...e.summary,
            initialValLoss: e.summary.initialValLoss ?? r.evals.find((p) => p.step === 0)?.loss ?? null,
          },
          weights: !e.exportable ? null : e.adapter ? 'adapter' : 'session',
          adapterFormat: e.adapter?.format ?? null,
        }));
      case 'generation': {
        const p = get().playground;
        if (e.requestId !== p.requestId) return;
        const key = e.result.source === 'base' ? 'base' : e.result.source.runId;
        return set({ playground: { ...p, results: { ...p.results, [key]: e.result } } });
      }
      case 'generationDone':
        return set((s) =>
          s.playground.requestId === e.requestId ? { playground: { ...s.playground, requestId: null } } : {},
        );
      case 'export':
        deps.download(e.fileName, e.bytes);
        return set((s) => ({ exporting: { ...s.exporting, [e.id]: false } }));
      case 'benchProgress':
        return set((s) => ({ bench: { ...s.bench, running: true, stage: e.stage } }));
      case 'benchResult':
        return set({ bench: { running: false, stage: null, result: e.result, error: null } });
      case 'error':
        return applyError(e);
    }
  }

  function applyError(e: Extract<WorkerEvent, { type: 'error' }>) {
    switch (e.scope) {
      case 'model':
        return set((s) => ({ model: { ...s.model, loading: null, error: e.message } }));
      case 'dataset':
        return set((s) => ({ dataset: { ...s.dataset, loading: null, error: e.message } }));
      case 'generate':
        return set((s) => ({ playground: { ...s.playground, error: e.message } }));
      case 'export':
        if (e.id) set((s) => ({ exporting: { ...s.exporting, [e.id!]: false } }));
        return get().toast('error', `Export failed: ${e.message}`);
      case 'bench':
        return set((s) => ({ bench: { ...s.bench, running: false, stage: null, error: e.message } }));
      case 'run':
        if (e.id) return patchRun(e.id, { status: 'failed', message: e.message });
        return get().toast('error', e.message);
      default:
        return get().toast('error', e.message);
    }
  }

  return { applyEvent, applyError };
}
