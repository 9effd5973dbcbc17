/**
 * The matmul autotune's results between visits, in the worker (which has IndexedDB but no localStorage):
 * a small database of its own, so the studio's run database never migrates for it.
 */
import { openDB } from 'idb';
import type { TuneCache } from '../kernels/matmul-tune';

const STORE = 'tuning';

export function browserTuneCache(): TuneCache {
  const db = openDB('lora-studio-device', 1, {
    upgrade(d) {
      d.createObjectStore(STORE);
    },
  });
  return {
    get: async (key) => (await (await db).get(STORE, key)) as string | undefined,
    set: async (key, value) => void (await (await db).put(STORE, value, key)),
  };
}
