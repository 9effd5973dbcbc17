/**
 * Reopening the model folder and dataset file after a reload (app/handles.ts, app/reopen.ts) with fake handles,
 * a Map for IndexedDB and a plain store for the studio: records stored and read back (damaged ones refused),
 * the permission flow, folders walked into files with their paths, and every failure worded and kept or forgotten.
 */
import { describe, expect, it, vi } from 'vitest';
import { createStore } from 'zustand/vanilla';
import {
  describeHandleError,
  droppedHandles,
  ensureReadAccess,
  readSource,
  readSourceFiles,
  reopenSource,
  sourceOf,
  walkDirectory,
  type DirectoryHandleLike,
  type EntryHandle,
  type FileHandleLike,
  type HandleStorage,
  type PermissionState,
  type Slot,
  type StoredSource,
} from '../src/app/handles';
import { createReopenStore, offerLabel, offerMatches, type StudioLoader } from '../src/app/reopen';
import { initialStudioData, type StudioState } from '../src/app/store';

// ------------------------------------------------------------------------------------------------ fakes

/** What a permission query and request answer, and what the request was asked. */
interface Permissions {
  query: PermissionState;
  request: PermissionState;
  requested: number;
}

const granted = (): Permissions => ({ query: 'granted', request: 'granted', requested: 0 });

function withPermissions<T extends object>(handle: T, p: Permissions | null): T {
  if (!p) return handle;
  return Object.assign(handle, {
    queryPermission: async () => p.query,
    requestPermission: async () => {
      p.requested++;
      return p.request;
    },
  });
}

function fileHandle(name: string, text = name, p: Permissions | null = granted()): FileHandleLike & { gone?: Error } {
  const h: FileHandleLike & { gone?: Error } = {
    kind: 'file',
    name,
    async getFile() {
      if (h.gone) throw h.gone;
      return new File([text], name);
    },
  };
  return withPermissions(h, p);
}

function dirHandle(name: string, children: EntryHandle[], p: Permissions | null = granted()): DirectoryHandleLike {
  const h: DirectoryHandleLike = {
    kind: 'directory',
    name,
    async *values() {
      yield* children;
    },
  };
  return withPermissions(h, p);
}

function domError(name: string, message = name): Error {
  return Object.assign(new Error(message), { name });
}

function mapStorage(initial: Partial<Record<Slot, unknown>> = {}) {
  const map = new Map<Slot, unknown>(Object.entries(initial) as [Slot, unknown][]);
  const storage: HandleStorage & { map: Map<Slot, unknown> } = {
    map,
    get: vi.fn(async (slot: Slot) => map.get(slot)),
    put: vi.fn(async (source: StoredSource) => void map.set(source.slot, source)),
    delete: vi.fn(async (slot: Slot) => void map.delete(slot)),
  };
  return storage;
}

/** The studio as reopen.ts sees it: loading starts on the calls, the test ends it as the worker would. */
function fakeStudio(options: { declineSwitch?: boolean } = {}) {
  const loads: { slot: Slot; files: File[]; folder?: string }[] = [];
  const store = createStore<StudioState>()(
    (set) =>
      ({
        ...initialStudioData(),
        toast: vi.fn(),
        loadModelFiles(files: File[], folder?: string) {
          if (options.declineSwitch) return false;
          loads.push({ slot: 'model', files, folder });
          set((s) => ({ model: { ...s.model, error: null, loading: { stage: 'Reading files', done: 0, total: 0 } } }));
          return true;
        },
        loadDatasetFile(file: File) {
          loads.push({ slot: 'dataset', files: [file] });
          set((s) => ({ dataset: { ...s.dataset, error: null, loading: { name: file.name, stage: 'Reading' } } }));
        },
      }) as unknown as StudioState,
  );
  const modelLoaded = (name: string) =>
    store.setState((s) => ({
      model: { ...s.model, loading: null, ready: true, card: { name, key: name } as StudioState['model']['card'] },
    }));
  const modelFailed = (message: string) =>
    store.setState((s) => ({ model: { ...s.model, loading: null, error: message } }));
  const datasetLoaded = (name: string) =>
    store.setState({
      dataset: { loading: null, error: null, preview: { name } as StudioState['dataset']['preview'] },
    });
  return { store: store as StudioLoader, loads, modelLoaded, modelFailed, datasetLoaded };
}

function reopenWith(storage: HandleStorage, studio = fakeStudio(), supported = true, lastUsedFiles = false) {
  const store = createReopenStore({ storage, supported, studio: studio.store, lastUsedFiles: () => lastUsedFiles });
  return { store, studio };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

const modelFolder = () =>
  dirHandle('model', [
    fileHandle('config.json', '{}'),
    fileHandle('model.safetensors'),
    fileHandle('tokenizer.json'),
    dirHandle('onnx', [fileHandle('config.json', 'nested'), fileHandle('model.onnx')]),
    dirHandle('.cache', [fileHandle('lock')]),
  ]);

// ------------------------------------------------------------------------------------------------ records

describe('stored records', () => {
  it('a folder, files and a dataset file make records named as picked', () => {
    const dir = modelFolder();
    expect(sourceOf('model', [dir], 7)).toEqual({
      slot: 'model',
      name: 'model',
      handles: [dir],
      loadedAs: null,
      savedAt: 7,
    });
    const files = [fileHandle('config.json'), fileHandle('model.safetensors')];
    expect(sourceOf('model', files)?.name).toBe('2 files');
    expect(sourceOf('dataset', [fileHandle('tiny.txt')])?.name).toBe('tiny.txt');
  });

  it('nothing to keep: no handles, a folder as a dataset, a folder dropped with loose files', () => {
    expect(sourceOf('model', [])).toBeNull();
    expect(sourceOf('dataset', [modelFolder()])).toBeNull();
    expect(sourceOf('model', [modelFolder(), fileHandle('extra.txt')])).toBeNull();
    expect(sourceOf('dataset', [fileHandle('a.txt'), fileHandle('b.txt')])).toBeNull();
  });

  it('what storage gives back is checked field by field', () => {
    const good = sourceOf('dataset', [fileHandle('tiny.txt')])!;
    expect(readSource(good, 'dataset')).toEqual(good);
    expect(readSource(good, 'model')).toBeNull();
    expect(readSource(undefined, 'model')).toBeNull();
    expect(readSource({ ...good, handles: [] }, 'dataset')).toBeNull();
    expect(readSource({ ...good, handles: [{ name: 'x' }] }, 'dataset')).toBeNull();
    expect(readSource({ ...good, name: 3 }, 'dataset')).toBeNull();
    // Fields added later default when an older record lacks them.
    const { loadedAs: _, savedAt: __, ...old } = good;
    expect(readSource(old, 'dataset')).toEqual({ ...good, loadedAs: null, savedAt: 0 });
  });

  it('labels and run matching use the name the studio gave once loaded', () => {
    const source = { ...sourceOf('model', [modelFolder()])!, loadedAs: 'stories260K' };
    expect(offerLabel(source)).toBe('stories260K');
    expect(offerLabel({ ...source, loadedAs: null })).toBe('model');
    expect(offerMatches(source, 'stories260K')).toBe(true);
    expect(offerMatches(source, 'model')).toBe(true);
    expect(offerMatches(source, 'other')).toBe(false);
    expect(offerMatches(null, 'stories260K')).toBe(false);
    expect(offerMatches(source, null)).toBe(false);
  });
});

// ------------------------------------------------------------------------------------------------ permission

describe('read permission', () => {
  it('still granted: no prompt', async () => {
    const p = granted();
    expect(await ensureReadAccess(fileHandle('a.txt', 'a', p))).toBe('granted');
    expect(p.requested).toBe(0);
  });

  it('prompt: asked once, granted or denied by the user', async () => {
    const yes: Permissions = { query: 'prompt', request: 'granted', requested: 0 };
    expect(await ensureReadAccess(fileHandle('a.txt', 'a', yes))).toBe('granted');
    expect(yes.requested).toBe(1);
    const no: Permissions = { query: 'prompt', request: 'denied', requested: 0 };
    expect(await ensureReadAccess(dirHandle('m', [], no))).toBe('denied');
    expect(no.requested).toBe(1);
  });

  it('a handle without the permission methods is readable as it is', async () => {
    expect(await ensureReadAccess(fileHandle('a.txt', 'a', null))).toBe('granted');
  });
});

// ------------------------------------------------------------------------------------------------ reading

describe('reading a stored source', () => {
  it('a folder is walked recursively into files with their paths; hidden folders are skipped', async () => {
    const walked = await walkDirectory(modelFolder());
    expect(walked.map((w) => [w.path, w.depth])).toEqual([
      ['config.json', 0],
      ['model.safetensors', 0],
      ['tokenizer.json', 0],
      ['onnx/config.json', 1],
      ['onnx/model.onnx', 1],
    ]);
    expect(walked.every((w) => w.file instanceof File)).toBe(true);
  });

  it('the loaders get base names, the file nearest the top winning, and the folder name', async () => {
    const read = await readSourceFiles(sourceOf('model', [modelFolder()])!);
    expect(read.folder).toBe('model');
    expect(read.files.map((f) => f.name).sort()).toEqual([
      'config.json',
      'model.onnx',
      'model.safetensors',
      'tokenizer.json',
    ]);
    expect(await read.files.find((f) => f.name === 'config.json')!.text()).toBe('{}');
  });

  it('files chosen one by one come back as they were', async () => {
    const read = await readSourceFiles(sourceOf('model', [fileHandle('config.json'), fileHandle('m.bin')])!);
    expect(read.folder).toBeUndefined();
    expect(read.files.map((f) => f.name)).toEqual(['config.json', 'm.bin']);
  });

  it('reopening asks for every handle, then reads', async () => {
    const p: Permissions = { query: 'prompt', request: 'granted', requested: 0 };
    const result = await reopenSource(sourceOf('dataset', [fileHandle('tiny.txt', 'hello', p)])!);
    expect(p.requested).toBe(1);
    expect(result.ok && (await result.files.files[0].text())).toBe('hello');
  });

  it('denied: said so, and kept for another try', async () => {
    const p: Permissions = { query: 'prompt', request: 'denied', requested: 0 };
    const result = await reopenSource(sourceOf('dataset', [fileHandle('tiny.txt', 'x', p)])!);
    expect(result).toEqual({
      ok: false,
      forget: false,
      message:
        'The browser did not allow reading tiny.txt. Press Reopen again and choose "Allow", or choose the dataset file again.',
    });
  });

  it('moved or deleted (NotFoundError): said so, and forgotten', async () => {
    const file = fileHandle('tiny.txt');
    file.gone = domError('NotFoundError', 'A requested file or directory could not be found');
    const result = await reopenSource(sourceOf('dataset', [file])!);
    expect(result).toEqual({
      ok: false,
      forget: true,
      message: 'tiny.txt is no longer where it was (moved, renamed or deleted): choose the dataset file again.',
    });
  });

  it('an empty folder is forgotten', async () => {
    const result = await reopenSource(sourceOf('model', [dirHandle('model', [dirHandle('.git', [])])])!);
    expect(result).toEqual({ ok: false, forget: true, message: 'model is empty now: choose the model folder again.' });
  });

  it('other failures are worded and kept', () => {
    expect(describeHandleError(domError('NotAllowedError'), 'model', 'the model folder').forget).toBe(false);
    expect(describeHandleError(domError('TypeMismatchError'), 'model', 'the model folder')).toEqual({
      forget: true,
      message: 'model was replaced by something else: choose the model folder again.',
    });
    expect(describeHandleError(new Error('disk error'), 'tiny.txt', 'the dataset file')).toEqual({
      forget: false,
      message: 'tiny.txt could not be read (disk error). Try again, or choose the dataset file again.',
    });
  });
});

// ------------------------------------------------------------------------------------------------ drops

describe('handles of a drop', () => {
  const item = (handle: unknown) =>
    ({ kind: 'file', getAsFileSystemHandle: async () => handle }) as unknown as DataTransferItem;

  it('every item has a handle: all of them', async () => {
    const dir = modelFolder();
    expect(await droppedHandles([item(dir)])).toEqual([dir]);
  });

  it('a browser without getAsFileSystemHandle, a synthetic drop (null), a failing item: none', async () => {
    expect(await droppedHandles([{ kind: 'file' } as DataTransferItem])).toEqual([]);
    expect(await droppedHandles([item(fileHandle('a.txt')), item(null)])).toEqual([]);
    const failing = {
      kind: 'file',
      getAsFileSystemHandle: () => Promise.reject(domError('InvalidStateError')),
    } as unknown as DataTransferItem;
    expect(await droppedHandles([failing])).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------------ the studio's flow

describe('the studio keeps, offers and reopens', () => {
  it('a picked folder is loaded, stored, and named as the studio names it once loaded', async () => {
    const storage = mapStorage();
    const { store, studio } = reopenWith(storage);
    await store.getState().openHandles('model', [modelFolder()]);
    expect(studio.loads).toHaveLength(1);
    expect(studio.loads[0].folder).toBe('model');
    expect(readSource(storage.map.get('model'), 'model')?.loadedAs).toBeNull();
    studio.modelLoaded('stories260K');
    await flush();
    expect(readSource(storage.map.get('model'), 'model')?.loadedAs).toBe('stories260K');
    expect(offerLabel(store.getState().offers.model!)).toBe('stories260K');
  });

  it('after a reload: the stored sources are offered; damaged records are deleted', async () => {
    const good = { ...sourceOf('model', [modelFolder()])!, loadedAs: 'stories260K' };
    const storage = mapStorage({ model: good, dataset: { slot: 'dataset', name: 'x', handles: [] } });
    const { store } = reopenWith(storage);
    await store.getState().restore();
    expect(store.getState().offers.model?.loadedAs).toBe('stories260K');
    expect(store.getState().offers.dataset).toBeNull();
    expect(storage.map.has('dataset')).toBe(false);
  });

  it('Reopen: permission, then the files reach the studio; the record stays', async () => {
    const p: Permissions = { query: 'prompt', request: 'granted', requested: 0 };
    const storage = mapStorage({ dataset: sourceOf('dataset', [fileHandle('tiny.txt', 'hi', p)]) });
    const { store, studio } = reopenWith(storage);
    await store.getState().restore();
    await store.getState().reopen('dataset');
    expect(p.requested).toBe(1);
    expect(studio.loads.map((l) => l.files[0].name)).toEqual(['tiny.txt']);
    expect(store.getState().busy).toBeNull();
    studio.datasetLoaded('tiny.txt');
    await flush();
    expect(readSource(storage.map.get('dataset'), 'dataset')?.loadedAs).toBe('tiny.txt');
  });

  it('Reopen denied: a problem note, the offer kept', async () => {
    const p: Permissions = { query: 'prompt', request: 'denied', requested: 0 };
    const storage = mapStorage({ dataset: sourceOf('dataset', [fileHandle('tiny.txt', 'hi', p)]) });
    const { store, studio } = reopenWith(storage);
    await store.getState().restore();
    await store.getState().reopen('dataset');
    expect(studio.loads).toHaveLength(0);
    expect(store.getState().notes.dataset?.kind).toBe('problem');
    expect(store.getState().offers.dataset).not.toBeNull();
    expect(storage.map.has('dataset')).toBe(true);
  });

  it('Reopen of a deleted file: a problem note, the offer and the record forgotten', async () => {
    const file = fileHandle('tiny.txt');
    file.gone = domError('NotFoundError');
    const storage = mapStorage({ dataset: sourceOf('dataset', [file]) });
    const { store } = reopenWith(storage);
    await store.getState().restore();
    await store.getState().reopen('dataset');
    expect(store.getState().notes.dataset?.text).toContain('no longer where it was');
    expect(store.getState().offers.dataset).toBeNull();
    expect(storage.map.has('dataset')).toBe(false);
  });

  it('a picked folder that is not a model is not offered after a reload', async () => {
    const storage = mapStorage();
    const { store, studio } = reopenWith(storage);
    await store.getState().openHandles('model', [dirHandle('photos', [fileHandle('cat.jpg')])]);
    studio.modelFailed('photos: not a model folder.');
    await flush();
    expect(storage.map.has('model')).toBe(false);
    expect(store.getState().offers.model).toBeNull();
  });

  it('a source that loaded before is kept when a later load fails (the GPU, not the folder)', async () => {
    const source = { ...sourceOf('model', [modelFolder()])!, loadedAs: 'stories260K' };
    const storage = mapStorage({ model: source });
    const { store, studio } = reopenWith(storage);
    await store.getState().restore();
    await store.getState().reopen('model');
    studio.modelFailed('Out of GPU memory');
    await flush();
    expect(storage.map.has('model')).toBe(true);
  });

  it('declining the model switch keeps everything as it was', async () => {
    const storage = mapStorage();
    const { store } = reopenWith(storage, fakeStudio({ declineSwitch: true }));
    await store.getState().openHandles('model', [modelFolder()]);
    expect(storage.put).not.toHaveBeenCalled();
  });

  it('files from a plain <input> have no handle: the old record is forgotten and the note says to choose again', async () => {
    const storage = mapStorage({ dataset: sourceOf('dataset', [fileHandle('old.txt')]) });
    const { store, studio } = reopenWith(storage);
    await store.getState().restore();
    store.getState().open('dataset', { files: [new File(['x'], 'new.txt')] }, []);
    await flush();
    expect(studio.loads.map((l) => l.files[0].name)).toEqual(['new.txt']);
    expect(storage.map.has('dataset')).toBe(false);
    expect(store.getState().notes.dataset).toEqual({
      kind: 'info',
      text: 'Chosen without a handle the browser can keep: after a reload, choose the dataset file again (pick it with "Choose…" or drop it to reopen it with one click next time).',
    });
  });

  it('storage refusing the handle: loaded anyway, and the note says it will not come back', async () => {
    const storage = mapStorage();
    storage.put = vi.fn(async () => {
      throw domError('DataCloneError');
    });
    const { store, studio } = reopenWith(storage);
    await store.getState().openHandles('dataset', [fileHandle('tiny.txt')]);
    await flush();
    expect(studio.loads).toHaveLength(1);
    expect(store.getState().notes.dataset?.text).toBe(
      'This browser could not keep access to tiny.txt: after a reload, choose the dataset file again.',
    );
  });

  it("a browser without the API: nothing is stored, the last session's files are said to be lost", async () => {
    const storage = mapStorage();
    const { store } = reopenWith(storage, fakeStudio(), false, true);
    await store.getState().restore();
    expect(store.getState().lost).toEqual({ model: true, dataset: true });
    expect(storage.get).not.toHaveBeenCalled();
    store.getState().open('model', { files: [new File(['{}'], 'config.json')] }, []);
    expect(store.getState().lost.model).toBe(false);
    expect(store.getState().notes.model?.text).toBe(
      'This browser cannot reopen files after a reload (it has no File System Access API): choose the model folder again then.',
    );
  });

  it('Forget removes the offer and the record', async () => {
    const storage = mapStorage({ dataset: sourceOf('dataset', [fileHandle('tiny.txt')]) });
    const { store } = reopenWith(storage);
    await store.getState().restore();
    await store.getState().forget('dataset');
    expect(store.getState().offers.dataset).toBeNull();
    expect(storage.map.has('dataset')).toBe(false);
  });
});
