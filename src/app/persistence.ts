/**
 * The store's persistence: restoring past runs and their adapters at start, saving run records as they change
 * (at once when a status changes, else debounced) and finished runs' adapters, keeping the checkpoints of active
 * runs and reading one back to resume. The raw IndexedDB layer is persist.ts; it comes in as `storage` (with the worker's `send` and the
 * page's pagehide hook), so these functions run in node with fakes. No DOM access at import.
 */
import type { StoreApi } from 'zustand';
import type { Command, RunCheckpointData } from '../worker/protocol';
import { canUseCheckpoint, checkpointInfo, readCheckpoint } from './checkpoints';
import { send } from './client';
import * as idb from './persist';
import { isActive, patchedRuns, storedRecord, upgradeRecord, type RunPatch, type RunRecord } from './run-record';
import type { StudioState } from './store';

/** The IndexedDB calls persistence makes: persist.ts in the studio, fakes in tests. */
export type RunStorage = Pick<
  typeof idb,
  | 'loadRuns'
  | 'loadAdapters'
  | 'checkpointSteps'
  | 'saveRuns'
  | 'deleteRuns'
  | 'saveAdapter'
  | 'saveCheckpoint'
  | 'loadCheckpoint'
  | 'deleteCheckpoints'
>;

export interface PersistenceEnv {
  storage: RunStorage;
  /** The worker's command channel (client.ts): restored adapters are sent back to it. */
  send(cmd: Command): void;
  /** Calls `flush` as the page goes away. */
  onPageHide(flush: () => void): void;
}

/** Saves of records whose status did not change wait this long, gathering the metrics that follow. */
export const SAVE_DEBOUNCE_MS = 800;

const browserEnv: PersistenceEnv = {
  storage: idb,
  send,
  onPageHide: (flush) => window.addEventListener('pagehide', flush),
};

/**
 * The persistence of one store. `flushSteps` moves the buffered steps into the state (the reducer's step
 * buffer): a stored checkpoint carries the run's history up to it.
 */
export function createPersistence(
  store: StoreApi<StudioState>,
  flushSteps: () => void,
  env: Partial<PersistenceEnv> = {},
) {
  const { storage, send: sendCommand, onPageHide } = { ...browserEnv, ...env };
  const { getState: get, setState: set } = store;
  const patchRun = (id: string, patch: RunPatch) => set((s) => patchedRuns(s.runs, id, patch));

  /** Runs whose resume is reading their checkpoint from IndexedDB: not yet sent to the worker. */
  const readingCheckpoint = new Set<string>();
  /** Runs whose checkpoint write failed and said so (one toast per run: a full disk fails every later one too). */
  const checkpointFailures = new Set<string>();

  /** Restores past runs and their adapters from IndexedDB, then saves changes as they happen. */
  async function restore() {
    try {
      const [records, adapters, steps] = await Promise.all([
        storage.loadRuns(),
        storage.loadAdapters(),
        storage.checkpointSteps(),
      ]);
      const runs: Record<string, RunRecord> = {};
      for (const saved of records) {
        const r = upgradeRecord(saved);
        // Full fine-tunes live on the GPU only for the session that trained them.
        const weights = r.weights === 'session' ? null : r.weights;
        const restored: RunRecord = isActive(r)
          ? {
              ...r,
              weights,
              status: 'interrupted',
              stage: null,
              message: 'Interrupted: the page was closed or reloaded during this run.',
              progress: null,
            }
          : { ...r, weights };
        runs[r.config.id] = { ...restored, ...storedCheckpoint(restored, steps.get(r.config.id)) };
      }
      // Checkpoints of runs that finished or were removed while a write was in flight.
      const orphans = [...steps.keys()].filter((id) => !runs[id] || !canUseCheckpoint(runs[id]));
      void storage.deleteCheckpoints(orphans).catch(() => {});
      if (adapters.length) sendCommand({ type: 'restoreAdapters', adapters });
      set((s) => ({
        runs: { ...runs, ...s.runs },
        order: [...records.map((r) => r.config.id).filter((id) => !s.runs[id]), ...s.order],
        restored: true,
      }));
    } catch (err) {
      set({ restored: true });
      get().toast('error', `Past runs could not be read from IndexedDB: ${(err as Error).message}`);
    }
    persistChanges();
  }

  /**
   * Saves what changed in the run list from now on: once now (everything restored-but-modified, e.g. runs
   * marked interrupted), at once when a run's status changes, else after SAVE_DEBOUNCE_MS, and as the page goes
   * away. Returns the flush (for tests).
   */
  function persistChanges(): () => void {
    /** The records as last saved (by identity: a changed record is a new object). */
    let saved: Record<string, RunRecord> = {};
    /** The debounced save queued by a change; null when none is queued. */
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      // An immediate save covers what the queued one would have saved.
      if (timer) clearTimeout(timer);
      timer = null;
      const runs = get().runs;
      const changed = Object.values(runs).filter((r) => saved[r.config.id] !== r);
      const removed = Object.keys(saved).filter((id) => !runs[id]);
      saved = runs;
      // Finished, cancelled or unresumable runs lose their checkpoint in the same transaction as the record saying so.
      const dropped = changed.filter((r) => r.checkpoint === null && !isActive(r)).map((r) => r.config.id);
      void storage
        .saveRuns(changed.map(storedRecord), dropped)
        .catch((err) => get().toast('error', `Saving runs failed: ${err.message}`));
      void storage.deleteRuns(removed).catch(() => {});
    };
    flush();
    store.subscribe((s, prev) => {
      if (s.runs === prev.runs) return;
      // A run that starts, stops or finishes is saved at once: a reload just after must not find it still running.
      // So is what the user says about a run (notes, tags, archived): one write per edit, and nothing to lose.
      if (Object.values(s.runs).some((r) => prev.runs[r.config.id]?.status !== r.status || annotated(r, prev.runs)))
        flush();
      else timer ??= setTimeout(flush, SAVE_DEBOUNCE_MS);
    });
    // The metrics since the last save, as the page goes away (a reload mid-run keeps more of its curve).
    onPageHide(flush);
    return flush;
  }

  /** Stores a run's checkpoint (with the history up to it), unless the state is too large to write every 10% of a run. */
  function keepCheckpoint(id: string, checkpoint: RunCheckpointData) {
    const r = get().runs[id];
    if (!r || !isActive(r)) return; // removed or stopped meanwhile
    const info = checkpointInfo(checkpoint);
    if (!info.kept) return patchRun(id, { checkpoint: info });
    flushSteps();
    void storage
      .saveCheckpoint(storedRecord({ ...get().runs[id], checkpoint: info }), checkpoint)
      .then(() =>
        patchRun(id, (now) => (isActive(now) && (now.checkpoint?.step ?? -1) < info.step ? { checkpoint: info } : {})),
      )
      .catch((err: Error) => {
        if (checkpointFailures.has(id)) return;
        checkpointFailures.add(id);
        get().toast(
          'error',
          `Saving a checkpoint of "${r.config.name}" failed (${err.message}): it cannot resume after a reload.`,
        );
      });
  }

  /**
   * Run `id`'s stored checkpoint, checked for a run of `steps` steps: null when it is missing, damaged or the
   * storage cannot be read. While it reads, isReadingCheckpoint(id) is true.
   */
  async function readResumeCheckpoint(id: string, steps: number): Promise<RunCheckpointData | null> {
    readingCheckpoint.add(id);
    try {
      return readCheckpoint(await storage.loadCheckpoint(id), steps);
    } catch {
      // Unreadable storage is reported like a damaged checkpoint.
      return null;
    } finally {
      readingCheckpoint.delete(id);
    }
  }

  /** A resume still reading its checkpoint has not reached the worker (cancelling it is the store's business). */
  const isReadingCheckpoint = (id: string) => readingCheckpoint.has(id);

  /** A finished run's adapter, kept so a reload can still generate with it and export it. */
  const saveAdapter: RunStorage['saveAdapter'] = (id, method, adapter) => storage.saveAdapter(id, method, adapter);

  return { restore, persistChanges, keepCheckpoint, readResumeCheckpoint, isReadingCheckpoint, saveAdapter };
}

/** Whether the user changed the run's notes, tags or archive state since `prev` (a new run: its status did). */
function annotated(r: RunRecord, prev: Record<string, RunRecord>): boolean {
  const before = prev[r.config.id];
  return before !== undefined && (before.notes !== r.notes || before.tags !== r.tags || before.archived !== r.archived);
}

/**
 * The run's record as IndexedDB has it: the checkpoint's step comes from the checkpoint store (the two are
 * written together, but the record can be overwritten by a save that started before a newer checkpoint).
 */
function storedCheckpoint(r: RunRecord, step: number | undefined): Pick<RunRecord, 'checkpoint' | 'message'> {
  if (!canUseCheckpoint(r)) return { checkpoint: null, message: r.message };
  if (step !== undefined)
    return { checkpoint: { step, bytes: r.checkpoint?.bytes ?? 0, kept: true }, message: r.message };
  // Not kept (too large) says why there is nothing to resume from; kept but absent: the storage was cleared.
  if (!r.checkpoint?.kept) return { checkpoint: r.checkpoint, message: r.message };
  return {
    checkpoint: null,
    message:
      `${r.message ?? ''} Its checkpoint (step ${r.checkpoint.step}) is missing from this browser's storage, so it cannot resume.`.trim(),
  };
}
