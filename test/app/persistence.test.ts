/**
 * The store's persistence with a fake IndexedDB layer (persist.ts injected): what is saved when (at once on a
 * status change, else debounced), restoring runs, keeping checkpoints and reading one back to resume.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createPersistence, SAVE_DEBOUNCE_MS, type RunStorage } from '../../src/app/persistence';
import type { RunRecord } from '../../src/app/run-record';
import type { RunCheckpointData } from '../../src/worker/protocol';
import { patch, point, progress, record, studioStore } from './fixtures';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function fakeStorage(stored: { runs?: RunRecord[]; steps?: Map<string, number>; checkpoint?: unknown } = {}) {
  return {
    loadRuns: vi.fn(async () => stored.runs ?? []),
    loadAdapters: vi.fn(async () => []),
    checkpointSteps: vi.fn(async () => stored.steps ?? new Map<string, number>()),
    saveRuns: vi.fn(async (_runs: RunRecord[], _drop?: string[]) => {}),
    deleteRuns: vi.fn(async (_ids: string[]) => {}),
    saveAdapter: vi.fn(async () => {}),
    saveCheckpoint: vi.fn(async (_run: RunRecord, _c: RunCheckpointData) => {}),
    loadCheckpoint: vi.fn(async (_id: string): Promise<unknown> => stored.checkpoint),
    deleteCheckpoints: vi.fn(async (_ids: string[]) => {}),
  } satisfies RunStorage;
}

function setup(records: RunRecord[], stored: Parameters<typeof fakeStorage>[0] = {}) {
  const store = studioStore(records);
  const storage = fakeStorage(stored);
  const flushSteps = vi.fn();
  const pageHide: (() => void)[] = [];
  const send = vi.fn();
  const persistence = createPersistence(store, flushSteps, { storage, send, onPageHide: (f) => pageHide.push(f) });
  /** The ids of each saveRuns call's records. */
  const saves = () => storage.saveRuns.mock.calls.map(([runs]) => runs.map((r) => r.config.id));
  return { store, storage, flushSteps, pageHide, send, persistence, saves };
}

describe('persistChanges', () => {
  test('saves everything once, then a metric change after the debounce, a status change at once', () => {
    const { store, persistence, saves, storage } = setup([record('a'), record('b')]);
    persistence.persistChanges();
    expect(saves()).toEqual([['a', 'b']]);
    patch(store, 'a', { points: [point(0)], progress: progress(0) });
    patch(store, 'a', { points: [point(0), point(1)], progress: progress(1) });
    vi.advanceTimersByTime(SAVE_DEBOUNCE_MS - 1);
    expect(saves()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(saves()).toEqual([['a', 'b'], ['a']]);
    // What is stored leaves out the live progress.
    expect(storage.saveRuns.mock.calls[1][0][0]).toMatchObject({ points: [point(0), point(1)], progress: null });
    patch(store, 'b', { status: 'queued' });
    expect(saves()).toEqual([['a', 'b'], ['a'], ['b']]);
  });

  test('an immediate save cancels the queued debounced one (it would fire early for the next change)', () => {
    const { store, persistence, saves } = setup([record('a'), record('b')]);
    persistence.persistChanges();
    patch(store, 'a', { points: [point(0)] }); // queues a save at SAVE_DEBOUNCE_MS
    vi.advanceTimersByTime(100);
    patch(store, 'b', { status: 'queued' }); // saved at once, with a's change
    expect(saves()).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
    vi.advanceTimersByTime(400);
    patch(store, 'a', { points: [point(0), point(1)] }); // its save waits a full debounce from now
    vi.advanceTimersByTime(SAVE_DEBOUNCE_MS - 1);
    expect(saves()).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ]);
    vi.advanceTimersByTime(1);
    expect(saves()).toEqual([['a', 'b'], ['a', 'b'], ['a']]);
    vi.advanceTimersByTime(10 * SAVE_DEBOUNCE_MS);
    expect(saves()).toHaveLength(3);
  });

  test('finished runs without a checkpoint drop the stored one; removed runs are deleted; pagehide saves', () => {
    const { store, persistence, storage, pageHide } = setup([record('a', { status: 'training' }), record('b')]);
    persistence.persistChanges();
    expect(storage.saveRuns.mock.calls[0][1]).toEqual(['b']); // a draft has no checkpoint; an active run keeps its own
    patch(store, 'a', { status: 'done', checkpoint: null });
    expect(storage.saveRuns.mock.calls[1][1]).toEqual(['a']);
    store.setState((s) => ({ runs: { a: s.runs.a }, order: ['a'] }));
    vi.advanceTimersByTime(SAVE_DEBOUNCE_MS);
    expect(storage.deleteRuns.mock.calls.at(-1)).toEqual([['b']]);
    patch(store, 'a', { warnings: ['w'] });
    expect(pageHide).toHaveLength(1);
    pageHide[0]();
    expect(storage.saveRuns.mock.calls.at(-1)![0].map((r) => r.warnings)).toEqual([['w']]);
  });
});

describe('restore', () => {
  test('active runs come back interrupted with their stored checkpoint; orphan checkpoints are deleted', async () => {
    const runs = [
      record('a', { status: 'training', checkpoint: { step: 10, bytes: 99, kept: true }, progress: progress(12) }),
      record('b', { status: 'done', weights: 'session' }),
      record('c', { status: 'failed', message: 'Device lost', checkpoint: { step: 30, bytes: 99, kept: true } }),
    ];
    const { store, persistence, storage, saves } = setup([], {
      runs,
      steps: new Map([
        ['a', 20],
        ['b', 40],
        ['gone', 5],
      ]),
    });
    await persistence.restore();
    const s = store.getState();
    expect(s.restored).toBe(true);
    expect(s.order).toEqual(['a', 'b', 'c']);
    expect(s.runs.a).toMatchObject({
      status: 'interrupted',
      progress: null,
      checkpoint: { step: 20, bytes: 99, kept: true },
    });
    expect(s.runs.b).toMatchObject({ weights: null, checkpoint: null });
    expect(s.runs.c).toMatchObject({
      checkpoint: null,
      message: expect.stringMatching(/^Device lost Its checkpoint \(step 30\) is missing/),
    });
    expect(storage.deleteCheckpoints).toHaveBeenCalledWith(['b', 'gone']);
    // Then everything restored is saved once (the interrupted status included).
    expect(saves()).toEqual([['a', 'b', 'c']]);
  });

  test('unreadable storage says so and still saves from then on', async () => {
    const { store, persistence, storage, saves } = setup([record('a')]);
    storage.loadRuns.mockRejectedValueOnce(new Error('blocked'));
    await persistence.restore();
    expect(store.getState().restored).toBe(true);
    expect(store.toast).toHaveBeenCalledWith('error', 'Past runs could not be read from IndexedDB: blocked');
    expect(saves()).toEqual([['a']]);
  });
});

describe('checkpoints', () => {
  const state = (n: number) => [
    { name: 't', param: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) },
  ];
  const checkpoint = (step: number, n = 4): RunCheckpointData => ({
    step,
    tokens: 256 * step,
    elapsedMs: 10 * step,
    state: state(n),
  });

  test("an active run's checkpoint is stored with its history (steps flushed first), then recorded", async () => {
    const { store, persistence, storage, flushSteps } = setup([
      record('a', { status: 'training' }),
      record('b', { status: 'done' }),
    ]);
    persistence.keepCheckpoint('b', checkpoint(10));
    expect(storage.saveCheckpoint).not.toHaveBeenCalled();
    flushSteps.mockImplementation(() => patch(store, 'a', { points: [point(9)] }));
    persistence.keepCheckpoint('a', checkpoint(10));
    const [stored] = storage.saveCheckpoint.mock.calls[0];
    expect(stored).toMatchObject({
      points: [point(9)],
      checkpoint: { step: 10, bytes: 48, kept: true },
      progress: null,
    });
    expect(store.getState().runs.a.checkpoint).toBeNull();
    await vi.runAllTimersAsync();
    expect(store.getState().runs.a.checkpoint).toEqual({ step: 10, bytes: 48, kept: true });
  });

  test('a failed write says so once per run', async () => {
    const { store, persistence, storage } = setup([record('a', { status: 'training' })]);
    storage.saveCheckpoint.mockRejectedValue(new Error('QuotaExceededError'));
    persistence.keepCheckpoint('a', checkpoint(10));
    persistence.keepCheckpoint('a', checkpoint(20));
    await vi.runAllTimersAsync();
    expect(store.toast).toHaveBeenCalledTimes(1);
    expect(store.toast.mock.calls[0][1]).toMatch(/^Saving a checkpoint of "run a" failed \(QuotaExceededError\)/);
  });

  test('reading one back to resume: intact, damaged or unreadable; the run is marked as reading meanwhile', async () => {
    const { persistence, storage } = setup([], { checkpoint: checkpoint(10) });
    const reading = persistence.readResumeCheckpoint('a', 40);
    expect(persistence.isReadingCheckpoint('a')).toBe(true);
    expect((await reading)?.step).toBe(10);
    expect(persistence.isReadingCheckpoint('a')).toBe(false);
    expect(await persistence.readResumeCheckpoint('a', 10)).toBeNull(); // step out of range
    storage.loadCheckpoint.mockRejectedValueOnce(new Error('gone'));
    expect(await persistence.readResumeCheckpoint('a', 40)).toBeNull();
    expect(persistence.isReadingCheckpoint('a')).toBe(false);
  });
});
