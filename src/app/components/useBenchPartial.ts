/**
 * The benchmark's rows as they arrive (the worker's benchPartial events), so the panel fills in while it runs.
 * The store keeps only the final result; the partial one lives here, next to the only panel that shows it.
 */
import { useSyncExternalStore } from 'react';
import type { BenchResult } from '../../worker/protocol';
import { listen } from '../client';

let latest: BenchResult | null = null;
const subscribers = new Set<() => void>();

function set(result: BenchResult | null) {
  latest = result;
  for (const notify of subscribers) notify();
}

// Subscribed once, when the panel's module loads: no event of a run can arrive before that.
listen((e) => {
  if (e.type === 'benchPartial') set(e.result);
});

/** Forgets the previous run's rows (call as a new run starts). */
export function clearBenchPartial(): void {
  set(null);
}

export function useBenchPartial(): BenchResult | null {
  return useSyncExternalStore(
    (notify) => {
      subscribers.add(notify);
      return () => subscribers.delete(notify);
    },
    () => latest,
  );
}
