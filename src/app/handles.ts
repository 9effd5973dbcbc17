/**
 * Reopening the user's model folder and dataset file after a reload, through the File System Access API:
 * the handles a picker or a drop gave are kept in IndexedDB (handles are structured-cloneable in Chromium), and
 * one click asks the browser for read access again and reads them back into File objects. Browsers without the
 * API (Firefox, Safari) have nothing to keep: the user chooses the files again.
 * The handle types below are the few members used, so tests can pass plain objects.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { shallowestByName, type DroppedFiles } from './files';

export type Slot = 'model' | 'dataset';

export type PermissionState = 'granted' | 'denied' | 'prompt';

interface HandleBase {
  readonly name: string;
  /** Chromium only (not in the DOM typings); absent: the handle is readable as it is (OPFS in some browsers). */
  queryPermission?(descriptor: { mode: 'read' }): Promise<PermissionState>;
  requestPermission?(descriptor: { mode: 'read' }): Promise<PermissionState>;
}

export interface FileHandleLike extends HandleBase {
  readonly kind: 'file';
  getFile(): Promise<File>;
}

export interface DirectoryHandleLike extends HandleBase {
  readonly kind: 'directory';
  values(): AsyncIterable<FileHandleLike | DirectoryHandleLike>;
}

export type EntryHandle = FileHandleLike | DirectoryHandleLike;

/** What is kept per slot: one folder, or the files chosen one by one (a model), or one file (a dataset). */
export interface StoredSource {
  slot: Slot;
  /** The folder's or the file's name, as the user picked it. */
  name: string;
  handles: EntryHandle[];
  /** What the studio called it once loaded (the model card's name: "stories260K" for a folder named "model"). */
  loadedAs: string | null;
  savedAt: number;
}

/** Where the records live: IndexedDB in the studio, a Map in tests. */
export interface HandleStorage {
  get(slot: Slot): Promise<unknown>;
  put(source: StoredSource): Promise<void>;
  delete(slot: Slot): Promise<void>;
}

interface HandleDB extends DBSchema {
  handles: { key: Slot; value: StoredSource };
}

/** A database of its own: the runs' database (persist.ts) keeps its versions to itself. */
export function indexedDbHandles(): HandleStorage {
  let db: Promise<IDBPDatabase<HandleDB>> | null = null;
  const open = () =>
    (db ??= openDB<HandleDB>('lora-studio-handles', 1, {
      upgrade(d) {
        d.createObjectStore('handles', { keyPath: 'slot' });
      },
    }));
  return {
    get: async (slot) => (await open()).get('handles', slot),
    put: async (source) => void (await (await open()).put('handles', source)),
    delete: async (slot) => (await open()).delete('handles', slot),
  };
}

/** The browser can pick folders and files with handles that survive a reload (Chromium). */
export function canKeepHandles(w: object = globalThis): boolean {
  return 'showDirectoryPicker' in w && 'showOpenFilePicker' in w;
}

const isHandle = (h: unknown): h is EntryHandle =>
  typeof h === 'object' &&
  h !== null &&
  typeof (h as EntryHandle).name === 'string' &&
  ((h as EntryHandle).kind === 'file' || (h as EntryHandle).kind === 'directory');

/** A stored record checked field by field (storage can hold an older or damaged one), or null. */
export function readSource(value: unknown, slot: Slot): StoredSource | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Partial<StoredSource>;
  if (v.slot !== slot || typeof v.name !== 'string' || !Array.isArray(v.handles) || v.handles.length === 0) return null;
  if (!v.handles.every(isHandle)) return null;
  // A dataset is one file; a model is one folder or files.
  if (slot === 'dataset' && (v.handles.length !== 1 || v.handles[0].kind !== 'file')) return null;
  if (v.handles.some((h) => h.kind === 'directory') && v.handles.length !== 1) return null;
  return {
    slot,
    name: v.name,
    handles: v.handles,
    loadedAs: typeof v.loadedAs === 'string' ? v.loadedAs : null,
    savedAt: typeof v.savedAt === 'number' ? v.savedAt : 0,
  };
}

/** A record for what was just picked or dropped; null when there is nothing to keep. */
export function sourceOf(slot: Slot, handles: EntryHandle[], now = Date.now()): StoredSource | null {
  if (handles.length === 0) return null;
  const name = handles.length === 1 ? handles[0].name : `${handles.length} files`;
  // A folder dropped together with loose files cannot be kept as one source: readSource refuses it.
  return readSource({ slot, name, handles, loadedAs: null, savedAt: now }, slot);
}

/**
 * Read access for one handle: granted at once when the browser still allows it, else asked for. Must run inside
 * the click that asked to reopen (requestPermission needs a user gesture).
 */
export async function ensureReadAccess(handle: EntryHandle): Promise<PermissionState> {
  const mode = { mode: 'read' as const };
  if (!handle.queryPermission || !handle.requestPermission) return 'granted';
  if ((await handle.queryPermission(mode)) === 'granted') return 'granted';
  return handle.requestPermission(mode);
}

/** One file found in a folder, with its path from the folder's top ("onnx/config.json"). */
export interface WalkedFile {
  file: File;
  path: string;
  depth: number;
}

/** Every file under `dir`, read lazily (File objects), hidden subfolders (.git, .cache) skipped like a drop's. */
export async function walkDirectory(dir: DirectoryHandleLike, prefix = '', depth = 0): Promise<WalkedFile[]> {
  const found: WalkedFile[] = [];
  for await (const entry of dir.values()) {
    const path = `${prefix}${entry.name}`;
    if (entry.kind === 'file') found.push({ file: await entry.getFile(), path, depth });
    else if (!entry.name.startsWith('.')) found.push(...(await walkDirectory(entry, `${path}/`, depth + 1)));
  }
  return found;
}

/** The files of a stored source as the loaders take them: base names, the nearest to the top winning (files.ts). */
export async function readSourceFiles(source: StoredSource): Promise<DroppedFiles> {
  const [first] = source.handles;
  if (first.kind === 'directory') {
    const walked = await walkDirectory(first);
    return { files: shallowestByName(walked), folder: first.name };
  }
  const files = await Promise.all(source.handles.map((h) => (h as FileHandleLike).getFile()));
  return { files };
}

export type ReopenResult =
  | { ok: true; files: DroppedFiles }
  /** `forget`: the record is useless now (the file is gone); kept otherwise, so a later click can try again. */
  | { ok: false; message: string; forget: boolean };

/** Asks for access to every handle of `source`, then reads it; failures worded for the studio. */
export async function reopenSource(source: StoredSource): Promise<ReopenResult> {
  const what = source.slot === 'model' ? 'the model folder' : 'the dataset file';
  const label = source.name;
  try {
    for (const handle of source.handles) {
      const access = await ensureReadAccess(handle);
      if (access !== 'granted')
        return {
          ok: false,
          forget: false,
          message: `The browser did not allow reading ${label}. Press Reopen again and choose "Allow", or choose ${what} again.`,
        };
    }
    const files = await readSourceFiles(source);
    if (files.files.length === 0)
      return { ok: false, forget: true, message: `${label} is empty now: choose ${what} again.` };
    return { ok: true, files };
  } catch (err) {
    return { ok: false, ...describeHandleError(err, label, what) };
  }
}

/** Why a stored handle could not be read, and whether keeping it could help later. */
export function describeHandleError(err: unknown, label: string, what: string): { message: string; forget: boolean } {
  const name = err instanceof Error || (typeof err === 'object' && err !== null) ? (err as Error).name : '';
  switch (name) {
    case 'NotFoundError':
      return {
        forget: true,
        message: `${label} is no longer where it was (moved, renamed or deleted): choose ${what} again.`,
      };
    case 'TypeMismatchError':
      return { forget: true, message: `${label} was replaced by something else: choose ${what} again.` };
    case 'NotAllowedError':
    case 'SecurityError':
      return {
        forget: false,
        message: `The browser did not allow reading ${label}. Press Reopen again and choose "Allow", or choose ${what} again.`,
      };
    default:
      return {
        forget: false,
        message: `${label} could not be read (${err instanceof Error ? err.message : String(err)}). Try again, or choose ${what} again.`,
      };
  }
}

/**
 * The handles of a drop, one promise per item. getAsFileSystemHandle must be called synchronously in the drop
 * event (the items are emptied afterwards); it is Chromium only and gives null for synthetic drops.
 */
export function droppedHandles(items: DataTransferItemList | ArrayLike<DataTransferItem>): Promise<EntryHandle[]> {
  const pending: Promise<unknown>[] = [];
  for (const item of Array.from(items as ArrayLike<DataTransferItem>)) {
    const get = (item as { getAsFileSystemHandle?: () => Promise<unknown> }).getAsFileSystemHandle;
    if (item.kind !== 'file' || typeof get !== 'function') return Promise.resolve([]);
    try {
      pending.push(get.call(item));
    } catch {
      // A drop the browser will not give handles for: the files still load, without a way back after a reload.
      return Promise.resolve([]);
    }
  }
  // Every item must have one, or the record would reopen less than what was dropped.
  return Promise.all(pending).then(
    (handles) => (handles.every(isHandle) ? handles : []),
    () => [],
  );
}
