/** Node implementations of ByteSource and DirSource: ranged reads with fs/promises, never whole files. */
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { checkRange, decodeUtf8, type ByteSource, type DirSource } from './source';

function fileSource(path: string, size: number): ByteSource {
  const src: ByteSource = {
    name: path,
    size,
    async read(offset, length) {
      checkRange(src, offset, length);
      const out = new Uint8Array(length);
      // Opened per read: tensors load one at a time, and no handle outlives a call.
      const handle = await open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new Error(`${path}: file ended early (it changed while being read?)`);
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      return out;
    },
  };
  return src;
}

/** A ByteSource for one file on disk. */
export async function nodeFile(path: string): Promise<ByteSource> {
  const info = await stat(path);
  if (!info.isFile()) throw new Error(`${path} is not a file`);
  return fileSource(path, info.size);
}

/** A DirSource for a folder on disk (its files, followed through symlinks; not subfolders). */
export async function nodeDir(path: string): Promise<DirSource> {
  const entries = await readdir(path, { withFileTypes: true });
  const files = new Map<string, ByteSource>();
  for (const entry of entries) {
    // Symlinks count: the Hugging Face cache links snapshot files to blobs.
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    const full = join(path, entry.name);
    const info = await stat(full);
    if (info.isFile()) files.set(entry.name, fileSource(full, info.size));
  }
  return {
    name: basename(path),
    folder: basename(path),
    list: () => [...files.keys()].sort(),
    file: (name) => files.get(name),
    async text(name) {
      if (!files.has(name)) throw new Error(`${path} has no file ${name}`);
      const full = join(path, name);
      return decodeUtf8(await readFile(full), full);
    },
  };
}
