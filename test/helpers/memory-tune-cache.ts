/**
 * A stand-in for src/worker/tune-cache in node: the worker keeps the matmul tune in IndexedDB, which node has none of.
 * Test files that run the worker mock the module with it (vi.mock only applies from the test file itself):
 *   vi.mock('../src/worker/tune-cache', () => import('./helpers/memory-tune-cache'));
 */
import type { TuneCache } from '../../src/kernels/matmul-tune';

/** One map per test file (each file gets its own module instance), as the IndexedDB store is one per origin. */
const memory = new Map<string, string>();

export function browserTuneCache(): TuneCache {
  return {
    get: async (key: string) => memory.get(key),
    set: async (key: string, value: string) => void memory.set(key, value),
  };
}
