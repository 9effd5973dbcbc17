/**
 * IndexedDB persistence (idb): run configurations and metrics, the trained LoRA adapters (small: rank x
 * (in + out) floats per module), so a reload shows past runs and can still export them, and the latest
 * checkpoint of each unfinished run, so a run cut off by a reload or a lost GPU can resume; experiments (their
 * definition and finished runs, whose adapters sit in the adapters store under "<experiment id>:<run key>").
 * Full fine-tunes' weights are not persisted (they are a whole model).
 * This is the raw IndexedDB layer; when the studio reads and writes through it is persistence.ts. Several tabs
 * write here: record writes hold RECORDS_LOCK and merge this tab's changed fields onto the stored record
 * (tab-merge.ts), so one tab's write does not undo another's.
 */
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
import type { AdapterSnapshot, MethodId, RunCheckpointData } from '../worker/protocol';
import type { ExperimentRecord } from './experiment-record';
import type { RunRecord } from './run-record';
import { exclusive, RECORDS_LOCK } from './tab-locks';
import { mergedRecord, type Fields } from './tab-merge';

export interface StoredCheckpoint extends RunCheckpointData {
  /** The run's id: one checkpoint per run, overwritten by the next. */
  id: string;
}

interface StudioDB extends DBSchema {
  runs: { key: string; value: RunRecord };
  adapters: { key: string; value: { id: string; method: MethodId; adapter: AdapterSnapshot } };
  /** Indexed by step so a reload learns every checkpoint's step without reading the states (MBs each). */
  checkpoints: { key: string; value: StoredCheckpoint; indexes: { step: number } };
  experiments: { key: string; value: ExperimentRecord };
}

const VERSION = 3;

let db: Promise<IDBPDatabase<StudioDB>> | null = null;

function open(): Promise<IDBPDatabase<StudioDB>> {
  db ??= openDB<StudioDB>('lora-studio', VERSION, {
    // Each version only adds stores: upgrading keeps the runs and adapters of earlier releases.
    upgrade(d, oldVersion) {
      if (oldVersion < 1) {
        d.createObjectStore('runs', { keyPath: 'config.id' });
        d.createObjectStore('adapters', { keyPath: 'id' });
      }
      if (oldVersion < 2) d.createObjectStore('checkpoints', { keyPath: 'id' }).createIndex('step', 'step');
      if (oldVersion < 3) d.createObjectStore('experiments', { keyPath: 'id' });
    },
    // A tab with a newer release wants to upgrade: step aside (this tab reopens on its next read or write).
    blocking(_current, _blocked, event) {
      (event.target as IDBDatabase).close();
      db = null;
    },
  });
  return db;
}

export async function loadRuns(): Promise<RunRecord[]> {
  const runs = await (await open()).getAll('runs');
  return runs.sort((a, b) => a.createdAt - b.createdAt);
}

/**
 * Waits for `requests` and the transaction; when it aborts, rejects with the transaction's error (a full storage's
 * QuotaExceededError) rather than the AbortError its requests get.
 */
async function completed<S extends StoreNames<StudioDB>[]>(
  tx: IDBPTransaction<StudioDB, S, 'readwrite'>,
  requests: Promise<unknown>[],
): Promise<void> {
  try {
    await Promise.all([...requests, tx.done]);
  } catch (err) {
    throw tx.error ?? err;
  }
}

/**
 * Saves run records, and deletes the checkpoints of `dropCheckpoints` in the same transaction. A record with an
 * entry in `fields` is a change of those fields only: they are written onto the stored record as it is now (not at
 * all when another tab removed it); one without is written whole (a new run).
 */
export async function saveRuns(
  runs: RunRecord[],
  dropCheckpoints: string[] = [],
  fields?: ReadonlyMap<string, Fields<RunRecord>>,
): Promise<void> {
  if (runs.length === 0 && dropCheckpoints.length === 0) return;
  await exclusive(RECORDS_LOCK, async () => {
    const tx = (await open()).transaction(['runs', 'checkpoints'], 'readwrite');
    const [records, checkpoints] = [tx.objectStore('runs'), tx.objectStore('checkpoints')];
    const save = async (r: RunRecord) => {
      const own = fields?.get(r.config.id);
      if (!own) return records.put(r);
      const stored = await records.get(r.config.id);
      if (stored) await records.put(mergedRecord(stored, r, own));
    };
    await completed(tx, [...runs.map(save), ...dropCheckpoints.map((id) => checkpoints.delete(id))]);
  });
}

/** The stored records of `ids` (absent ones left out): what another tab says it just wrote. */
export async function loadRunsById(ids: string[]): Promise<RunRecord[]> {
  const tx = (await open()).transaction('runs');
  const found = await Promise.all(ids.map((id) => tx.store.get(id)));
  return found.filter((r): r is RunRecord => r !== undefined);
}

export async function deleteRuns(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await exclusive(RECORDS_LOCK, async () => {
    const tx = (await open()).transaction(['runs', 'adapters', 'checkpoints'], 'readwrite');
    const stores = [tx.objectStore('runs'), tx.objectStore('adapters'), tx.objectStore('checkpoints')];
    await completed(
      tx,
      ids.flatMap((id) => stores.map((s) => s.delete(id))),
    );
  });
}

export async function saveAdapter(id: string, method: MethodId, adapter: AdapterSnapshot): Promise<void> {
  await (await open()).put('adapters', { id, method, adapter });
}

export async function loadAdapters(): Promise<{ id: string; method: MethodId; adapter: AdapterSnapshot }[]> {
  return (await open()).getAll('adapters');
}

/**
 * Stores a run's checkpoint and records it (`run.checkpoint`) on the stored run, in one transaction: a reload
 * finds both or neither. Its history is saved before, on its own (persistence.ts), so a checkpoint that does not
 * fit costs no metrics. False when the run is no longer stored (another tab removed it): nothing is written.
 */
export async function saveCheckpoint(run: RunRecord, checkpoint: RunCheckpointData): Promise<boolean> {
  return exclusive(RECORDS_LOCK, async () => {
    const tx = (await open()).transaction(['runs', 'checkpoints'], 'readwrite');
    const [records, checkpoints] = [tx.objectStore('runs'), tx.objectStore('checkpoints')];
    const stored = await records.get(run.config.id);
    if (!stored) return false;
    await completed(tx, [
      records.put({ ...stored, checkpoint: run.checkpoint }),
      checkpoints.put({ ...checkpoint, id: run.config.id }),
    ]);
    return true;
  });
}

/** Whatever is stored under the run's id (undefined when nothing is): the caller checks it is intact. */
export async function loadCheckpoint(id: string): Promise<unknown> {
  return (await open()).get('checkpoints', id);
}

/** Run id -> step of its stored checkpoint, read from the index alone. */
export async function checkpointSteps(): Promise<Map<string, number>> {
  const steps = new Map<string, number>();
  let cursor = await (await open()).transaction('checkpoints').store.index('step').openKeyCursor();
  while (cursor) {
    steps.set(cursor.primaryKey, cursor.key);
    cursor = await cursor.continue();
  }
  return steps;
}

export async function deleteCheckpoints(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const tx = (await open()).transaction('checkpoints', 'readwrite');
  await completed(
    tx,
    ids.map((id) => tx.store.delete(id)),
  );
}

export async function loadExperiments(): Promise<ExperimentRecord[]> {
  const experiments = await (await open()).getAll('experiments');
  return experiments.sort((a, b) => a.createdAt - b.createdAt);
}

/** The stored experiments of `ids` (absent ones left out). */
export async function loadExperimentsById(ids: string[]): Promise<ExperimentRecord[]> {
  const tx = (await open()).transaction('experiments');
  const found = await Promise.all(ids.map((id) => tx.store.get(id)));
  return found.filter((r): r is ExperimentRecord => r !== undefined);
}

export async function saveExperiments(experiments: ExperimentRecord[]): Promise<void> {
  if (experiments.length === 0) return;
  await exclusive(RECORDS_LOCK, async () => {
    const tx = (await open()).transaction('experiments', 'readwrite');
    await completed(
      tx,
      experiments.map((r) => tx.store.put(r)),
    );
  });
}

/** Deletes experiments with their runs' adapters (every adapter key "<id>:..."), in one transaction. */
export async function deleteExperiments(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await exclusive(RECORDS_LOCK, async () => {
    const tx = (await open()).transaction(['experiments', 'adapters'], 'readwrite');
    const [experiments, adapters] = [tx.objectStore('experiments'), tx.objectStore('adapters')];
    // ':' + U+FFFF bounds every key that starts with "<id>:".
    const adaptersOf = (id: string) => IDBKeyRange.bound(`${id}:`, `${id}:\uffff`);
    await completed(
      tx,
      ids.flatMap((id) => [experiments.delete(id), adapters.delete(adaptersOf(id))]),
    );
  });
}
