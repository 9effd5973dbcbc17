/**
 * IndexedDB persistence (idb): run configurations and metrics, and the trained LoRA adapters (small:
 * rank x (in + out) floats per module), so a reload shows past runs and can still export them.
 * Full fine-tunes' weights are not persisted (they are a whole model).
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { AdapterSnapshot, MethodId } from '../worker/protocol';
import type { RunRecord } from './store';

interface StudioDB extends DBSchema {
  runs: { key: string; value: RunRecord };
  adapters: { key: string; value: { id: string; method: MethodId; adapter: AdapterSnapshot } };
}

let db: Promise<IDBPDatabase<StudioDB>> | null = null;

function open(): Promise<IDBPDatabase<StudioDB>> {
  db ??= openDB<StudioDB>('lora-studio', 1, {
    upgrade(d) {
      d.createObjectStore('runs', { keyPath: 'config.id' });
      d.createObjectStore('adapters', { keyPath: 'id' });
    },
  });
  return db;
}

export async function loadRuns(): Promise<RunRecord[]> {
  const runs = await (await open()).getAll('runs');
  return runs.sort((a, b) => a.createdAt - b.createdAt);
}

export async function saveRuns(runs: RunRecord[]): Promise<void> {
  if (runs.length === 0) return;
  const tx = (await open()).transaction('runs', 'readwrite');
  await Promise.all([...runs.map((r) => tx.store.put(r)), tx.done]);
}

export async function deleteRuns(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const tx = (await open()).transaction(['runs', 'adapters'], 'readwrite');
  await Promise.all([...ids.flatMap((id) => [tx.objectStore('runs').delete(id), tx.objectStore('adapters').delete(id)]), tx.done]);
}

export async function saveAdapter(id: string, method: MethodId, adapter: AdapterSnapshot): Promise<void> {
  await (await open()).put('adapters', { id, method, adapter });
}

export async function loadAdapters(): Promise<{ id: string; method: MethodId; adapter: AdapterSnapshot }[]> {
  return (await open()).getAll('adapters');
}
