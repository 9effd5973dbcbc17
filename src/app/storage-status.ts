/**
 * What the browser says about the studio's storage, for the Storage panel: how much the site uses of what it may
 * use, and whether its data is persistent (kept under storage pressure) or may be evicted; and the one request to
 * make it persistent (navigator.storage.persist()), made once per page when there are runs worth keeping.
 */
import { create } from 'zustand';
import { storageUse, type StorageUse } from './storage-quota';

export interface StorageStatus {
  use: StorageUse | null;
  /** true: the browser keeps the studio's data; false: it may evict it when space runs low; null: it cannot say. */
  persisted: boolean | null;
}

export const useStorageStatus = create<StorageStatus>(() => ({ use: null, persisted: null }));

/** The part of navigator.storage about persistence (a fake in tests). */
export type PersistApi = Pick<StorageManager, 'persist' | 'persisted'>;

const persistApi = (): PersistApi | null => {
  const storage = globalThis.navigator?.storage;
  // Older browsers and insecure origins have navigator.storage without these.
  return typeof storage?.persist === 'function' && typeof storage.persisted === 'function' ? storage : null;
};

/** Whether the data is persistent now (null: the browser cannot say). */
export async function isPersisted(api = persistApi()): Promise<boolean | null> {
  if (!api) return null;
  try {
    return await api.persisted();
  } catch {
    return null;
  }
}

/** Asks for persistent storage unless it already is; the browser may grant it silently, ask, or refuse. */
export async function askToPersist(api = persistApi()): Promise<boolean | null> {
  if (!api) return null;
  try {
    return (await api.persisted()) || (await api.persist());
  } catch {
    return null;
  }
}

let asked: Promise<boolean | null> | null = null;

/** askToPersist once per page (the first saved run, or runs found at load), its answer shown in the panel. */
export function keepStorage(): Promise<boolean | null> {
  asked ??= askToPersist().then((persisted) => {
    useStorageStatus.setState({ persisted });
    return persisted;
  });
  return asked;
}

/** Reads the usage and persistence again (the panel does on opening and after each deletion). */
export async function refreshStorageStatus(): Promise<void> {
  const [use, persisted] = await Promise.all([storageUse(), isPersisted()]);
  useStorageStatus.setState({ use, persisted });
}
