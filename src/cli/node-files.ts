/** Node-only file helpers for the CLI. */
import { createReadStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { StreamedFile } from '../data/dataset-file';
import { nodeDir, nodeFile } from '../model/formats/node-source';
import type { DirSource } from '../model/formats/source';
import type { OutputFiles } from '../engine/export';

const STREAM_CHUNK = 1 << 20;

/** A model given as a folder, or as a llama2.c .bin file (its tokenizer .bin beside it). */
export async function openModelPath(path: string): Promise<DirSource> {
  const st = await stat(path).catch(() => null);
  if (!st) throw new Error(`--model ${path}: no such file or folder`);
  if (st.isDirectory()) return nodeDir(path);
  // A single file: the folder holding it is the model (llama2.c model + tokenizer side by side).
  const dir = await nodeDir(dirname(path));
  const keep = new Set([basename(path), ...dir.list().filter((f) => /^tok.*\.bin$/.test(f) || f === 'tokenizer.bin')]);
  return { ...dir, list: () => dir.list().filter((f) => keep.has(f)) };
}

/** The --data file, streamed in 1 MiB reads as it is parsed: never read whole. */
export async function openDataFile(path: string): Promise<StreamedFile> {
  const info = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`--data ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (!info.isFile()) throw new Error(`--data ${path}: not a file`);
  const ranged = await nodeFile(path);
  return {
    name: basename(path),
    size: info.size,
    chunks: () => createReadStream(path, { highWaterMark: STREAM_CHUNK }),
    read: (offset, length) => ranged.read(offset, length),
  };
}

export async function writeOutputFiles(dir: string, files: OutputFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}
