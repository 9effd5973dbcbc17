/**
 * UI choices across reloads (ui-prefs.ts): the run list's view, filters and grouping, and the playground's
 * decoding settings, written to a fake localStorage and read back field by field (bad fields take defaults).
 */
import { describe, expect, test } from 'vitest';
import { NO_FILTER, NOT_STARTED } from '../src/app/run-filter';
import { initialStudioData } from '../src/app/store';
import {
  followPlaygroundPrefs,
  loadRunListPrefs,
  playgroundPrefsOf,
  RUN_LIST_DEFAULTS,
  runListPrefsOf,
  saveRunListPrefs,
  storedPlaygroundPrefs,
  type PrefStorage,
} from '../src/app/ui-prefs';
import { studioStore } from './app/fixtures';

/** A localStorage stand-in that counts its writes. */
function memoryStorage(
  entries: Record<string, string> = {},
): PrefStorage & { map: Map<string, string>; writes: number } {
  const map = new Map(Object.entries(entries));
  return {
    map,
    writes: 0,
    getItem: (key) => map.get(key) ?? null,
    setItem(key, value) {
      this.writes++;
      map.set(key, value);
    },
  };
}

describe('the run list', () => {
  test('its view, filters and grouping are saved and read back', () => {
    const storage = memoryStorage();
    const prefs = {
      filter: { view: 'archived' as const, model: 'stories260K', dataset: NOT_STARTED, tag: 'baseline' },
      grouping: 'dataset' as const,
    };
    saveRunListPrefs(prefs, storage);
    expect(loadRunListPrefs(storage)).toEqual(prefs);
  });

  test('nothing stored, or something unreadable: the defaults', () => {
    expect(loadRunListPrefs(memoryStorage())).toEqual(RUN_LIST_DEFAULTS);
    expect(loadRunListPrefs(memoryStorage({ 'lora-studio:run-list': '{not json' }))).toEqual(RUN_LIST_DEFAULTS);
    expect(loadRunListPrefs(null)).toEqual(RUN_LIST_DEFAULTS);
    const throwing: PrefStorage = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
    };
    expect(loadRunListPrefs(throwing)).toEqual(RUN_LIST_DEFAULTS);
    expect(() => saveRunListPrefs(RUN_LIST_DEFAULTS, throwing)).not.toThrow();
  });

  test('each bad field takes its default, the good ones stay', () => {
    expect(
      runListPrefsOf({ filter: { view: 'trash', model: 'gpt2', dataset: 7, tag: '' }, grouping: 'by-colour' }),
    ).toEqual({ filter: { ...NO_FILTER, model: 'gpt2' }, grouping: 'none' });
    expect(runListPrefsOf([1, 2])).toEqual(RUN_LIST_DEFAULTS);
  });
});

describe('the playground', () => {
  const defaults = playgroundPrefsOf(initialStudioData().playground);

  test('settings with a bad field: that field takes its default', () => {
    const stored = {
      mode: 'chat',
      greedy: 'no',
      sampling: { temperature: 1.3, topK: '40', topP: null, minP: 0.05, repetitionPenalty: 1.2, seed: 7 },
      stop: ['\n'],
      system: 'Be brief.',
      maxNewTokens: 1000,
    };
    expect(storedPlaygroundPrefs(stored, defaults)).toEqual({
      mode: 'chat',
      greedy: defaults.greedy,
      sampling: { ...defaults.sampling, temperature: 1.3, minP: 0.05, repetitionPenalty: 1.2, seed: 7 },
      stop: defaults.stop,
      system: 'Be brief.',
      maxNewTokens: defaults.maxNewTokens,
    });
    expect(storedPlaygroundPrefs('garbage', defaults)).toEqual(defaults);
  });

  test('saved as they change (not on other changes), and put back into a new store at start', () => {
    const storage = memoryStorage();
    const store = studioStore([]);
    const stop = followPlaygroundPrefs(store, storage);
    const set = (patch: object) => store.setState((s) => ({ playground: { ...s.playground, ...patch } }));

    set({ prompt: 'Once', results: {} });
    store.setState({ order: [] });
    expect(storage.writes).toBe(0);

    const sampling = { temperature: 0.5, topK: 20, topP: 0.9, minP: 0.1, repetitionPenalty: 1.1, seed: 42 };
    set({
      greedy: false,
      sampling,
      stop: '\\n\\n, The end',
      maxNewTokens: 128,
      mode: 'chat',
      system: 'You are terse.',
    });
    expect(storage.writes).toBe(1);
    set({ prompt: 'Once upon' });
    expect(storage.writes).toBe(1);
    stop();

    // A reload: a fresh store takes them; the prompt (not a setting) keeps its default.
    const reloaded = studioStore([]);
    followPlaygroundPrefs(reloaded, storage);
    const p = reloaded.getState().playground;
    expect(playgroundPrefsOf(p)).toEqual({
      greedy: false,
      sampling,
      stop: '\\n\\n, The end',
      maxNewTokens: 128,
      mode: 'chat',
      system: 'You are terse.',
    });
    expect(p.prompt).toBe(initialStudioData().playground.prompt);
  });

  test('without storage (node, or denied) nothing changes', () => {
    const store = studioStore([]);
    const before = store.getState().playground;
    followPlaygroundPrefs(store, null)();
    expect(store.getState().playground).toBe(before);
  });
});
