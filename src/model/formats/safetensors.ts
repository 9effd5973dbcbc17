/**
 * safetensors reading (lazy, by byte range) and writing. Format: u64 LE header length N, N bytes of
 * UTF-8 JSON {name: {dtype, shape, data_offsets: [begin, end)}, __metadata__?: {string: string}},
 * then the data section, which the tensors must tile exactly (no holes, no overlaps).
 */
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../gpu/half';
import { bytesSource, decodeUtf8, type ByteSource, type DirSource } from './source';

export type { ByteSource, DirSource } from './source';

/** Bytes per element of every dtype the format defines that we recognise (the fuzz tests size tensors by it). */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

/** The dtypes loadTensor can widen to f32 weights. */
export const WEIGHT_DTYPES: readonly Dtype[] = ['F32', 'F16', 'BF16'];

/** The reference implementation refuses headers above 100 MB; so do we (it guards against garbage lengths). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Absolute byte range [begin, end) of the tensor's data in `source` (header already accounted for). */
  begin: number;
  end: number;
  source: ByteSource;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string> | null;
  /** Offset of the data section: 8 + header length. */
  dataStart: number;
}

/** Reads and validates the header; tensor data is not read. */
export async function readSafetensors(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  if (src.size < 8) {
    throw new Error(`${file}: ${src.size} bytes is too small for a safetensors file (expected at least 8)`);
  }
  const lengthBytes = await src.read(0, 8);
  const headerLength = Number(new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > src.size - 8) {
    throw new Error(
      `${file}: header length ${headerLength} goes past the end of the file (${src.size} bytes; ` +
        `expected at most ${src.size - 8}); the file is truncated or not safetensors`,
    );
  }
  if (headerLength > MAX_HEADER_BYTES) {
    throw new Error(`${file}: header length ${headerLength} exceeds the 100 MB limit`);
  }
  const text = decodeUtf8(await src.read(8, headerLength), `${file} header`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: header is not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(
      `${file}: header must be a JSON object of tensors, got ${Array.isArray(json) ? 'an array' : typeof json}`,
    );
  }
  const duplicate = firstDuplicateKey(text);
  if (duplicate !== null) throw new Error(`${file}: tensor "${duplicate}" appears twice in the header`);

  const dataStart = 8 + headerLength;
  const dataSize = src.size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> | null = null;
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, file);
      continue;
    }
    const info = parseEntry(name, entry, file, dataSize);
    tensors.set(name, { ...info, begin: dataStart + info.begin, end: dataStart + info.end, source: src });
  }
  checkTiling([...tensors.values()], dataStart, dataSize, file);
  return { tensors, metadata, dataStart };
}

/** The tensors of a safetensors file, by name (see readSafetensors for the metadata). */
export async function readSafetensorsHeader(src: ByteSource): Promise<Map<string, TensorInfo>> {
  return (await readSafetensors(src)).tensors;
}

function parseMetadata(entry: unknown, file: string): Record<string, string> {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new Error(`${file}: __metadata__ must be an object of strings`);
  }
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') {
      throw new Error(`${file}: __metadata__.${key} must be a string, got ${JSON.stringify(value)}`);
    }
  }
  return entry as Record<string, string>;
}

function parseEntry(
  name: string,
  entry: unknown,
  file: string,
  dataSize: number,
): { name: string; dtype: Dtype; shape: number[]; begin: number; end: number } {
  const where = `${file}: tensor "${name}"`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new Error(`${where} must be an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new Error(
      `${where} has unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_BYTES).join(', ')})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where} has invalid shape ${JSON.stringify(shape)} (expected an array of non-negative integers)`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new Error(
      `${where} has invalid data_offsets ${JSON.stringify(offsets)} (expected [begin, end] with 0 <= begin <= end)`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const expected = shape.reduce((a: number, b: number) => a * b, 1) * DTYPE_BYTES[dtype as Dtype];
  if (end - begin !== expected) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes, but shape [${shape.join(', ')}] ` +
        `of ${dtype} needs ${expected}`,
    );
  }
  if (end > dataSize) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] are out of range (the data section has ${dataSize} bytes); ` +
        `the file is truncated or the header is wrong`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: [...shape], begin, end };
}

/** The tensors must tile the data section: first begin 0, each begin = previous end, last end = size. */
function checkTiling(tensors: TensorInfo[], dataStart: number, dataSize: number, file: string): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  let previous: TensorInfo | null = null;
  for (const t of sorted) {
    const begin = t.begin - dataStart;
    if (begin < position) {
      throw new Error(
        `${file}: tensor "${t.name}" (bytes ${begin}..${t.end - dataStart}) overlaps tensor "${previous!.name}" (ends at ${position})`,
      );
    }
    if (begin > position) {
      const after = previous ? `after tensor "${previous.name}"` : 'at the start of the data section';
      throw new Error(
        `${file}: ${begin - position} unused bytes (a hole) ${after}, before tensor "${t.name}" at ${begin}`,
      );
    }
    position = t.end - dataStart;
    previous = t;
  }
  if (position !== dataSize) {
    throw new Error(`${file}: the data section has ${dataSize - position} bytes after the last tensor (expected none)`);
  }
}

/**
 * JSON.parse keeps the last of duplicate keys silently; scan the top-level object's keys ourselves.
 * `text` is known to be valid JSON here, so a small scanner suffices.
 */
function firstDuplicateKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let f16Table: Float32Array | null = null;

/** All 65536 half-precision values as f32 (built once; exact, since f32 holds every f16). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  return f16Table;
}

/** Widens raw little-endian bytes of a weight dtype to f32. F32 returns a view of `bytes` when aligned (no copy). */
export function decodeToF32(bytes: Uint8Array, dtype: Dtype, what = 'tensor'): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      const n = bytes.byteLength / 4;
      if (littleEndian && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F16': {
      const table = halfTable();
      const n = bytes.byteLength / 2;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[view.getUint16(i * 2, true)];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: shift the bits into place.
      const n = bytes.byteLength / 2;
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw notWeightDtype(what, dtype);
  }
}

function notWeightDtype(what: string, dtype: Dtype): Error {
  return new Error(`${what} has dtype ${dtype}; only ${WEIGHT_DTYPES.join(', ')} can be loaded as weights`);
}

/** Reads one tensor's bytes and widens them to f32 (F32, F16, BF16; other dtypes are rejected). */
export async function loadTensor(info: TensorInfo): Promise<Float32Array> {
  const what = `${info.source.name}: tensor "${info.name}"`;
  if (!WEIGHT_DTYPES.includes(info.dtype)) throw notWeightDtype(what, info.dtype);
  return decodeToF32(await info.source.read(info.begin, info.end - info.begin), info.dtype, what);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints (single file or sharded)

export interface WeightStore {
  /** Where the weights came from (folder or file name), for messages. */
  name: string;
  names(): string[];
  info(name: string): TensorInfo | undefined;
  /** The tensor widened to f32; throws naming the checkpoint when it does not exist. */
  load(name: string): Promise<Float32Array>;
}

function storeOf(name: string, tensors: Map<string, TensorInfo>): WeightStore {
  return {
    name,
    names: () => [...tensors.keys()].sort(),
    info: (tensorName) => tensors.get(tensorName),
    load(tensorName) {
      const info = tensors.get(tensorName);
      if (!info) return Promise.reject(new Error(`${name} has no tensor "${tensorName}"`));
      return loadTensor(info);
    },
  };
}

/** A WeightStore over one safetensors file. */
export async function openSafetensors(src: ByteSource): Promise<WeightStore> {
  return storeOf(src.name, await readSafetensorsHeader(src));
}

/** A WeightStore over tensors in memory (stored as an in-memory safetensors file, so info() is real). */
export async function memoryStore(name: string, tensors: NamedTensor[]): Promise<WeightStore> {
  return openSafetensors(bytesSource(name, writeSafetensors(tensors)));
}

const INDEX_FILE = 'model.safetensors.index.json';

/**
 * Opens a model folder: model.safetensors.index.json (sharded; weight_map name -> shard file),
 * else model.safetensors, else the folder's only *.safetensors file.
 */
export async function openCheckpoint(dir: DirSource): Promise<WeightStore> {
  const files = dir.list();
  if (files.includes(INDEX_FILE)) return openSharded(dir);
  const candidates = files.includes('model.safetensors')
    ? ['model.safetensors']
    : files.filter((f) => f.endsWith('.safetensors'));
  if (candidates.length === 1) {
    const store = await openSafetensors(dir.file(candidates[0])!);
    return { ...store, name: `${dir.name}/${candidates[0]}` };
  }
  if (candidates.length > 1) {
    throw new Error(`${dir.name} has several .safetensors files (${candidates.join(', ')}) but no ${INDEX_FILE}`);
  }
  const torchFiles = files.filter((f) => f.endsWith('.bin') || f.endsWith('.pt') || f.endsWith('.pth'));
  const hint = torchFiles.length
    ? `; ${torchFiles.join(', ')} are PyTorch pickles, which are not supported: save the model with safe_serialization=True`
    : '';
  throw new Error(`${dir.name} has no model.safetensors or ${INDEX_FILE}${hint}`);
}

async function openSharded(dir: DirSource): Promise<WeightStore> {
  const where = `${dir.name}/${INDEX_FILE}`;
  let index: unknown;
  try {
    index = JSON.parse(await dir.text(INDEX_FILE));
  } catch (e) {
    throw new Error(`${where} is not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new Error(`${where} has no weight_map object`);
  }
  const entries = Object.entries(weightMap as Record<string, unknown>);
  const shardNames = [...new Set(entries.map(([, shard]) => shard))];
  const shards = new Map<string, Map<string, TensorInfo>>();
  await Promise.all(
    shardNames.map(async (shard) => {
      if (typeof shard !== 'string')
        throw new Error(`${where}: weight_map values must be file names, got ${JSON.stringify(shard)}`);
      const src = dir.file(shard);
      if (!src) throw new Error(`${where} names shard ${shard}, which is not in ${dir.name}`);
      shards.set(shard, await readSafetensorsHeader(src));
    }),
  );
  const tensors = new Map<string, TensorInfo>();
  for (const [name, shard] of entries) {
    const info = shards.get(shard as string)!.get(name);
    if (!info)
      throw new Error(`${where} maps tensor "${name}" to ${shard as string}, but that shard has no such tensor`);
    tensors.set(name, info);
  }
  return storeOf(dir.name, tensors);
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
  /** Stored precision (default F32); F16/BF16 round to nearest even, as torch's .to() does. */
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** A tensor given as its stored little-endian bytes, any dtype (quantized U8/I8 weights, tensors copied as they are). */
export interface RawTensor {
  name: string;
  shape: number[];
  dtype: Dtype;
  bytes: Uint8Array;
}

/** Little-endian bytes of a tensor in its stored precision. */
function encodeTensor(t: NamedTensor | RawTensor): Uint8Array {
  if ('bytes' in t) return t.bytes;
  if (!t.dtype || t.dtype === 'F32') {
    if (littleEndian) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const out = new Uint8Array(t.data.byteLength);
    const view = new DataView(out.buffer);
    for (let i = 0; i < t.data.length; i++) view.setFloat32(i * 4, t.data[i], true);
    return out;
  }
  const encode = t.dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint8Array(t.data.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < t.data.length; i++) view.setUint16(i * 2, encode(t.data[i]), true);
  return out;
}

/**
 * Writes tensors (F32 unless a tensor says F16/BF16; RawTensor bytes as given) as safetensors: tensors sorted by name
 * and packed without holes, header padded with spaces to a multiple of 8 bytes so the data section is 8-byte aligned.
 */
export function writeSafetensors(
  tensors: (NamedTensor | RawTensor)[],
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array {
  const chunks = safetensorsChunks(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let position = 0;
  for (const c of chunks) {
    out.set(c, position);
    position += c.byteLength;
  }
  return out;
}

/** writeSafetensors' file as pieces (length and header, then each tensor's bytes), to write one after another. */
export function safetensorsChunks(
  tensors: (NamedTensor | RawTensor)[],
  metadata: Record<string, string> = { format: 'pt' },
): Uint8Array[] {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const encoded: Uint8Array[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    const { name, shape } = t;
    if (name === '__metadata__' || name.length === 0)
      throw new Error(`writeSafetensors: invalid tensor name "${name}"`);
    if (i > 0 && sorted[i - 1].name === name) throw new Error(`writeSafetensors: tensor "${name}" is given twice`);
    const numel = shape.reduce((a, b) => a * b, 1);
    const count = 'bytes' in t ? t.bytes.byteLength / DTYPE_BYTES[t.dtype] : t.data.length;
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== count) {
      throw new Error(`writeSafetensors: tensor "${name}" has shape [${shape.join(', ')}] but ${count} values`);
    }
    const bytes = encodeTensor(sorted[i]);
    encoded.push(bytes);
    header[name] = { dtype: sorted[i].dtype ?? 'F32', shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(json);
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  json += ' '.repeat(padded - headerBytes.length);

  const head = new Uint8Array(8 + padded);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(new TextEncoder().encode(json), 8);
  return [head, ...encoded];
}
