/** A studio state for the store's modules (reducer, persistence) without React, a worker, IndexedDB or a DOM. */
import { vi } from 'vitest';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { newRecord, type RunRecord } from '../../src/app/run-record';
import { initialStudioData, type StudioState } from '../../src/app/store';
import type { RunConfig, RunProgress, StepPoint } from '../../src/worker/protocol';

export function config(id: string, patch: Partial<RunConfig> = {}): RunConfig {
  return {
    id,
    name: `run ${id}`,
    method: 'lora',
    rank: 8,
    alpha: 16,
    targets: 'qv',
    lr: 2e-4,
    steps: 40,
    batch: 4,
    seq: 64,
    warmupSteps: 0,
    valExamples: 10,
    evalEvery: 10,
    seed: 0,
    ...patch,
  };
}

export function record(id: string, patch: Partial<RunRecord> = {}): RunRecord {
  return { ...newRecord(config(id)), ...patch };
}

export function point(step: number): StepPoint {
  return {
    step,
    loss: 5 - step / 10,
    lr: 2e-4,
    gradNorm: 1,
    tokensPerSecond: 100,
    tokens: 256 * (step + 1),
    elapsedMs: 10 * (step + 1),
  };
}

export function progress(step: number, stage = 'Training'): RunProgress {
  return { stage, step: step + 1, steps: 40, etaMs: 1000, gpuBytes: 1 << 20 };
}

/** The studio's state with `records` as its runs; the actions are not there, but `toast` (a mock). */
export function studioStore(records: RunRecord[]): StoreApi<StudioState> & { toast: ReturnType<typeof vi.fn> } {
  const toast = vi.fn();
  const store = createStore<StudioState>()(
    () =>
      ({
        ...initialStudioData(),
        runs: Object.fromEntries(records.map((r) => [r.config.id, r])),
        order: records.map((r) => r.config.id),
        toast,
      }) as unknown as StudioState,
  );
  return Object.assign(store, { toast });
}

/** Patches a run's record as the store's actions do (a new record object). */
export function patch(store: StoreApi<StudioState>, id: string, p: Partial<RunRecord>) {
  store.setState((s) => ({ runs: { ...s.runs, [id]: { ...s.runs[id], ...p } } }));
}
