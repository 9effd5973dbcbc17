/**
 * Experiments in IndexedDB (persist.ts faked): a round trip through a reload (an experiment cut off mid-way comes
 * back interrupted with its finished runs and resumes with exactly those), when saves happen (at once for a status
 * or a finished run, debounced for a step), what is stored, removal, and adapters kept under the run's key.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createExperimentActions } from '../../src/app/experiment-actions';
import {
  createExperimentPersistence,
  EXPERIMENT_SAVE_DEBOUNCE_MS,
  type ExperimentStorage,
} from '../../src/app/experiment-persistence';
import type { ExperimentRecord } from '../../src/app/experiment-record';
import type { AdapterSnapshot, Command } from '../../src/worker/protocol';
import { experimentRecord, plan, runResult } from './experiment-fixtures';
import { studioStore } from './fixtures';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A fake IndexedDB that keeps what is saved (structured clones, as IndexedDB does). */
function fakeDb(initial: ExperimentRecord[] = []) {
  const db = new Map(initial.map((r) => [r.id, structuredClone(r)]));
  const adapters = new Map<string, unknown>();
  const storage = {
    loadExperiments: vi.fn(async () => [...db.values()].map((r) => structuredClone(r))),
    saveExperiments: vi.fn(async (rs: ExperimentRecord[]) => {
      for (const r of rs) db.set(r.id, structuredClone(r));
    }),
    deleteExperiments: vi.fn(async (ids: string[]) => {
      for (const id of ids) db.delete(id);
    }),
    saveAdapter: vi.fn(async (id: string, _method: string, adapter: AdapterSnapshot) => {
      adapters.set(id, adapter);
    }),
  } satisfies ExperimentStorage;
  return { db, adapters, storage };
}

function session(storage: ExperimentStorage) {
  const store = studioStore([]);
  const pageHide: (() => void)[] = [];
  const persistence = createExperimentPersistence(store, { storage, onPageHide: (f) => pageHide.push(f) });
  return { store, persistence, pageHide };
}

const patchExperiment = (store: ReturnType<typeof studioStore>, id: string, p: Partial<ExperimentRecord>) =>
  store.setState((s) => ({ experiments: { ...s.experiments, [id]: { ...s.experiments[id], ...p } } }));

describe('a reload mid-experiment', () => {
  test('comes back interrupted with its finished runs, and Resume sends exactly those as done', async () => {
    const { db, storage } = fakeDb();
    // Session 1: an experiment runs, finishes two runs, and is training the third when the page goes away.
    const one = session(storage);
    await one.persistence.restore();
    const running = experimentRecord('x', {
      status: 'running',
      startedAt: 5,
      modelKey: 'k',
      modelName: 'stories260K',
      datasetName: 'tinyshakespeare.txt',
      datasetDigest: 'd',
      datasetFormat: null,
      plan: plan(),
    });
    one.store.setState({ experiments: { x: running }, experimentOrder: ['x'] });
    const first = runResult('lora', 1e-3, 0);
    const second = runResult('lora', 3e-3, 0);
    patchExperiment(one.store, 'x', { results: [first, second], runMs: [10, 20] });
    patchExperiment(one.store, 'x', {
      current: {
        run: { key: 'gralora|0.001|0', name: 'gralora', method: 'gralora', lr: 1e-3, seed: 0 },
        index: 2,
        total: 8,
        startedAt: 30,
        step: { key: 'gralora|0.001|0', step: 4, steps: 10, loss: 3, phase: null, elapsedMs: 4 },
      },
    });
    one.pageHide.forEach((f) => f());
    await vi.runAllTimersAsync();
    expect(db.get('x')).toMatchObject({ status: 'running', current: null });
    expect(db.get('x')!.results).toHaveLength(2);

    // Session 2: restored as interrupted, with both runs; the live step is gone.
    const two = session(storage);
    await two.persistence.restore();
    const restored = two.store.getState().experiments.x;
    expect(restored).toMatchObject({ status: 'interrupted', current: null, plan: plan() });
    expect(restored.results).toEqual([first, second]);
    expect(two.store.getState().experimentOrder).toEqual(['x']);
    // The interrupted status is written back at once.
    await vi.runAllTimersAsync();
    expect(db.get('x')!.status).toBe('interrupted');

    // Resume on the same model and data: the finished runs go to the worker as done.
    const sent: Command[] = [];
    const actions = createExperimentActions(two.store.getState, two.store.setState, {
      send: (c) => sent.push(c),
      download: vi.fn(),
      confirmModelSwitch: () => true,
      rememberDemo: vi.fn(),
      when: vi.fn(),
    });
    two.store.setState({
      model: { card: { key: 'k', name: 'stories260K' } as never, ready: true, loading: null, error: null, gpuBytes: 0 },
      dataset: {
        preview: { name: 'tinyshakespeare.txt', digest: 'd', format: 'text', columns: {}, override: {} } as never,
        loading: null,
        error: null,
      },
    });
    actions.resumeExperiment('x');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: 'startExperiment', id: 'x', done: [first, second] });
    expect(two.store.getState().experiments.x).toMatchObject({ status: 'queued', results: [first, second] });
  });
});

describe('saves', () => {
  test('a step is debounced; a status or a finished run is saved at once; the live run is never stored', async () => {
    const { storage } = fakeDb();
    const { store, persistence } = session(storage);
    store.setState({ experiments: { x: experimentRecord('x', { status: 'running' }) }, experimentOrder: ['x'] });
    persistence.persistChanges();
    const saves = () => storage.saveExperiments.mock.calls.map(([rs]) => rs.map((r) => r.id));
    expect(saves()).toEqual([['x']]);
    const current = {
      run: { key: 'lora|0.001|0', name: 'lora', method: 'lora' as const, lr: 1e-3, seed: 0 },
      index: 0,
      total: 8,
      startedAt: 0,
      step: null,
    };
    patchExperiment(store, 'x', { current });
    vi.advanceTimersByTime(EXPERIMENT_SAVE_DEBOUNCE_MS - 1);
    expect(saves()).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(saves()).toHaveLength(2);
    expect(storage.saveExperiments.mock.calls[1][0][0].current).toBeNull();
    patchExperiment(store, 'x', { results: [runResult('lora', 1e-3, 0)] });
    expect(saves()).toHaveLength(3);
    patchExperiment(store, 'x', { status: 'done' });
    expect(saves()).toHaveLength(4);
  });

  test('a removed experiment is deleted (with its adapters, by persist.ts); adapters are kept under "<id>:<run key>"', async () => {
    const { storage, adapters } = fakeDb();
    const { store, persistence } = session(storage);
    store.setState({ experiments: { x: experimentRecord('x') }, experimentOrder: ['x'] });
    persistence.persistChanges();
    await persistence.saveAdapter('x', 'lora|0.001|0', 'lora', { format: 'lora' } as AdapterSnapshot);
    expect([...adapters.keys()]).toEqual(['x:lora|0.001|0']);
    store.setState({ experiments: {}, experimentOrder: [] });
    expect(storage.deleteExperiments).toHaveBeenCalledWith(['x']);
  });

  test('unreadable storage is reported, and the studio carries on', async () => {
    const { storage } = fakeDb();
    storage.loadExperiments.mockRejectedValueOnce(new Error('quota'));
    const { store, persistence } = session(storage);
    await persistence.restore();
    expect(store.toast).toHaveBeenCalledWith('error', expect.stringContaining('quota'));
    expect(store.getState().experiments).toEqual({});
  });
});
