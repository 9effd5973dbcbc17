/**
 * Two tabs of the studio over one stored run list: two stores, each with its persistence (persistence.ts), over
 * one in-memory IndexedDB that merges field writes as persist.ts does, talking over a real BroadcastChannel
 * (Node's). A run created, renamed, annotated or removed in one tab shows in the other without a reload; a tab
 * that hears of a write does not write it back (no echo); concurrent changes to one run in both tabs are both
 * kept (no lost update); a tab waiting for the GPU leaves the other tab's active run alone, and interrupts it
 * when it takes over.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { GpuTab } from '../src/app/client';
import { createPersistence, type RunStorage } from '../src/app/persistence';
import type { RunRecord } from '../src/app/run-record';
import { broadcastTabs } from '../src/app/tab-channel';
import { mergedRecord } from '../src/app/tab-merge';
import type { Command } from '../src/worker/protocol';
import { config, patch, point, record, studioStore } from './app/fixtures';

/** IndexedDB's runs and checkpoint index as Maps, with persist.ts's field merge (records cloned, as IDB does). */
function memoryDb(initial: RunRecord[] = [], steps: [string, number][] = []) {
  const runs = new Map(initial.map((r) => [r.config.id, structuredClone(r)]));
  const checkpoints = new Map(steps);
  const storage = {
    loadRuns: async () => [...runs.values()].map((r) => structuredClone(r)).sort((a, b) => a.createdAt - b.createdAt),
    loadRunsById: async (ids: string[]) => ids.flatMap((id) => (runs.has(id) ? [structuredClone(runs.get(id)!)] : [])),
    loadAdapters: async () => [],
    checkpointSteps: async () => new Map(checkpoints),
    saveRuns: vi.fn(
      async (rs: RunRecord[], drop: string[] = [], fields?: ReadonlyMap<string, readonly (keyof RunRecord)[]>) => {
        for (const r of rs) {
          const own = fields?.get(r.config.id);
          const stored = runs.get(r.config.id);
          if (!own) runs.set(r.config.id, structuredClone(r));
          else if (stored) runs.set(r.config.id, structuredClone(mergedRecord(stored, r, own)));
        }
        for (const id of drop) checkpoints.delete(id);
      },
    ),
    deleteRuns: vi.fn(async (ids: string[]) => {
      for (const id of ids) runs.delete(id);
    }),
    saveAdapter: async () => {},
    saveCheckpoint: async () => true,
    loadCheckpoint: async () => undefined,
    deleteCheckpoints: async () => {},
  } satisfies RunStorage;
  return { runs, storage };
}

let channels: { close(): void }[] = [];
let channelName = '';
afterEach(() => {
  for (const c of channels) c.close();
  channels = [];
});

/** One tab: its store and persistence, restored; `ownsGpu` false: another tab's worker has the GPU. */
async function openTab(storage: RunStorage, ownsGpu = true) {
  const store = studioStore([]);
  const tabs = broadcastTabs(channelName);
  channels.push(tabs);
  const sent: Command[] = [];
  let takeOver: (queued: Command[]) => void = () => {};
  const gpu: GpuTab = { decided: async () => ownsGpu, onTakeOver: (l) => void (takeOver = l) };
  const persistence = createPersistence(store, () => {}, {
    storage,
    send: (c) => sent.push(c),
    onPageHide: () => {},
    tabs,
    gpu,
    keepStorage: () => {},
    estimate: async () => null,
  });
  await persistence.restore();
  return { store, sent, persistence, takeOver: (queued: Command[] = []) => takeOver(queued) };
}

const addDraft = (store: ReturnType<typeof studioStore>, r: RunRecord) =>
  store.setState((s) => ({ runs: { ...s.runs, [r.config.id]: r }, order: [...s.order, r.config.id] }));

describe('two tabs', () => {
  test('a run created, renamed and removed in A appears, changes and disappears in B; B writes nothing back', async () => {
    channelName = 'tabs-1';
    const { storage, runs } = memoryDb();
    const a = await openTab(storage);
    const b = await openTab(storage, false);
    const writesBefore = storage.saveRuns.mock.calls.length;

    addDraft(a.store, record('x'));
    await vi.waitFor(() => expect(b.store.getState().order).toEqual(['x']));
    expect(b.store.getState().runs.x.config.name).toBe('run x');

    // A rename is a draft edit: saved after the debounce, then heard.
    patch(a.store, 'x', { config: config('x', { name: 'renamed in A' }) });
    await vi.waitFor(() => expect(b.store.getState().runs.x.config.name).toBe('renamed in A'), { timeout: 3000 });
    expect(runs.get('x')!.config.name).toBe('renamed in A');
    // Every write came from A: hearing does not write (no echo).
    const writers = storage.saveRuns.mock.calls.slice(writesBefore).map(([rs]) => rs.map((r) => r.config.name));
    expect(writers).toEqual([['run x'], ['renamed in A']]);

    a.store.setState((s) => ({ runs: {}, order: s.order.filter((id) => id !== 'x') }));
    await vi.waitFor(() => expect(b.store.getState().order).toEqual([]));
    expect(b.store.getState().runs).toEqual({});
    expect(b.sent).toEqual([{ type: 'deleteRun', id: 'x' }]);
    expect(runs.size).toBe(0);
    expect(storage.deleteRuns).toHaveBeenCalledTimes(1);
  });

  test('metrics from the training tab and notes from the other, at the same time: both kept, stored and shown', async () => {
    channelName = 'tabs-2';
    const { storage, runs } = memoryDb([record('r', { status: 'training', startedAt: 1 })]);
    const a = await openTab(storage);
    // A restored it as interrupted (it owns the GPU and found it active): start it again as A's own run.
    patch(a.store, 'r', { status: 'training', message: null });
    const b = await openTab(storage, false);
    await vi.waitFor(() => expect(b.store.getState().runs.r.status).toBe('training'));

    // In the same moment, from the copies each had: B writes notes, A its steps and a tag. Each writes only the
    // fields it changed, so neither write undoes the other, in storage or in either tab.
    patch(b.store, 'r', { notes: 'lr looks high' });
    patch(a.store, 'r', { points: [point(0), point(1)], tags: ['from A'] });
    const both = { notes: 'lr looks high', tags: ['from A'], points: [point(0), point(1)] };
    expect(runs.get('r')).toMatchObject(both);
    await vi.waitFor(() => {
      expect(a.store.getState().runs.r).toMatchObject(both);
      expect(b.store.getState().runs.r).toMatchObject(both);
    });
    // The training tab's live progress is its own: hearing B's write does not clear it.
    patch(a.store, 'r', { progress: { stage: 'Training', step: 2, steps: 40, etaMs: 1, gpuBytes: 1 } });
    patch(b.store, 'r', { tags: ['sweep'] });
    await vi.waitFor(() => expect(a.store.getState().runs.r.tags).toEqual(['sweep']));
    expect(a.store.getState().runs.r.progress?.step).toBe(2);
    expect(a.store.getState().runs.r.status).toBe('training');
  });

  test("a tab waiting for the GPU keeps the other tab's active run as it is, and interrupts it on taking over", async () => {
    channelName = 'tabs-3';
    const training = record('t', { status: 'training', checkpoint: { step: 10, bytes: 48, kept: true } });
    const { storage, runs } = memoryDb([training, record('d')], [['t', 10]]);
    const b = await openTab(storage, false);
    expect(b.store.getState().runs.t).toMatchObject({ status: 'training', checkpoint: { step: 10 } });
    await new Promise((r) => setTimeout(r, 20));
    expect(storage.saveRuns).not.toHaveBeenCalled(); // nothing restored here changed
    expect(b.sent).toEqual([]); // no adapters sent to a worker that does not run yet

    // The training tab closes; B gets the GPU. A run B queued meanwhile is its own, not interrupted.
    addDraft(b.store, record('q', { status: 'queued' }));
    b.takeOver([{ type: 'startRun', config: config('q') }]);
    await vi.waitFor(() => expect(b.store.getState().runs.t.status).toBe('interrupted'));
    expect(b.store.getState().runs.t).toMatchObject({
      message: 'Interrupted: the tab that was running it was closed.',
      checkpoint: { step: 10, bytes: 48, kept: true },
    });
    expect(b.store.getState().runs.q.status).toBe('queued');
    await vi.waitFor(() => expect(runs.get('t')!.status).toBe('interrupted'));
  });

  test('a run removed in one tab while the other saves it is not brought back', async () => {
    channelName = 'tabs-4';
    const { storage, runs } = memoryDb([record('z', { status: 'done' })]);
    const a = await openTab(storage);
    const b = await openTab(storage);
    b.store.setState({ runs: {}, order: [] });
    patch(a.store, 'z', { notes: 'written after the removal' });
    await vi.waitFor(() => expect(a.store.getState().runs.z).toBeUndefined());
    expect(runs.has('z')).toBe(false);
  });
});
