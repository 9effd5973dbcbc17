/**
 * The experiments' persistence, as persistence.ts does it for runs: restoring them at start (an experiment that
 * was queued or running becomes interrupted, its finished runs kept, unless another tab's worker is running it),
 * saving records as they change (at once when a status or a finished run changes, else debounced) and the finished
 * runs' adapters. Only the tab that runs an experiment changes it, so records are written whole; the other tabs
 * hear of each write (tab-channel.ts) and read it back. The raw IndexedDB layer (persist.ts) comes in as `storage`,
 * so this runs in node with fakes. No DOM access at import.
 */
import type { StoreApi } from 'zustand';
import type { AdapterSnapshot, Command, MethodId } from '../worker/protocol';
import { gpuTab, type GpuTab } from './client';
import {
  experimentAdapterId,
  interruptedExperiment,
  isExperimentActive,
  storedExperiment,
  upgradeExperiment,
  type ExperimentRecord,
} from './experiment-record';
import * as idb from './persist';
import { storageErrorText, storageUse, type StorageUse } from './storage-quota';
import type { StudioState } from './store';
import { studioTabs, type TabChannel, type TabMessage } from './tab-channel';

/** The IndexedDB calls experiments make: persist.ts in the studio, fakes in tests. */
export type ExperimentStorage = Pick<
  typeof idb,
  'loadExperiments' | 'saveExperiments' | 'deleteExperiments' | 'saveAdapter'
> &
  Partial<Pick<typeof idb, 'loadExperimentsById'>>;

export interface ExperimentPersistenceEnv {
  storage: ExperimentStorage;
  /** Calls `flush` as the page goes away. */
  onPageHide(flush: () => void): void;
  /** The studio's other tabs: what this tab saves goes out, what they save comes in. */
  tabs: TabChannel;
  /** Whether this tab's worker uses the GPU (client.ts, over the GPU lock). */
  gpu: GpuTab;
  /** How full the storage is, for the message when a write does not fit. */
  estimate(): Promise<StorageUse | null>;
}

/** Saves of records whose status and finished runs did not change wait this long (the live step is not stored). */
export const EXPERIMENT_SAVE_DEBOUNCE_MS = 800;

const browserEnv = (): ExperimentPersistenceEnv => ({
  storage: idb,
  onPageHide: (flush) => window.addEventListener('pagehide', flush),
  tabs: studioTabs(),
  gpu: gpuTab,
  estimate: storageUse,
});

export function createExperimentPersistence(store: StoreApi<StudioState>, env: Partial<ExperimentPersistenceEnv> = {}) {
  const { storage, onPageHide, tabs, gpu, estimate } = { ...browserEnv(), ...env };
  const { getState: get, setState: set } = store;
  /** The records as last saved or read back (by identity: a changed record is a new object). */
  let saved: Record<string, ExperimentRecord> = {};
  /** Experiments removed here or in another tab: a late notice of a save must not bring them back. */
  const removed = new Set<string>();
  /** Other tabs' notices heard while restoring: handled once the restored experiments are in the state. */
  let heardEarly: TabMessage[] | null = [];

  /** Restores past experiments, then saves changes as they happen. */
  async function restore() {
    tabs.listen((message) => (heardEarly ? heardEarly.push(message) : hear(message)));
    try {
      const [stored, ownsGpu] = await Promise.all([storage.loadExperiments(), gpu.decided()]);
      const records = stored.map(upgradeExperiment);
      // Another tab's worker is running the active ones: that tab saves them, this one shows them.
      const restored = records.map((r) => (ownsGpu ? interruptedExperiment(r) : r));
      saved = Object.fromEntries(records.map((r) => [r.id, r]));
      set((s) => ({
        experiments: { ...Object.fromEntries(restored.map((r) => [r.id, r])), ...s.experiments },
        experimentOrder: [...restored.map((r) => r.id).filter((id) => !s.experiments[id]), ...s.experimentOrder],
      }));
    } catch (err) {
      get().toast('error', `Past experiments could not be read from IndexedDB: ${(err as Error).message}`);
    }
    persistChanges();
    gpu.onTakeOver((queued) => void takeOver(queued));
    const early = heardEarly ?? [];
    heardEarly = null;
    for (const message of early) hear(message);
  }

  /**
   * Saves what changed from now on: once now (records restored as interrupted), at once when a status or the
   * finished runs change (a reload just after must keep them), else after EXPERIMENT_SAVE_DEBOUNCE_MS, and as the
   * page goes away. Returns the flush (for tests).
   */
  function persistChanges(): () => void {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      const experiments = get().experiments;
      const changed = Object.values(experiments).filter((r) => saved[r.id] !== r);
      const gone = Object.keys(saved).filter((id) => !experiments[id]);
      saved = experiments;
      for (const id of gone) removed.add(id);
      const ids = changed.map((r) => r.id);
      void storage
        .saveExperiments(changed.map(storedExperiment))
        .then(() => ids.length && tabs.post({ type: 'experiments-saved', ids }))
        .catch((err) =>
          storageErrorText(
            err,
            {
              what: 'Changes to experiments',
              kept: 'They stay on this page, and the studio tries again with the next change.',
            },
            (message) => `Saving experiments failed: ${message}`,
            estimate,
          ).then((text) => {
            // Written again with the next flush.
            for (const id of ids) if (saved[id] === experiments[id]) delete saved[id];
            get().toast('error', text);
          }),
        );
      if (gone.length)
        void storage
          .deleteExperiments(gone)
          .then(() => tabs.post({ type: 'experiments-removed', ids: gone }))
          .catch(() => {});
    };
    flush();
    store.subscribe((s, prev) => {
      if (s.experiments === prev.experiments) return;
      const urgent = Object.values(s.experiments).some((r) => {
        const before = prev.experiments[r.id];
        return !before || before.status !== r.status || before.results !== r.results;
      });
      const removedNow = Object.keys(prev.experiments).some((id) => !s.experiments[id]);
      if (urgent || removedNow) flush();
      else timer ??= setTimeout(flush, EXPERIMENT_SAVE_DEBOUNCE_MS);
    });
    onPageHide(flush);
    return flush;
  }

  /** Another tab saved or removed experiments. */
  function hear(message: TabMessage) {
    if (message.type === 'experiments-saved') void readBack(message.ids);
    else if (message.type === 'experiments-removed') removeHeard(message.ids);
  }

  /** Reads back what another tab saved; an experiment this tab changed since its last save keeps its own record. */
  async function readBack(ids: string[]) {
    let stored: ExperimentRecord[];
    try {
      stored = storage.loadExperimentsById
        ? await storage.loadExperimentsById(ids)
        : (await storage.loadExperiments()).filter((r) => ids.includes(r.id));
    } catch {
      return; // the next notice, or a reload, brings them
    }
    set((s) => {
      const experiments = { ...s.experiments };
      const added: string[] = [];
      const next = { ...saved };
      for (const record of stored.map(upgradeExperiment)) {
        const local = s.experiments[record.id];
        if (removed.has(record.id) || (local && saved[record.id] !== local)) continue;
        // The live step and unparsed fields are this tab's view, never stored.
        const shown = local ? { ...record, current: local.current, invalidFields: local.invalidFields } : record;
        experiments[record.id] = shown;
        next[record.id] = shown;
        if (!local) added.push(record.id);
      }
      saved = next;
      return { experiments, experimentOrder: [...s.experimentOrder, ...added] };
    });
  }

  /** Experiments another tab removed leave this one too (the store's removeExperiment: cancelled, adapters freed). */
  function removeHeard(ids: string[]) {
    for (const id of ids) removed.add(id);
    const here = ids.filter((id) => get().experiments[id]);
    // Forgotten first: the other tab deleted them, so this tab's next save must not delete them again.
    saved = Object.fromEntries(Object.entries(saved).filter(([id]) => !here.includes(id)));
    for (const id of here) get().removeExperiment(id);
  }

  /** The tab that ran experiments closed: the ones it left active, read fresh, are interrupted here. */
  async function takeOver(queued: Command[]) {
    const starting = new Set(queued.flatMap((c) => (c.type === 'startExperiment' ? [c.id] : [])));
    const orphans = Object.values(get().experiments).filter((r) => isExperimentActive(r) && !starting.has(r.id));
    if (orphans.length === 0) return;
    try {
      const ids = orphans.map((r) => r.id);
      const fresh = (await storage.loadExperiments()).filter((r) => ids.includes(r.id)).map(upgradeExperiment);
      set((s) => {
        const experiments = { ...s.experiments };
        for (const r of fresh)
          if (experiments[r.id] && isExperimentActive(r)) experiments[r.id] = interruptedExperiment(r);
        return { experiments };
      });
    } catch (err) {
      get().toast(
        'error',
        `The experiments of the closed tab could not be read from IndexedDB: ${(err as Error).message}`,
      );
    }
  }

  /** A finished run's adapter, kept so it can be exported after a reload. */
  const saveAdapter = (experimentId: string, key: string, method: MethodId, adapter: AdapterSnapshot) =>
    storage.saveAdapter(experimentAdapterId(experimentId, key), method, adapter);

  return { restore, persistChanges, saveAdapter };
}
