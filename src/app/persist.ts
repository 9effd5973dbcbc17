/**
 * IndexedDB persistence (idb): run configurations and metrics, the trained LoRA adapters (small: rank x
 * (in + out) floats per module), so a reload shows past runs and can still export them, and the latest
 * checkpoint of each unfinished run, so a run cut off by a reload or a lost GPU can resume; experiments (their
 * definition and finished runs, whose adapters sit in the adapters store under "<experiment id>:<run key>").
 * Full fine-tunes' weights are not persisted (they are a whole model).
 * This is the raw IndexedDB layer; when the studio reads and writes through it is persistence.ts.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AdapterSnapshot, MethodId, RunCheckpointData } from '../worker/protocol';
import type { ExperimentRecord } from './experiment-record';
import type { RunRecord } from './run-record';

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

/** Saves run records, and deletes the checkpoints of `dropCheckpoints` in the same transaction. */
export async function saveRuns(runs: RunRecord[], dropCheckpoints: string[] = []): Promise<void> {
  if (runs.length === 0 && dropCheckpoints.length === 0) return;
  const tx = (await open()).transaction(['runs', 'checkpoints'], 'readwrite');
  const [records, checkpoints] = [tx.objectStore('runs'), tx.objectStore('checkpoints')];
  await Promise.all([
    ...runs.map((r) => records.put(r)),
    ...dropCheckpoints.map((id) => checkpoints.delete(id)),
    tx.done,
  ]);
}

export async function deleteRuns(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const tx = (await open()).transaction(['runs', 'adapters', 'checkpoints'], 'readwrite');
  const stores = [tx.objectStore('runs'), tx.objectStore('adapters'), tx.objectStore('checkpoints')];
  await Promise.all([...ids.flatMap((id) => stores.map((s) => s.delete(id))), tx.done]);
}

export async function saveAdapter(id: string, method: MethodId, adapter: AdapterSnapshot): Promise<void> {
  await (await open()).put('adapters', { id, method, adapter });
}

export async function loadAdapters(): Promise<{ id: string; method: MethodId; adapter: AdapterSnapshot }[]> {
  return (await open()).getAll('adapters');
}

/** The checkpoint and the run's history up to it, in one transaction: a reload finds both or neither. */
export async function saveCheckpoint(run: RunRecord, checkpoint: RunCheckpointData): Promise<void> {
  const tx = (await open()).transaction(['runs', 'checkpoints'], 'readwrite');
  await Promise.all([
    tx.objectStore('runs').put(run),
    tx.objectStore('checkpoints').put({ ...checkpoint, id: run.config.id }),
    tx.done,
  ]);
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
  await Promise.all([...ids.map((id) => tx.store.delete(id)), tx.done]);
}

export async function loadExperiments(): Promise<ExperimentRecord[]> {
  const experiments = await (await open()).getAll('experiments');
  return experiments.sort((a, b) => a.createdAt - b.createdAt);
}

export async function saveExperiments(experiments: ExperimentRecord[]): Promise<void> {
  if (experiments.length === 0) return;
  const tx = (await open()).transaction('experiments', 'readwrite');
  await Promise.all([...experiments.map((r) => tx.store.put(r)), tx.done]);
}

/** Deletes experiments with their runs' adapters (every adapter key "<id>:..."), in one transaction. */
export async function deleteExperiments(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const tx = (await open()).transaction(['experiments', 'adapters'], 'readwrite');
  const [experiments, adapters] = [tx.objectStore('experiments'), tx.objectStore('adapters')];
  // ':' + U+FFFF bounds every key that starts with "<id>:".
  const adaptersOf = (id: string) => IDBKeyRange.bound(`${id}:`, `${id}:\uffff`);
  await Promise.all([...ids.flatMap((id) => [experiments.delete(id), adapters.delete(adaptersOf(id))]), tx.done]);
}
