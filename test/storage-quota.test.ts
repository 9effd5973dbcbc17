/**
 * A full storage, with a fake IndexedDB layer that throws QuotaExceededError (persist.ts injected into
 * persistence.ts): the message says what was not saved, how much the site uses of what it may use, and what to do;
 * a checkpoint that does not fit costs no metrics (they are written first, on their own); refused run changes are
 * written again with the next save. Also: the Storage panel's checkpoint list and deletion, and the request for
 * persistent storage.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createPersistence, type RunStorage } from '../src/app/persistence';
import type { RunRecord } from '../src/app/run-record';
import { storedCheckpoints, withoutCheckpoints } from '../src/app/storage-checkpoints';
import { isQuotaError, quotaText } from '../src/app/storage-quota';
import { askToPersist } from '../src/app/storage-status';
import type { RunCheckpointData } from '../src/worker/protocol';
import { patch, point, record, studioStore } from './app/fixtures';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const quotaError = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError');
const MiB = 2 ** 20;

/** A storage that keeps records until told it is full: then every write throws QuotaExceededError. */
function fullableStorage() {
  const runs = new Map<string, RunRecord>();
  const state = { full: false };
  const refuse = () => {
    if (state.full) throw quotaError();
  };
  const storage = {
    loadRuns: async () => [...runs.values()],
    loadAdapters: async () => [],
    checkpointSteps: async () => new Map<string, number>(),
    saveRuns: vi.fn(async (rs: RunRecord[], _drop?: string[], _fields?: ReadonlyMap<string, readonly string[]>) => {
      refuse();
      for (const r of rs) runs.set(r.config.id, structuredClone(r));
    }),
    deleteRuns: async () => {},
    saveAdapter: vi.fn(async () => refuse()),
    saveCheckpoint: vi.fn(async (_run: RunRecord, _c: RunCheckpointData) => {
      // A checkpoint is MBs: it no longer fits while small record writes still do.
      throw quotaError();
    }),
    loadCheckpoint: async () => undefined,
    deleteCheckpoints: async () => {},
  } satisfies RunStorage;
  return { storage, runs, state };
}

function setup(records: RunRecord[]) {
  const store = studioStore(records);
  const { storage, runs, state } = fullableStorage();
  const persistence = createPersistence(store, () => {}, {
    storage,
    send: () => {},
    onPageHide: () => {},
    keepStorage: () => {},
    estimate: async () => ({ usage: 49 * MiB, quota: 50 * MiB }),
  });
  return { store, storage, runs, state, persistence };
}

const checkpoint = (step: number): RunCheckpointData => ({
  step,
  tokens: 256 * step,
  elapsedMs: 10 * step,
  state: [{ name: 't', param: new Float32Array(4), m: new Float32Array(4), v: new Float32Array(4) }],
});

describe('a full storage', () => {
  test('QuotaExceededError is recognized as a request error and as the reason a transaction aborted', () => {
    expect(isQuotaError(quotaError())).toBe(true);
    expect(isQuotaError(new DOMException('', 'NS_ERROR_DOM_QUOTA_REACHED'))).toBe(true);
    expect(isQuotaError({ name: 'AbortError', error: quotaError() })).toBe(true);
    expect(isQuotaError(new Error('failed', { cause: quotaError() }))).toBe(true);
    expect(isQuotaError(new DOMException('', 'AbortError'))).toBe(false);
    expect(isQuotaError(new Error('QuotaExceededError'))).toBe(false);
    expect(isQuotaError(null)).toBe(false);
  });

  test('a checkpoint that does not fit: the metrics are saved first, and the message says what and how full', async () => {
    const { store, storage, runs, persistence } = setup([record('a', { status: 'training' })]);
    persistence.persistChanges();
    patch(store, 'a', { points: [point(0), point(1), point(2)] }); // still waiting for the debounce
    persistence.keepCheckpoint('a', checkpoint(3));
    await vi.runAllTimersAsync();
    // The steps before the checkpoint were written on their own, before the checkpoint was tried.
    expect(storage.saveRuns.mock.invocationCallOrder.at(-1)!).toBeLessThan(
      storage.saveCheckpoint.mock.invocationCallOrder[0],
    );
    expect(runs.get('a')!.points).toHaveLength(3);
    // It does not claim a checkpoint it has not got.
    expect(store.getState().runs.a.checkpoint).toBeNull();
    expect(store.toast).toHaveBeenCalledTimes(1);
    const [kind, text] = store.toast.mock.calls[0];
    expect(kind).toBe('error');
    expect(text).toBe(
      `The checkpoint of "run a" at step 3 did not fit in this browser's storage (this site uses 49.0 MiB of the 50.0 MiB the browser allows it). Its metrics are saved; after a reload it can resume only from an earlier checkpoint, if one was stored. To make room, delete the checkpoints of stopped runs under Storage at the bottom of the page, or remove runs you no longer need.`,
    );
  });

  test('run changes the storage refused are written again with the next save', async () => {
    const { store, storage, runs, state, persistence } = setup([record('a', { status: 'done' })]);
    persistence.persistChanges();
    state.full = true;
    patch(store, 'a', { notes: 'first note' });
    await vi.runAllTimersAsync();
    expect(store.toast.mock.calls[0][1]).toMatch(
      /^Changes to "run a" did not fit in this browser's storage \(this site uses 49\.0 MiB/,
    );
    expect(store.toast.mock.calls[0][1]).toContain(
      'They stay on this page, and the studio tries again with the next change.',
    );
    expect(runs.get('a')!.notes).toBe('');

    state.full = false; // the user deleted checkpoints
    patch(store, 'a', { tags: ['kept'] });
    await vi.runAllTimersAsync();
    expect(runs.get('a')).toMatchObject({ notes: 'first note', tags: ['kept'] });
    const [, , fields] = storage.saveRuns.mock.calls.at(-1)!;
    expect([...fields!.get('a')!].sort()).toEqual(['notes', 'tags']);
  });

  test("a finished run's adapter that does not fit says to export it now", async () => {
    const { store, state, persistence } = setup([record('a', { status: 'done' })]);
    state.full = true;
    await expect(persistence.saveAdapter('a', 'lora', { format: 'lora' } as never)).rejects.toThrow();
    await vi.runAllTimersAsync();
    expect(store.toast.mock.calls[0][1]).toMatch(/^The adapter of "run a" did not fit .* Export it now/);
  });

  test('without an estimate the message leaves the numbers out', () => {
    expect(quotaText('The run list', null, 'Nothing was lost.')).toBe(
      "The run list did not fit in this browser's storage. Nothing was lost. To make room, delete the checkpoints of stopped runs under Storage at the bottom of the page, or remove runs you no longer need.",
    );
  });
});

describe('the Storage panel', () => {
  const kept = (step: number, bytes: number) => ({ step, bytes, kept: true });
  const runs = {
    i: record('i', { status: 'interrupted', checkpoint: kept(10, 3 * MiB), message: 'Interrupted.' }),
    t: record('t', { status: 'training', checkpoint: kept(20, 3 * MiB) }),
    f: record('f', { status: 'failed', checkpoint: kept(5, MiB) }),
    n: record('n', { status: 'interrupted', checkpoint: { step: 5, bytes: 900 * MiB, kept: false } }),
    d: record('d', { status: 'done' }),
  };
  const order = ['d', 'i', 't', 'f', 'n'];

  test('lists stored checkpoints with their sizes; those of active runs cannot be deleted', () => {
    expect(storedCheckpoints(runs, order)).toEqual([
      { id: 'i', name: 'run i', status: 'interrupted', step: 10, steps: 40, bytes: 3 * MiB, deletable: true },
      { id: 't', name: 'run t', status: 'training', step: 20, steps: 40, bytes: 3 * MiB, deletable: false },
      { id: 'f', name: 'run f', status: 'failed', step: 5, steps: 40, bytes: MiB, deletable: true },
    ]);
  });

  test('deleting them: the records say so, and the next save deletes the stored state with them', async () => {
    const store = studioStore(Object.values(runs));
    const { storage } = fullableStorage();
    const persistence = createPersistence(store, () => {}, { storage, send: () => {}, onPageHide: () => {} });
    persistence.persistChanges();
    store.setState((s) => ({ runs: withoutCheckpoints(s.runs, ['i', 't', 'f']) }));
    expect(store.getState().runs.t.checkpoint).toEqual(kept(20, 3 * MiB)); // training: it keeps its own
    expect(store.getState().runs.i).toMatchObject({
      checkpoint: null,
      message:
        'Interrupted. Its checkpoint (step 10) was deleted to free storage, so it cannot resume; "Run again" starts it over.',
    });
    await vi.runAllTimersAsync();
    const [saved, dropped] = storage.saveRuns.mock.calls.at(-1)!;
    expect(saved.map((r) => r.config.id)).toEqual(['i', 'f']);
    expect(dropped).toEqual(['i', 'f']);
  });
});

describe('persistent storage', () => {
  test('asked once unless already granted; the answer is what the browser says', async () => {
    const granted = { persisted: vi.fn(async () => true), persist: vi.fn(async () => true) };
    expect(await askToPersist(granted)).toBe(true);
    expect(granted.persist).not.toHaveBeenCalled();
    const refused = { persisted: vi.fn(async () => false), persist: vi.fn(async () => false) };
    expect(await askToPersist(refused)).toBe(false);
    expect(refused.persist).toHaveBeenCalledTimes(1);
    expect(await askToPersist(null)).toBeNull();
    const broken = { persisted: vi.fn(async () => Promise.reject(new Error('insecure'))), persist: vi.fn() };
    expect(await askToPersist(broken)).toBeNull();
  });
});
