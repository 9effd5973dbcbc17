/**
 * A dataset file as the dataset layer reads it: bytes already in memory (the demo, tests), or a file on disk or a
 * browser File that is streamed in chunks and never held whole (a 200 MB JSONL must not cost 200 MB, let alone
 * the gigabyte its parsed records would).
 */
import { blobSource } from '../model/formats/blob-source';

/** A file read in pieces: `chunks()` streams it from the start (again on each call); `read` gets one range. */
export interface StreamedFile {
  name: string;
  size: number;
  chunks(): AsyncIterable<Uint8Array>;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A file already in memory (the demo, tests). */
export interface BytesFile {
  name: string;
  bytes: Uint8Array;
}

export type DatasetFile = BytesFile | StreamedFile;

/** Chunks of in-memory bytes are views (no copy); streamed files use their own chunking. */
const MEMORY_CHUNK = 1 << 20;

export function datasetFileSize(file: DatasetFile): number {
  return 'bytes' in file ? file.bytes.length : file.size;
}

export async function* fileChunks(file: DatasetFile): AsyncIterable<Uint8Array> {
  if (!('bytes' in file)) {
    yield* file.chunks();
    return;
  }
  for (let offset = 0; offset < file.bytes.length; offset += MEMORY_CHUNK) {
    yield file.bytes.subarray(offset, offset + MEMORY_CHUNK);
  }
}

export function readFileRange(file: DatasetFile, offset: number, length: number): Promise<Uint8Array> {
  return 'bytes' in file ? Promise.resolve(file.bytes.subarray(offset, offset + length)) : file.read(offset, length);
}

/**
 * The whole file, for the formats that cannot be parsed in pieces (a JSON array, Parquet). Refused above `limit`
 * with what to use instead, rather than running the tab out of memory.
 */
export async function readWholeFile(file: DatasetFile, limit: number, instead: string): Promise<Uint8Array> {
  if ('bytes' in file) return file.bytes;
  if (file.size > limit) {
    throw new Error(
      `${file.name}: ${formatMiB(file.size)} is too large for this format, which is read whole (at most ${formatMiB(limit)}); ${instead}`,
    );
  }
  return file.read(0, file.size);
}

export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
}

/** Streams a browser File or Blob with `stream()`: only the chunk being parsed is in memory. */
export function blobDatasetFile(blob: Blob, name: string): StreamedFile {
  return {
    name,
    size: blob.size,
    async *chunks() {
      const reader = blob.stream().getReader();
      let finished = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            finished = true;
            return;
          }
          yield value;
        }
      } finally {
        // A reader that stopped early (an error in a later row) lets the file go.
        if (!finished) await reader.cancel().catch(() => {});
      }
    },
    read: blobSource(blob, name).read,
  };
}
