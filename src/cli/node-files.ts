/** Node-only file helpers for the CLI. */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { nodeDir } from '../model/formats/node-source';
import type { DirSource } from '../model/formats/source';
import type { OutputFiles } from '../engine/export';

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

export async function readDataFile(path: string): Promise<{ name: string; bytes: Uint8Array }> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`--data ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  return { name: basename(path), bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export async function writeOutputFiles(dir: string, files: OutputFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
}
