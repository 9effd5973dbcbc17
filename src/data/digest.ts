/**
 * A dataset file's identity for resuming: its size and SHA-256. Files over WHOLE_LIMIT are identified by their
 * size and the SHA-256 of their first and last MiB, so a multi-GB file is not hashed whole on every load.
 */
import { datasetFileSize, readFileRange, type DatasetFile } from './dataset-file';

const MIB = 2 ** 20;
const WHOLE_LIMIT = 64 * MIB;

export async function fileDigest(bytes: Uint8Array): Promise<string> {
  return sourceDigest({ size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + length) });
}

/** A dataset file's digest, in memory or streamed. */
export function datasetDigest(file: DatasetFile): Promise<string> {
  return sourceDigest({ size: datasetFileSize(file), read: (offset, length) => readFileRange(file, offset, length) });
}

/** The same digest for a file read in ranges (a file on disk, a browser File): at most 64 MiB is read. */
export async function sourceDigest(src: {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}): Promise<string> {
  const whole = src.size <= WHOLE_LIMIT;
  const hashed = whole
    ? await src.read(0, src.size)
    : concat(await src.read(0, MIB), await src.read(src.size - MIB, MIB));
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', hashed as Uint8Array<ArrayBuffer>));
  const hex = Array.from(hash, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${src.size}:${whole ? 'sha256' : 'sha256-ends'}:${hex}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
