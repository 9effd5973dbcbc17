/**
 * The experiments' persistence, as persistence.ts does it for runs: restoring them at start (an experiment that
 * was queued or running becomes interrupted, its finished runs kept), saving records as they change (at once when
 * a status or a finished run changes, else debounced) and the finished runs' adapters. The raw IndexedDB layer
 * (persist.ts) comes in as `storage`, so this runs in node with fakes. No DOM access at import.
 */
import type { StoreApi } from 'zustand';
import type { AdapterSnapshot, MethodId } from '../worker/protocol';
import {
  experimentAdapterId,
  interruptedExperiment,
  storedExperiment,
  upgradeExperiment,
  type ExperimentRecord,
} from './experiment-record';
import * as idb from './persist';
import type { StudioState } from './store';

/** The IndexedDB calls experiments make: persist.ts in the studio, fakes in tests. */
export type ExperimentStorage = Pick<
  typeof idb,
  'loadExperiments' | 'saveExperiments' | 'deleteExperiments' | 'saveAdapter'
>;

export interface ExperimentPersistenceEnv {
  storage: ExperimentStorage;
  /** Calls `flush` as the page goes away. */
  onPageHide(flush: () => void): void;
}

/** Saves of records whose status and finished runs did not change wait this long (the live step is not stored). */
export const EXPERIMENT_SAVE_DEBOUNCE_MS = 800;

const browserEnv = (): ExperimentPersistenceEnv => ({
  storage: idb,
  onPageHide: (flush) => window.addEventListener('pagehide', flush),
});

export function createExperimentPersistence(store: StoreApi<StudioState>, env: Partial<ExperimentPersistenceEnv> = {}) {
  const { storage, onPageHide } = { ...browserEnv(), ...env };
  const { getState: get, setState: set } = store;

  /** Restores past experiments, then saves changes as they happen. */
  async function restore() {
    try {
      const records = (await storage.loadExperiments()).map((r) => interruptedExperiment(upgradeExperiment(r)));
      set((s) => ({
        experiments: { ...Object.fromEntries(records.map((r) => [r.id, r])), ...s.experiments },
        experimentOrder: [...records.map((r) => r.id).filter((id) => !s.experiments[id]), ...s.experimentOrder],
      }));
    } catch (err) {
      get().toast('error', `Past experiments could not be read from IndexedDB: ${(err as Error).message}`);
    }
    persistChanges();
  }

  /**
   * Saves what changed from now on: once now (records restored as interrupted), at once when a status or the
   * finished runs change (a reload just after must keep them), else after EXPERIMENT_SAVE_DEBOUNCE_MS, and as the
   * page goes away. Returns the flush (for tests).
   */
  function persistChanges(): () => void {
    let saved: Record<string, ExperimentRecord> = {};
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      const experiments = get().experiments;
      const changed = Object.values(experiments).filter((r) => saved[r.id] !== r);
      const removed = Object.keys(saved).filter((id) => !experiments[id]);
      saved = experiments;
      void storage
        .saveExperiments(changed.map(storedExperiment))
        .catch((err) => get().toast('error', `Saving experiments failed: ${err.message}`));
      void storage.deleteExperiments(removed).catch(() => {});
    };
    flush();
    store.subscribe((s, prev) => {
      if (s.experiments === prev.experiments) return;
      const urgent = Object.values(s.experiments).some((r) => {
        const before = prev.experiments[r.id];
        return !before || before.status !== r.status || before.results !== r.results;
      });
      const removed = Object.keys(prev.experiments).some((id) => !s.experiments[id]);
      if (urgent || removed) flush();
      else timer ??= setTimeout(flush, EXPERIMENT_SAVE_DEBOUNCE_MS);
    });
    onPageHide(flush);
    return flush;
  }

  /** A finished run's adapter, kept so it can be exported after a reload. */
  const saveAdapter = (experimentId: string, key: string, method: MethodId, adapter: AdapterSnapshot) =>
    storage.saveAdapter(experimentAdapterId(experimentId, key), method, adapter);

  return { restore, persistChanges, saveAdapter };
}
