/**
 * Dropped folders: DataTransfer items -> File objects, walking directories with webkitGetAsEntry.
 * The entries must be taken synchronously inside the drop event (the list is emptied afterwards);
 * walking them is asynchronous and never reads file contents (Files are lazy handles).
 */

export interface DroppedFiles {
  files: File[];
  /** The top folder's name when a folder was dropped. */
  folder?: string;
}

/** Call synchronously in the drop handler; returns a promise of every file, folders walked recursively. */
export function collectDropped(dt: DataTransfer): Promise<DroppedFiles> {
  const entries: FileSystemEntry[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
  }
  const plain = Array.from(dt.files);
  // Synthetic DataTransfers (and some browsers) have no entries: the files are all there is.
  if (!entries.some((e) => e.isDirectory)) return Promise.resolve({ files: plain });
  return (async () => {
    const found: { file: File; depth: number }[] = [];
    for (const entry of entries) await walk(entry, 0, found);
    const folder = entries.length === 1 && entries[0].isDirectory ? entries[0].name : undefined;
    return { files: shallowestByName(found), folder };
  })();
}

async function walk(entry: FileSystemEntry, depth: number, out: { file: File; depth: number }[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ file, depth });
    return;
  }
  // Hidden folders (.git, .cache) hold nothing the model needs.
  if (!entry.isDirectory || (depth > 0 && entry.name.startsWith('.'))) return;
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries returns at most ~100 entries per call: read until it returns none.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, depth + 1, out);
  }
}

/**
 * Model files are known by base name: when a subfolder repeats a name (onnx/config.json), the file
 * nearest the top wins.
 */
export function shallowestByName(found: { file: File; depth: number }[]): File[] {
  const byName = new Map<string, { file: File; depth: number }>();
  for (const f of found) {
    const seen = byName.get(f.file.name);
    if (!seen || f.depth < seen.depth) byName.set(f.file.name, f);
  }
  return [...byName.values()].map((f) => f.file);
}

/** Files from <input webkitdirectory>: the folder name is the first part of webkitRelativePath. */
export function pickedFolder(files: File[]): DroppedFiles {
  const rel = files[0]?.webkitRelativePath;
  const folder = rel && rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : undefined;
  const depth = (f: File) => (f.webkitRelativePath || f.name).split('/').length - 1;
  const visible = files.filter(
    (f) =>
      !(f.webkitRelativePath || '')
        .split('/')
        .slice(1, -1)
        .some((part) => part.startsWith('.')),
  );
  return { files: shallowestByName(visible.map((file) => ({ file, depth: depth(file) }))), folder };
}
