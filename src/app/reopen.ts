/**
 * The studio's memory of the user's own model folder and dataset file across reloads: what a pick or a drop
 * leaves to reopen, the one-click Reopen (permission, reading, loading), and what is said when a source cannot
 * be kept or reopened. The handle logic is handles.ts; this module ties it to the studio store and the panels.
 */
import { useStore } from 'zustand';
import { createStore, type StoreApi } from 'zustand/vanilla';
import { remembered } from './browser';
import type { DroppedFiles } from './files';
import {
  canKeepHandles,
  indexedDbHandles,
  readSource,
  readSourceFiles,
  reopenSource,
  describeHandleError,
  sourceOf,
  type DirectoryHandleLike,
  type EntryHandle,
  type FileHandleLike,
  type HandleStorage,
  type Slot,
  type StoredSource,
} from './handles';
import { useStudio, type StudioState } from './store';

export interface ReopenNote {
  kind: 'problem' | 'info';
  text: string;
}

export interface ReopenState {
  /** The browser keeps handles (File System Access API): Reopen is possible. */
  supported: boolean;
  /** Stored sources (restored from IndexedDB, or just picked). */
  offers: Record<Slot, StoredSource | null>;
  /** The slot being reopened (permission asked, files read). */
  busy: Slot | null;
  /** Why the last reopen failed ('problem'), or why what was just loaded cannot be reopened after a reload. */
  notes: Record<Slot, ReopenNote | null>;
  /** The last session used the user's own files here, and this browser cannot reopen them. */
  lost: Record<Slot, boolean>;
  restored: boolean;

  /** Reads the stored sources once per page. */
  restore(): Promise<void>;
  /** Loads what the user picked or dropped, and keeps its handles when it came with them. */
  open(slot: Slot, files: DroppedFiles, handles: EntryHandle[]): void;
  /** Reads what a picker gave (a folder walked into its files), then opens it. */
  openHandles(slot: Slot, handles: EntryHandle[]): Promise<void>;
  /** Asks for read access again and loads the stored source: call it inside the click. */
  reopen(slot: Slot): Promise<void>;
  forget(slot: Slot): Promise<void>;
}

/** The part of the studio store reopening needs (a plain store in tests). */
export type StudioLoader = Pick<StoreApi<StudioState>, 'getState' | 'subscribe'>;

export interface ReopenDeps {
  storage: HandleStorage;
  supported: boolean;
  studio: StudioLoader;
  /** Whether the last session loaded the user's own files into `slot` (browser.ts's memory). */
  lastUsedFiles(slot: Slot): boolean;
}

const WHAT: Record<Slot, string> = { model: 'the model folder', dataset: 'the dataset file' };

export function createReopenStore(deps: ReopenDeps): StoreApi<ReopenState> {
  const { storage, studio } = deps;
  /** The load each slot is waiting on (a newer pick replaces it). */
  const following: Record<Slot, (() => void) | null> = { model: null, dataset: null };

  return createStore<ReopenState>()((set, get) => {
    const setOffer = (slot: Slot, offer: StoredSource | null) =>
      set((s) => ({ offers: { ...s.offers, [slot]: offer } }));
    const setNote = (slot: Slot, note: ReopenNote | null) => set((s) => ({ notes: { ...s.notes, [slot]: note } }));
    const problem = (slot: Slot, text: string) => setNote(slot, { kind: 'problem', text });

    const drop = async (slot: Slot) => {
      following[slot]?.();
      setOffer(slot, null);
      await storage.delete(slot).catch(() => {});
    };

    const keep = async (source: StoredSource) => {
      setOffer(source.slot, source);
      try {
        await storage.put(source);
      } catch {
        setNote(source.slot, {
          kind: 'info',
          text: `This browser could not keep access to ${source.name}: after a reload, choose ${WHAT[source.slot]} again.`,
        });
      }
    };

    /** False when the studio did not start loading (the user kept the current model). */
    const load = (slot: Slot, files: DroppedFiles): boolean => {
      const s = studio.getState();
      if (slot === 'model') return s.loadModelFiles(files.files, files.folder);
      if (files.files.length > 1) s.toast('info', `Using ${files.files[0].name}; drop one dataset file at a time.`);
      s.loadDatasetFile(files.files[0]);
      return true;
    };

    /**
     * Waits for the load to end: a success names the source as the studio does (the model card's name); a source
     * that never loaded (not a model folder, an unreadable file) is not worth offering after a reload.
     */
    const follow = (source: StoredSource) => {
      const { slot } = source;
      following[slot]?.();
      const check = (s: StudioState) => {
        const job = slot === 'model' ? s.model : s.dataset;
        if (job.loading) return;
        stop();
        if (job.error) {
          if (source.loadedAs === null && get().offers[slot] === source) void drop(slot);
          return;
        }
        const name = slot === 'model' ? s.model.card?.name : s.dataset.preview?.name;
        if (name && get().offers[slot] === source && source.loadedAs !== name) void keep({ ...source, loadedAs: name });
      };
      const unsubscribe = studio.subscribe(check);
      const stop = () => {
        unsubscribe();
        if (following[slot] === stop) following[slot] = null;
      };
      following[slot] = stop;
    };

    return {
      supported: deps.supported,
      offers: { model: null, dataset: null },
      busy: null,
      notes: { model: null, dataset: null },
      lost: { model: false, dataset: false },
      restored: false,

      async restore() {
        if (get().restored) return;
        set({ restored: true });
        if (!deps.supported) {
          set({ lost: { model: deps.lastUsedFiles('model'), dataset: deps.lastUsedFiles('dataset') } });
          return;
        }
        for (const slot of ['model', 'dataset'] as const) {
          const value = await storage.get(slot).catch(() => undefined);
          const source = readSource(value, slot);
          // A newer pick may have landed while reading.
          if (source && get().offers[slot] === null) setOffer(slot, source);
          else if (value !== undefined && !source) await storage.delete(slot).catch(() => {});
        }
      },

      open(slot, files, handles) {
        if (files.files.length === 0 || !load(slot, files)) return;
        set((s) => ({ lost: { ...s.lost, [slot]: false } }));
        const source = deps.supported ? sourceOf(slot, handles) : null;
        if (source) {
          setNote(slot, null);
          void keep(source);
          follow(source);
          return;
        }
        void drop(slot);
        setNote(slot, {
          kind: 'info',
          text: deps.supported
            ? `Chosen without a handle the browser can keep: after a reload, choose ${WHAT[slot]} again (pick it with "Choose…" or drop it to reopen it with one click next time).`
            : `This browser cannot reopen files after a reload (it has no File System Access API): choose ${WHAT[slot]} again then.`,
        });
      },

      async openHandles(slot, handles) {
        const source = sourceOf(slot, handles);
        if (!source) return;
        setNote(slot, null);
        try {
          get().open(slot, await readSourceFiles(source), handles);
        } catch (err) {
          problem(slot, describeHandleError(err, source.name, WHAT[slot]).message);
        }
      },

      async reopen(slot) {
        const source = get().offers[slot];
        if (!source || get().busy) return;
        set({ busy: slot });
        setNote(slot, null);
        try {
          const result = await reopenSource(source);
          if (!result.ok) {
            problem(slot, result.message);
            if (result.forget) await drop(slot);
            return;
          }
          if (load(slot, result.files)) follow(source);
        } finally {
          set({ busy: null });
        }
      },

      async forget(slot) {
        setNote(slot, null);
        await drop(slot);
      },
    };
  });
}

/** The pickers of the File System Access API (Chromium; not in the DOM typings). */
interface PickerWindow {
  showDirectoryPicker(options?: { id?: string; mode?: 'read' }): Promise<DirectoryHandleLike>;
  showOpenFilePicker(options?: {
    id?: string;
    multiple?: boolean;
    types?: { description: string; accept: Record<string, string[]> }[];
  }): Promise<FileHandleLike[]>;
}

const DATASET_TYPES = [
  {
    description: 'Datasets',
    accept: {
      'text/plain': ['.txt'],
      'application/json': ['.json', '.jsonl', '.ndjson'],
      'text/csv': ['.csv', '.tsv'],
      'application/vnd.apache.parquet': ['.parquet'],
    },
  },
];

/**
 * The browser's folder or file picker: the chosen handles, or null when the user closed it. Throws when the
 * browser refuses to show it (a sandboxed frame): the caller falls back to the <input>.
 */
export async function pickHandles(what: 'model-folder' | 'model-files' | 'dataset'): Promise<EntryHandle[] | null> {
  const w = window as unknown as PickerWindow;
  try {
    if (what === 'model-folder') return [await w.showDirectoryPicker({ id: 'lora-studio-model', mode: 'read' })];
    if (what === 'model-files') return await w.showOpenFilePicker({ id: 'lora-studio-model', multiple: true });
    return await w.showOpenFilePicker({ id: 'lora-studio-dataset', types: DATASET_TYPES });
  } catch (err) {
    if ((err as Error).name === 'AbortError') return null;
    throw err;
  }
}

let appStore: StoreApi<ReopenState> | null = null;

/** What a stored source is called: the studio's name for it once loaded ("stories260K"), else the picked name. */
export function offerLabel(source: StoredSource): string {
  return source.loadedAs ?? source.name;
}

/** The stored source is what `name` (a run's model or dataset name) was loaded from. */
export function offerMatches(source: StoredSource | null, name: string | null): source is StoredSource {
  return source !== null && name !== null && (source.loadedAs === name || source.name === name);
}

/** The studio's instance: IndexedDB, the page's pickers, the studio store. */
export function reopenStore(): StoreApi<ReopenState> {
  appStore ??= createReopenStore({
    storage: indexedDbHandles(),
    supported: typeof window !== 'undefined' && canKeepHandles(window),
    studio: useStudio,
    lastUsedFiles: (slot) => remembered(slot) === (slot === 'model' ? 'files' : 'file'),
  });
  return appStore;
}

export function useReopen<T>(select: (s: ReopenState) => T): T {
  return useStore(reopenStore(), select);
}
