/**
 * The store's persistence: restoring past runs and their adapters at start, saving run records as they change
 * (at once when a status changes, else debounced) and finished runs' adapters, keeping the checkpoints of active
 * runs and reading one back to resume. Several tabs share the records: each save writes only the fields this tab
 * changed (tab-merge.ts), then tells the other tabs (tab-channel.ts), which read the records back; a tab waiting for
 * the GPU leaves the other tab's active runs as they are, and interrupts them if it takes over when that tab closes.
 * The raw IndexedDB layer is persist.ts; it comes in as `storage` (with the worker's `send`, the page's pagehide
 * hook, the tab channel and the GPU lock), so these functions run in node with fakes. No DOM access at import.
 */
import type { StoreApi } from 'zustand';
import type { Command, RunCheckpointData } from '../worker/protocol';
import { canUseCheckpoint, checkpointInfo, readCheckpoint } from './checkpoints';
import { gpuTab, send, type GpuTab } from './client';
import * as idb from './persist';
import { isActive, patchedRuns, storedRecord, upgradeRecord, type RunPatch, type RunRecord } from './run-record';
import { isQuotaError, storageErrorText, storageUse, type StorageUse } from './storage-quota';
import { keepStorage } from './storage-status';
import type { StudioState } from './store';
import { studioTabs, type TabChannel, type TabMessage } from './tab-channel';
import { changedFields, remoteRun, unionFields, type Fields } from './tab-merge';

/** The IndexedDB calls persistence makes: persist.ts in the studio, fakes in tests. */
export type RunStorage = Pick<
  typeof idb,
  | 'loadRuns'
  | 'loadAdapters'
  | 'checkpointSteps'
  | 'saveRuns'
  | 'deleteRuns'
  | 'saveAdapter'
  | 'loadCheckpoint'
  | 'deleteCheckpoints'
> &
  Partial<Pick<typeof idb, 'loadRunsById'>> & {
    /** False when the run is no longer stored (nothing written); a storage that cannot tell resolves to nothing. */
    // biome-ignore lint/suspicious/noConfusingVoidType: a storage written before runs could be removed elsewhere resolves to nothing
    saveCheckpoint(run: RunRecord, checkpoint: RunCheckpointData): Promise<boolean | void>;
  };

export interface PersistenceEnv {
  storage: RunStorage;
  /** The worker's command channel (client.ts): restored adapters are sent back to it. */
  send(cmd: Command): void;
  /** Calls `flush` as the page goes away. */
  onPageHide(flush: () => void): void;
  /** The studio's other tabs: what this tab saves goes out, what they save comes in. */
  tabs: TabChannel;
  /** Whether this tab's worker uses the GPU (client.ts, over the GPU lock). */
  gpu: GpuTab;
  /** Asks the browser once to keep the studio's storage (storage-status.ts). */
  keepStorage(): void;
  /** How full the storage is, for the message when a write does not fit. */
  estimate(): Promise<StorageUse | null>;
}

/** Saves of records whose status did not change wait this long, gathering the metrics that follow. */
export const SAVE_DEBOUNCE_MS = 800;

const browserEnv = (): PersistenceEnv => ({
  storage: idb,
  send,
  onPageHide: (flush) => window.addEventListener('pagehide', flush),
  tabs: studioTabs(),
  gpu: gpuTab,
  keepStorage: () => void keepStorage(),
  estimate: storageUse,
});

/**
 * The persistence of one store. `flushSteps` moves the buffered steps into the state (the reducer's step
 * buffer): a stored checkpoint carries the run's history up to it.
 */
export function createPersistence(
  store: StoreApi<StudioState>,
  flushSteps: () => void,
  env: Partial<PersistenceEnv> = {},
) {
  const {
    storage,
    send: sendCommand,
    onPageHide,
    tabs,
    gpu,
    estimate,
    keepStorage: askToKeep,
  } = {
    ...browserEnv(),
    ...env,
  };
  const { getState: get, setState: set } = store;
  const patchRun = (id: string, patch: RunPatch) => set((s) => patchedRuns(s.runs, id, patch));

  /** Runs whose resume is reading their checkpoint from IndexedDB: not yet sent to the worker. */
  const readingCheckpoint = new Set<string>();
  /** Runs whose checkpoint write failed and said so (one toast per run: a full disk fails every later one too). */
  const checkpointFailures = new Set<string>();
  /** Each run's record as this tab last knew it stored (by identity: a changed record is a new object). */
  const baseline: Record<string, RunRecord> = {};
  /** Fields whose save failed: written with the next save. */
  const unsaved = new Map<string, Fields<RunRecord>>();
  /** Runs removed here or in another tab: a late notice of a save must not bring them back. */
  const removed = new Set<string>();
  /** The save of everything changed (persistChanges), once saving has begun. */
  let flush: (() => void) | null = null;
  /** Other tabs' notices heard while restoring: handled once the restored runs are in the state. */
  let heardEarly: TabMessage[] | null = [];

  /** A write that failed, in the studio's words (with how full the storage is, when that is why). */
  const report = (err: unknown, quota: { what: string; kept: string }, other: (message: string) => string) =>
    void storageErrorText(err, quota, other, estimate).then((text) => get().toast('error', text));

  /** Restores past runs and their adapters from IndexedDB, then saves changes as they happen. */
  async function restore() {
    tabs.listen((message) => (heardEarly ? heardEarly.push(message) : hear(message)));
    try {
      const [records, adapters, steps, ownsGpu] = await Promise.all([
        storage.loadRuns(),
        storage.loadAdapters(),
        storage.checkpointSteps(),
        gpu.decided(),
      ]);
      const runs: Record<string, RunRecord> = {};
      for (const saved of records) {
        const r = upgradeRecord(saved);
        baseline[r.config.id] = r;
        // Another tab's worker is running it: that tab saves it, this one shows it.
        runs[r.config.id] = isActive(r) && !ownsGpu ? r : restoredRun(r, steps.get(r.config.id), RELOADED);
      }
      if (ownsGpu) {
        // Checkpoints of runs that finished or were removed while a write was in flight (only the tab that
        // trains writes checkpoints, so only it may judge which are left over).
        const orphans = [...steps.keys()].filter((id) => !runs[id] || !canUseCheckpoint(runs[id]));
        void storage.deleteCheckpoints(orphans).catch(() => {});
        if (adapters.length) sendCommand({ type: 'restoreAdapters', adapters });
      }
      if (records.length) askToKeep();
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
    gpu.onTakeOver((queued) => void takeOver(queued));
    const early = heardEarly ?? [];
    heardEarly = null;
    for (const message of early) hear(message);
  }

  /**
   * Saves what changed in the run list from now on: once now (everything restored-but-modified, e.g. runs
   * marked interrupted), at once when a run's status changes, else after SAVE_DEBOUNCE_MS, and as the page goes
   * away. Returns the flush (for tests).
   */
  function persistChanges(): () => void {
    /** The debounced save queued by a change; null when none is queued. */
    let timer: ReturnType<typeof setTimeout> | null = null;
    const saveNow = () => {
      // An immediate save covers what the queued one would have saved.
      if (timer) clearTimeout(timer);
      timer = null;
      saveChanges();
    };
    flush = saveNow;
    saveNow();
    store.subscribe((s, prev) => {
      if (s.runs === prev.runs) return;
      // A run that starts, stops or finishes is saved at once: a reload just after must not find it still running.
      // So is what the user says about a run (notes, tags, archived): one write per edit, and nothing to lose;
      // and a removal (the other tabs drop the run at once).
      const removal = Object.keys(prev.runs).some((id) => !s.runs[id]);
      if (
        removal ||
        Object.values(s.runs).some((r) => prev.runs[r.config.id]?.status !== r.status || annotated(r, prev.runs))
      )
        saveNow();
      else timer ??= setTimeout(saveNow, SAVE_DEBOUNCE_MS);
    });
    // The metrics since the last save, as the page goes away (a reload mid-run keeps more of its curve).
    onPageHide(saveNow);
    return saveNow;
  }

  /** Writes the fields each run changed since its baseline (new runs whole), deletes removed runs, tells the tabs. */
  function saveChanges() {
    const runs = get().runs;
    const writes: RunRecord[] = [];
    const fields = new Map<string, Fields<RunRecord>>();
    for (const r of Object.values(runs)) {
      const id = r.config.id;
      const base = baseline[id];
      if (base === r && !unsaved.has(id)) continue;
      baseline[id] = r;
      if (!base) {
        writes.push(r);
        continue;
      }
      const own = unionFields(changedFields(base, r), unsaved.get(id) ?? []);
      unsaved.delete(id);
      if (own.length === 0) continue;
      writes.push(r);
      fields.set(id, own);
    }
    const gone = Object.keys(baseline).filter((id) => !runs[id]);
    for (const id of gone) {
      delete baseline[id];
      unsaved.delete(id);
      removed.add(id);
    }
    // Finished, cancelled or unresumable runs lose their checkpoint in the same transaction as the record saying so.
    const dropped = writes
      .filter(
        (r) => r.checkpoint === null && !isActive(r) && (fields.get(r.config.id) ?? DROP_FIELDS).some(dropsCheckpoint),
      )
      .map((r) => r.config.id);
    if (writes.length || dropped.length) {
      const ids = writes.map((r) => r.config.id);
      void storage
        .saveRuns(writes.map(storedRecord), dropped, fields)
        .then(() => {
          if (ids.length) tabs.post({ type: 'runs-saved', ids });
          if (ids.length) askToKeep();
        })
        .catch((err: Error) => {
          for (const r of writes) {
            const id = r.config.id;
            const own = fields.get(id);
            // A new run is written whole next time; a change, with the next one.
            if (!own) delete baseline[id];
            else if (baseline[id]) unsaved.set(id, unionFields(unsaved.get(id) ?? [], own));
          }
          report(
            err,
            {
              what: `Changes to ${writes.length === 1 ? `"${writes[0].config.name}"` : `${writes.length} runs`}`,
              kept: 'They stay on this page, and the studio tries again with the next change.',
            },
            (message) => `Saving runs failed: ${message}`,
          );
        });
    }
    if (gone.length)
      void storage
        .deleteRuns(gone)
        .then(() => tabs.post({ type: 'runs-removed', ids: gone }))
        .catch(() => {});
  }

  /** Another tab saved or removed runs. */
  function hear(message: TabMessage) {
    if (message.type === 'runs-saved') void readBack(message.ids);
    else if (message.type === 'runs-removed') removeHeard(message.ids);
  }

  /** Reads back runs another tab saved: new ones join the list, known ones update under this tab's own changes. */
  async function readBack(ids: string[]) {
    let stored: RunRecord[];
    try {
      stored = storage.loadRunsById
        ? await storage.loadRunsById(ids)
        : (await storage.loadRuns()).filter((r) => ids.includes(r.config.id));
    } catch {
      return; // the next notice, or a reload, brings them
    }
    set((s) => {
      const runs = { ...s.runs };
      const added: string[] = [];
      for (const saved of stored) {
        const id = saved.config.id;
        if (removed.has(id)) continue;
        const { base, shown } = remoteRun(upgradeRecord(saved), s.runs[id], baseline[id]);
        baseline[id] = base;
        runs[id] = shown;
        if (!s.runs[id]) added.push(id);
      }
      return { runs, order: [...s.order, ...added] };
    });
  }

  /** Runs another tab removed leave this one too (cancelled first if this tab's worker is running them). */
  function removeHeard(ids: string[]) {
    const here = ids.filter((id) => get().runs[id]);
    for (const id of ids) {
      removed.add(id);
      delete baseline[id];
      unsaved.delete(id);
    }
    if (here.length === 0) return;
    for (const id of here) {
      if (isActive(get().runs[id])) sendCommand({ type: 'cancelRun', id });
      sendCommand({ type: 'deleteRun', id });
    }
    set((s) => {
      const runs = { ...s.runs };
      for (const id of here) delete runs[id];
      return { runs, order: s.order.filter((id) => !here.includes(id)) };
    });
  }

  /**
   * This tab got the GPU because the tab that had it closed: that tab's active runs are interrupted (but not the
   * ones this tab queued meanwhile), and the adapters stored since this tab loaded go to its worker.
   */
  async function takeOver(queued: Command[]) {
    const starting = new Set(queued.flatMap((c) => (c.type === 'startRun' ? [c.config.id] : [])));
    try {
      const [steps, adapters] = await Promise.all([storage.checkpointSteps(), storage.loadAdapters()]);
      if (adapters.length) sendCommand({ type: 'restoreAdapters', adapters });
      set((s) => {
        const runs = { ...s.runs };
        for (const r of Object.values(s.runs)) {
          const id = r.config.id;
          if (isActive(r) && !starting.has(id) && !readingCheckpoint.has(id))
            runs[id] = restoredRun(r, steps.get(id), TAB_CLOSED);
        }
        return { runs };
      });
    } catch (err) {
      get().toast('error', `The runs of the closed tab could not be read from IndexedDB: ${(err as Error).message}`);
    }
  }

  /** Stores a run's checkpoint (with the history up to it), unless the state is too large to write every 10% of a run. */
  function keepCheckpoint(id: string, checkpoint: RunCheckpointData) {
    const r = get().runs[id];
    if (!r || !isActive(r)) return; // removed or stopped meanwhile
    const info = checkpointInfo(checkpoint);
    if (!info.kept) return patchRun(id, { checkpoint: info });
    flushSteps();
    // The metrics first, in a write of their own: a checkpoint that does not fit must not cost them.
    flush?.();
    void storage
      .saveCheckpoint(storedRecord({ ...get().runs[id], checkpoint: info }), checkpoint)
      .then((stored) => {
        if (stored === false) return; // removed in another tab
        patchRun(id, (now) => (isActive(now) && (now.checkpoint?.step ?? -1) < info.step ? { checkpoint: info } : {}));
      })
      .catch((err: Error) => {
        if (checkpointFailures.has(id)) return;
        checkpointFailures.add(id);
        report(
          err,
          {
            what: `The checkpoint of "${r.config.name}" at step ${info.step}`,
            kept: 'Its metrics are saved; after a reload it can resume only from an earlier checkpoint, if one was stored.',
          },
          (message) =>
            `Saving a checkpoint of "${r.config.name}" failed (${message}): it cannot resume after a reload.`,
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
  const saveAdapter: RunStorage['saveAdapter'] = (id, method, adapter) =>
    storage.saveAdapter(id, method, adapter).catch((err: unknown) => {
      if (isQuotaError(err)) {
        const name = get().runs[id]?.config.name ?? 'a run';
        report(
          err,
          {
            what: `The adapter of "${name}"`,
            kept: 'Export it now: after a reload it can neither generate nor be exported.',
          },
          String,
        );
      }
      throw err;
    });

  return { restore, persistChanges, keepCheckpoint, readResumeCheckpoint, isReadingCheckpoint, saveAdapter };
}

/** Why a run found active is not running any more: the page reloaded, or the tab that ran it closed. */
const RELOADED = 'Interrupted: the page was closed or reloaded during this run.';
const TAB_CLOSED = 'Interrupted: the tab that was running it was closed.';

/** A stored run as a tab that does not run it shows it: interrupted if it was active, with its stored checkpoint. */
function restoredRun(r: RunRecord, step: number | undefined, interruption: string): RunRecord {
  // Full fine-tunes live on the GPU only for the session that trained them.
  const weights = r.weights === 'session' ? null : r.weights;
  const restored: RunRecord = isActive(r)
    ? { ...r, weights, status: 'interrupted', stage: null, message: interruption, progress: null, prepare: null }
    : { ...r, weights };
  return { ...restored, ...storedCheckpoint(restored, step) };
}

/** Writes of these fields may say a run needs its checkpoint no more. */
const DROP_FIELDS: Fields<RunRecord> = ['status', 'checkpoint'];
const dropsCheckpoint = (f: keyof RunRecord) => DROP_FIELDS.includes(f);

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
  if (step !== undefined) {
    // The same checkpoint keeps its object: a restored run that did not change is not written again.
    const same = r.checkpoint?.kept && r.checkpoint.step === step;
    return {
      checkpoint: same ? r.checkpoint : { step, bytes: r.checkpoint?.bytes ?? 0, kept: true },
      message: r.message,
    };
  }
  // Not kept (too large) says why there is nothing to resume from; kept but absent: the storage was cleared.
  if (!r.checkpoint?.kept) return { checkpoint: r.checkpoint, message: r.message };
  return {
    checkpoint: null,
    message:
      `${r.message ?? ''} Its checkpoint (step ${r.checkpoint.step}) is missing from this browser's storage, so it cannot resume.`.trim(),
  };
}
