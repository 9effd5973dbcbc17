/**
 * UI choices kept across reloads in localStorage, beside browser.ts's memories (same "lora-studio:" prefix): the
 * run list's view, filters and grouping, and the playground's decoding settings. Stored values are read back
 * field by field: a missing or malformed field takes its default, so an entry from an older release (or edited
 * by hand) never breaks the page. Storage comes in as a parameter, so this runs in node with a fake.
 */
import { useState } from 'react';
import type { StoreApi } from 'zustand';
import { NO_FILTER, RUN_GROUPINGS, RUN_VIEWS, type RunFilter, type RunGrouping } from './run-filter';
import type { PlaygroundState, StudioState } from './store';

/** The part of localStorage the preferences use (a Map-backed fake in tests). */
export interface PrefStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

const RUN_LIST_KEY = 'lora-studio:run-list';
const PLAYGROUND_KEY = 'lora-studio:playground';

/** The page's localStorage; null where there is none (node) or the browser denies it. */
export function pageStorage(): PrefStorage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

/** The stored JSON value of `key`, or null (none, unreadable, or not JSON). */
function readPref(storage: PrefStorage | null, key: string): unknown {
  try {
    const text = storage?.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function writePref(storage: PrefStorage | null, key: string, value: unknown) {
  try {
    storage?.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled storage: remembering is a convenience.
  }
}

// ---------------------------------------------------------------------------------------- field readers

const fieldsOf = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

const oneOf = <T extends string>(v: unknown, choices: readonly T[], fallback: T): T =>
  choices.includes(v as T) ? (v as T) : fallback;

const textOr = (v: unknown, fallback: string): string => (typeof v === 'string' ? v : fallback);

/** A filter pick: a non-empty name, or null (any). */
const pickOf = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

// ---------------------------------------------------------------------------------------- the run list

export interface RunListPrefs {
  filter: RunFilter;
  grouping: RunGrouping;
}

export const RUN_LIST_DEFAULTS: RunListPrefs = { filter: NO_FILTER, grouping: 'none' };

/** The run list's choices from a stored value (defaults for what it lacks). */
export function runListPrefsOf(stored: unknown): RunListPrefs {
  const fields = fieldsOf(stored);
  const filter = fieldsOf(fields.filter);
  return {
    filter: {
      view: oneOf(filter.view, RUN_VIEWS, NO_FILTER.view),
      model: pickOf(filter.model),
      dataset: pickOf(filter.dataset),
      tag: pickOf(filter.tag),
    },
    grouping: oneOf(fields.grouping, RUN_GROUPINGS, RUN_LIST_DEFAULTS.grouping),
  };
}

export function loadRunListPrefs(storage = pageStorage()): RunListPrefs {
  return runListPrefsOf(readPref(storage, RUN_LIST_KEY));
}

export function saveRunListPrefs(prefs: RunListPrefs, storage = pageStorage()) {
  writePref(storage, RUN_LIST_KEY, prefs);
}

/**
 * The run list's choices as the last session left them, and a setter that saves them. A pick whose runs are
 * gone stays stored: the list ignores it (validFilter) until its runs are back, e.g. restored from IndexedDB.
 */
export function useRunListPrefs(): [RunListPrefs, (patch: Partial<RunListPrefs>) => void] {
  const [prefs, setPrefs] = useState(() => loadRunListPrefs());
  const update = (patch: Partial<RunListPrefs>) => {
    const next = { ...prefs, ...patch };
    setPrefs(next);
    saveRunListPrefs(next);
  };
  return [prefs, update];
}

// ---------------------------------------------------------------------------------------- the playground

/** The "Max new tokens" slider's range. */
export const MAX_NEW_TOKENS_RANGE = { min: 4, max: 256, step: 4 } as const;

/** The playground settings kept across reloads: how to decode, not what was asked or answered. */
export type PlaygroundPrefs = Pick<
  PlaygroundState,
  'mode' | 'greedy' | 'sampling' | 'stop' | 'system' | 'maxNewTokens'
>;

export function playgroundPrefsOf(p: PlaygroundPrefs): PlaygroundPrefs {
  return {
    mode: p.mode,
    greedy: p.greedy,
    sampling: p.sampling,
    stop: p.stop,
    system: p.system,
    maxNewTokens: p.maxNewTokens,
  };
}

/**
 * The playground settings from a stored value, `defaults` for what it lacks. Sampling numbers come back as typed
 * (an out-of-range one is the playground's to report, as when it was typed); anything but a finite number is not.
 */
export function storedPlaygroundPrefs(stored: unknown, defaults: PlaygroundPrefs): PlaygroundPrefs {
  const fields = fieldsOf(stored);
  const storedSampling = fieldsOf(fields.sampling);
  const sampling = { ...defaults.sampling };
  for (const key of Object.keys(sampling) as (keyof typeof sampling)[]) {
    const v = storedSampling[key];
    if (typeof v === 'number' && Number.isFinite(v)) sampling[key] = v;
  }
  const tokens = fields.maxNewTokens;
  const { min, max } = MAX_NEW_TOKENS_RANGE;
  return {
    mode: oneOf(fields.mode, ['completion', 'chat'] as const, defaults.mode),
    greedy: typeof fields.greedy === 'boolean' ? fields.greedy : defaults.greedy,
    sampling,
    stop: textOr(fields.stop, defaults.stop),
    system: textOr(fields.system, defaults.system),
    maxNewTokens:
      typeof tokens === 'number' && Number.isInteger(tokens) && tokens >= min && tokens <= max
        ? tokens
        : defaults.maxNewTokens,
  };
}

/**
 * Puts the stored playground settings into the store, then saves them whenever one changes (not on every
 * generated token: the prompt and the answers are not part of them). Returns the unsubscribe.
 */
export function followPlaygroundPrefs(store: StoreApi<StudioState>, storage = pageStorage()): () => void {
  if (!storage) return () => {};
  const stored = readPref(storage, PLAYGROUND_KEY);
  if (stored !== null)
    store.setState((s) => ({ playground: { ...s.playground, ...storedPlaygroundPrefs(stored, s.playground) } }));
  let saved = JSON.stringify(playgroundPrefsOf(store.getState().playground));
  return store.subscribe((s, prev) => {
    if (s.playground === prev.playground) return;
    const prefs = playgroundPrefsOf(s.playground);
    const text = JSON.stringify(prefs);
    if (text === saved) return;
    saved = text;
    writePref(storage, PLAYGROUND_KEY, prefs);
  });
}
