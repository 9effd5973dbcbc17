/**
 * Browser implementations of ByteSource and DirSource over Blob/File objects. Blob.slice() is lazy,
 * so only the requested range is ever read: the user's files are never copied whole into memory.
 */
import { checkRange, decodeUtf8, type ByteSource, type DirSource } from './source';

/** A ByteSource for a Blob or File. */
export function blobSource(blob: Blob, name = blob instanceof File ? blob.name : 'blob'): ByteSource {
  const src: ByteSource = {
    name,
    size: blob.size,
    async read(offset, length) {
      checkRange(src, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
  return src;
}

/**
 * A DirSource for files the user picked or dropped. Files are known by their base name (a dropped
 * folder gives paths like "model/config.json"); when two share a name the later one wins.
 */
export function filesDir(files: File[], name?: string): DirSource {
  const byName = new Map<string, File>();
  for (const file of files) byName.set(baseName(file.name), file);
  const folder = name ?? folderOf(files) ?? null;
  const dirName = folder ?? 'the chosen files';
  return {
    name: dirName,
    folder,
    list: () => [...byName.keys()].sort(),
    file(fileName) {
      const file = byName.get(fileName);
      return file ? blobSource(file, `${dirName}/${fileName}`) : undefined;
    },
    async text(fileName) {
      const file = byName.get(fileName);
      if (!file) throw new Error(`${dirName} has no file ${fileName}`);
      return decodeUtf8(new Uint8Array(await file.arrayBuffer()), `${dirName}/${fileName}`);
    },
  };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The top folder of a dropped folder (webkitRelativePath "folder/file"), if the files carry one. */
function folderOf(files: File[]): string | undefined {
  const relative = (files[0] as (File & { webkitRelativePath?: string }) | undefined)?.webkitRelativePath;
  if (!relative || !relative.includes('/')) return undefined;
  return relative.slice(0, relative.indexOf('/'));
}
