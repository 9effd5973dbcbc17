/**
 * Run management through the store: the actions (run-actions.ts) on a studio state without a worker, and notes,
 * tags and the archive surviving a reload: saved at once through persistence.ts into an in-memory stand-in for
 * IndexedDB, then restored into a fresh store.
 */
import { describe, expect, test, vi } from 'vitest';
import { createPersistence, type RunStorage } from '../src/app/persistence';
import { createRunActions } from '../src/app/run-actions';
import { runConfigJson } from '../src/app/run-config-json';
import { newRecord, upgradeRecord, type RunRecord } from '../src/app/run-record';
import type { RunCheckpointData, RunConfig } from '../src/worker/protocol';
import { config, record, studioStore } from './app/fixtures';

/** IndexedDB's runs store as a Map: what saveRuns puts, loadRuns gives back (records are cloned, as IDB does). */
function memoryStorage(db = new Map<string, RunRecord>()) {
  return {
    db,
    loadRuns: async () => [...db.values()].map((r) => structuredClone(r)).sort((a, b) => a.createdAt - b.createdAt),
    loadAdapters: async () => [],
    checkpointSteps: async () => new Map<string, number>(),
    saveRuns: vi.fn(async (runs: RunRecord[], _drop?: string[]) => {
      for (const r of runs) db.set(r.config.id, structuredClone(r));
    }),
    deleteRuns: async (ids: string[]) => {
      for (const id of ids) db.delete(id);
    },
    saveAdapter: async () => {},
    saveCheckpoint: async (_run: RunRecord, _c: RunCheckpointData) => {},
    loadCheckpoint: async () => undefined,
    deleteCheckpoints: async () => {},
  } satisfies RunStorage & { db: Map<string, RunRecord> };
}

/** A studio state with `records` and the run actions, over the store's helpers as store.ts passes them. */
function studio(records: RunRecord[]) {
  const store = studioStore(records);
  const removed: string[] = [];
  const addRecords = (configs: RunConfig[]) =>
    store.setState((s) => ({
      runs: { ...s.runs, ...Object.fromEntries(configs.map((c) => [c.id, newRecord(c)])) },
      order: [...s.order, ...configs.map((c) => c.id)],
    }));
  const uniqueName = (name: string) =>
    Object.values(store.getState().runs).some((r) => r.config.name === name) ? `${name} (2)` : name;
  const actions = createRunActions(store.getState, store.setState, { addRecords, uniqueName });
  const removeRun = (id: string) => {
    removed.push(id);
    store.setState((s) => {
      const runs = { ...s.runs };
      delete runs[id];
      return { runs, order: s.order.filter((x) => x !== id) };
    });
  };
  store.setState({ ...actions, removeRun });
  return { store, actions: store.getState(), removed };
}

describe('run actions', () => {
  test('tags are cleaned; notes are kept; archiving skips queued and training runs; restoring brings runs back', () => {
    const { store, actions } = studio([record('a', { status: 'done' }), record('b', { status: 'training' })]);
    actions.setRunTags('a', [' baseline', 'Tiny', 'tiny', '']);
    actions.setRunNotes('a', 'first try');
    expect(store.getState().runs.a).toMatchObject({ tags: ['baseline', 'Tiny'], notes: 'first try' });
    actions.setRunsArchived(['a', 'b'], true);
    expect(store.getState().runs.a.archived).toBe(true);
    expect(store.getState().runs.b.archived).toBe(false);
    actions.setRunsArchived(['a'], false);
    expect(store.getState().runs.a.archived).toBe(false);
  });

  test('clearDrafts removes every draft and nothing else; removeRuns removes the ones given', () => {
    const { store, actions, removed } = studio([
      record('a'),
      record('b', { status: 'done' }),
      record('c'),
      record('d', { status: 'failed' }),
    ]);
    actions.clearDrafts();
    expect(removed).toEqual(['a', 'c']);
    expect(store.getState().order).toEqual(['b', 'd']);
    actions.removeRuns(['d']);
    expect(store.getState().order).toEqual(['b']);
  });

  test('a preset: the method with its usual learning rate; an import: a new draft, or the problems', () => {
    const { store, actions } = studio([record('a', { status: 'done' })]);
    actions.addPresetRun('gralora');
    const preset = store.getState().runs[store.getState().order[1]];
    expect(preset.status).toBe('draft');
    expect(preset.config).toMatchObject({ method: 'gralora', lr: 1e-3, name: 'GraLoRA q,v r=8 k=2' });

    const source = config('src', { name: 'run a', method: 'gora', rank: 4, extras: { goraSteps: 8 } });
    expect(actions.importRunConfig(runConfigJson(source))).toEqual([]);
    const order = store.getState().order;
    expect(order).toHaveLength(3);
    const imported = store.getState().runs[order[2]];
    // A new id, a name not taken ("run a" is the fixture's first run), the file's settings.
    expect(imported.config.id).not.toBe('src');
    expect(imported.config).toMatchObject({ name: 'run a (2)', method: 'gora', rank: 4, extras: { goraSteps: 8 } });
    expect(imported.status).toBe('draft');

    expect(actions.importRunConfig('{"format": "lora-studio-run", "version": 1, "settings": {"steps": 0}}')).toEqual([
      '"steps" (Steps) must be a whole number of at least 1 (got 0).',
    ]);
    expect(store.getState().order).toHaveLength(3);
  });
});

describe('notes, tags and the archive across a reload', () => {
  test('saved at once (no debounce), read back into a fresh store', async () => {
    vi.useFakeTimers();
    try {
      const storage = memoryStorage();
      const before = studio([record('a', { status: 'done' }), record('b', { status: 'done' }), record('c')]);
      const saving = createPersistence(before.store, () => {}, { storage, send: () => {}, onPageHide: () => {} });
      saving.persistChanges();
      storage.saveRuns.mockClear();

      before.actions.setRunTags('a', ['baseline', 'tiny']);
      before.actions.setRunNotes('a', 'lr too high?');
      before.actions.setRunsArchived(['b'], true);
      // Each edit was written at once: a reload right after loses nothing.
      expect(storage.saveRuns).toHaveBeenCalledTimes(3);
      await vi.runAllTimersAsync();

      const after = studio([]);
      await createPersistence(after.store, () => {}, { storage, send: () => {}, onPageHide: () => {} }).restore();
      const s = after.store.getState();
      expect(s.order).toEqual(['a', 'b', 'c']);
      expect(s.runs.a).toMatchObject({ tags: ['baseline', 'tiny'], notes: 'lr too high?', archived: false });
      expect(s.runs.b).toMatchObject({ tags: [], notes: '', archived: true });
      expect(s.runs.c).toMatchObject({ status: 'draft', archived: false });
    } finally {
      vi.useRealTimers();
    }
  });

  test('records saved before these fields existed read as untagged, without notes, not archived', () => {
    const { notes: _n, tags: _t, archived: _a, weightStorage: _w, ...old } = record('a', { status: 'done' });
    expect(upgradeRecord(old as RunRecord)).toMatchObject({
      notes: '',
      tags: [],
      archived: false,
      weightStorage: null,
    });
  });
});
