/**
 * Byte sources: how model files are read without loading them whole. A checkpoint can be larger than
 * the memory we want to spend on it, so readers ask for byte ranges (headers first, then one tensor
 * at a time). Node files and browser Blobs have their own implementations (node-source.ts,
 * blob-source.ts); bytesSource() wraps bytes already in memory (tests, converted models).
 */

/** A readable file: `read` returns exactly `length` bytes starting at `offset`, or throws. */
export interface ByteSource {
  name: string;
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A folder of files (a Hugging Face model folder). `list` gives the file names inside it. */
export interface DirSource {
  /** How messages name the folder. */
  name: string;
  /** The folder's own name, when known (files picked one by one have none). */
  folder?: string | null;
  list(): string[];
  file(name: string): ByteSource | undefined;
  /** The file as UTF-8 text; throws naming the folder when the file does not exist. */
  text(name: string): Promise<string>;
}

/** Checks a requested range against the source size, with a message naming the file. */
export function checkRange(src: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new Error(`${src.name}: invalid byte range (offset ${offset}, length ${length})`);
  }
  if (offset + length > src.size) {
    throw new Error(
      `${src.name}: read of ${length} bytes at offset ${offset} goes past the end of the file (${src.size} bytes)`,
    );
  }
}

/** A ByteSource over bytes in memory. */
export function bytesSource(name: string, bytes: Uint8Array): ByteSource {
  const src: ByteSource = {
    name,
    size: bytes.length,
    async read(offset, length) {
      checkRange(src, offset, length);
      // A copy, so callers may keep or view it (aligned at 0) without pinning `bytes`.
      return bytes.slice(offset, offset + length);
    },
  };
  return src;
}

/** A DirSource over in-memory files (tests, and models built in memory). */
export function memoryDir(name: string, files: Record<string, Uint8Array | string>): DirSource {
  const encoder = new TextEncoder();
  const sources = new Map<string, ByteSource>();
  for (const [fileName, content] of Object.entries(files)) {
    const bytes = typeof content === 'string' ? encoder.encode(content) : content;
    sources.set(fileName, bytesSource(`${name}/${fileName}`, bytes));
  }
  return {
    name,
    folder: name,
    list: () => [...sources.keys()],
    file: (fileName) => sources.get(fileName),
    async text(fileName) {
      const src = sources.get(fileName);
      if (!src) throw new Error(`${name} has no file ${fileName}`);
      return decodeUtf8(await src.read(0, src.size), src.name);
    },
  };
}

/** Strict UTF-8 decoding with an error naming the file. */
export function decodeUtf8(bytes: Uint8Array, fileName: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${fileName} is not valid UTF-8 text`);
  }
}
