/**
 * Experiment events from the worker -> studio state: status and stages, the plan, the run training now with its
 * (throttled) step, each finished run with its adapter, and the end. What an event needs beyond the state (saving
 * an adapter) is injected, so this runs in node without IndexedDB, a worker or a DOM.
 */
import type { AdapterSnapshot, MethodId, WorkerEvent } from '../worker/protocol';
import { patchedExperiments, resultKey, type ExperimentPatch } from './experiment-record';
import type { GetState, SetState } from './reducer';

export type ExperimentEvent = Extract<
  WorkerEvent,
  {
    type:
      | 'experimentStatus'
      | 'experimentPlan'
      | 'experimentRunStart'
      | 'experimentStep'
      | 'experimentRunDone'
      | 'experimentDone'
      | 'experimentStopped'
      | 'experimentFailed';
  }
>;

export interface ExperimentReducerDeps {
  /** Keeps a finished run's adapter (IndexedDB) so it can be exported after a reload. */
  saveAdapter(experimentId: string, key: string, method: MethodId, adapter: AdapterSnapshot): Promise<void>;
  /** The page clock (Date.now in the studio; fixed in tests). */
  now?(): number;
}

export function createExperimentReducer(get: GetState, set: SetState, deps: ExperimentReducerDeps) {
  const now = deps.now ?? Date.now;
  const patch = (id: string, p: ExperimentPatch) => set((s) => patchedExperiments(s.experiments, id, p));

  function applyExperimentEvent(e: ExperimentEvent) {
    switch (e.type) {
      case 'experimentStatus':
        return patch(e.id, (r) => ({
          status: e.status,
          stage: e.stage,
          message: null,
          startedAt: r.startedAt ?? (e.status === 'running' ? now() : null),
        }));
      case 'experimentPlan':
        return patch(e.id, { plan: e.plan });
      case 'experimentRunStart':
        return patch(e.id, {
          status: 'running',
          stage: null,
          current: { run: e.run, index: e.index, total: e.total, startedAt: now(), step: null },
        });
      case 'experimentStep':
        return patch(e.id, (r) =>
          r.current?.run.key === e.info.key ? { current: { ...r.current, step: e.info } } : {},
        );
      case 'experimentRunDone': {
        if (e.adapter && get().experiments[e.id])
          void deps.saveAdapter(e.id, e.key, e.result.method, e.adapter).catch(() => {});
        return patch(e.id, (r) => {
          const timed = r.current?.run.key === e.key;
          return {
            // A run finished again (after a resume) replaces its earlier result.
            results: [...r.results.filter((x) => resultKey(x) !== e.key), e.result],
            runMs: timed ? [...r.runMs, now() - r.current!.startedAt] : r.runMs,
            adapters: e.adapter && !r.adapters.includes(e.key) ? [...r.adapters, e.key] : r.adapters,
            current: timed ? null : r.current,
          };
        });
      }
      case 'experimentDone':
        return patch(e.id, {
          status: 'done',
          stage: null,
          message: null,
          final: e.results,
          results: e.results.runs,
          current: null,
          finishedAt: now(),
        });
      case 'experimentStopped':
        return patch(e.id, { status: 'stopped', stage: null, message: e.message, current: null, finishedAt: now() });
      case 'experimentFailed':
        return patch(e.id, { status: 'failed', stage: null, message: e.message, current: null, finishedAt: now() });
    }
  }

  return { applyExperimentEvent };
}

const EXPERIMENT_EVENTS = new Set<string>([
  'experimentStatus',
  'experimentPlan',
  'experimentRunStart',
  'experimentStep',
  'experimentRunDone',
  'experimentDone',
  'experimentStopped',
  'experimentFailed',
]);

export function isExperimentEvent(e: WorkerEvent): e is ExperimentEvent {
  return EXPERIMENT_EVENTS.has(e.type);
}
