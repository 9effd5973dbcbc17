/**
 * The GGUF v3 container (ggml docs/gguf.md, gguf-py GGUFWriter): magic, version, tensor and metadata counts,
 * the metadata key/values, the tensor infos (name, dimensions innermost first, type, offset into the data), then
 * the tensor data, every tensor starting on a multiple of general.alignment and padded with zeros to the next one.
 */
import { ByteSink } from './byte-sink';
import { type GgufMetadata, type GgufValue, VALUE_TYPE } from './metadata-values';
import { byteLength, encodeTensor, GGML_TYPE, type GgmlTypeName } from './tensor-data';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

export interface GgufTensor {
  name: string;
  /** ggml dimensions, innermost (contiguous) first: a PyTorch [rows, cols] weight is ne = [cols, rows]. */
  ne: number[];
  type: GgmlTypeName;
  /** The values in row-major order (ne[0] fastest). */
  data: Float32Array;
}

const pad = (n: number, align: number) => Math.ceil(n / align) * align;

/** The whole file in memory. */
export function encodeGguf(metadata: GgufMetadata, tensors: GgufTensor[]): Uint8Array {
  const alignment = alignmentOf(metadata);
  const header = new ByteSink();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.size);
  for (const [key, value] of metadata) {
    header.string(key);
    writeValue(header, key, value);
  }
  const offsets: number[] = [];
  let dataSize = 0;
  for (const t of tensors) {
    const count = t.ne.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `GGUF tensor ${t.name}: dimensions [${t.ne.join(', ')}] hold ${count} values, got ${t.data.length}`,
      );
    }
    header.string(t.name);
    header.u32(t.ne.length);
    for (const n of t.ne) header.u64(n);
    header.u32(GGML_TYPE[t.type]);
    header.u64(dataSize);
    offsets.push(dataSize);
    dataSize += pad(byteLength(t.type, count), alignment);
  }
  const dataStart = pad(header.length, alignment);
  const file = allocate(dataStart + dataSize); // zero-filled: the padding is already written
  file.set(header.result());
  const view = new DataView(file.buffer);
  tensors.forEach((t, i) => encodeTensor(t.type, t.data, view, dataStart + offsets[i]));
  return file;
}

function allocate(bytes: number): Uint8Array {
  try {
    return new Uint8Array(bytes);
  } catch (e) {
    throw new Error(
      `The GGUF file would be ${bytes} bytes, more than this JavaScript runtime holds in one buffer ` +
        `(${(e as Error).message}); a smaller type (f16, q8_0) makes a smaller file`,
    );
  }
}

function alignmentOf(metadata: GgufMetadata): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return GGUF_ALIGNMENT;
  if (value.type !== 'uint32' || value.value <= 0 || (value.value & (value.value - 1)) !== 0) {
    throw new Error(`general.alignment must be a uint32 power of two, got ${JSON.stringify(value)}`);
  }
  return value.value;
}

function writeValue(out: ByteSink, key: string, v: GgufValue): void {
  switch (v.type) {
    case 'uint32':
      out.u32(VALUE_TYPE.uint32);
      return out.u32(v.value);
    case 'int32':
      out.u32(VALUE_TYPE.int32);
      return out.i32(v.value);
    case 'float32':
      out.u32(VALUE_TYPE.float32);
      return out.f32(v.value);
    case 'bool':
      out.u32(VALUE_TYPE.bool);
      return out.u8(v.value ? 1 : 0);
    case 'string':
      out.u32(VALUE_TYPE.string);
      return out.string(v.value);
    case 'string[]':
      arrayHeader(out, key, VALUE_TYPE.string, v.value.length);
      for (const s of v.value) out.string(s);
      return;
    case 'int32[]':
      arrayHeader(out, key, VALUE_TYPE.int32, v.value.length);
      for (let i = 0; i < v.value.length; i++) out.i32(v.value[i]);
      return;
    case 'float32[]':
      arrayHeader(out, key, VALUE_TYPE.float32, v.value.length);
      for (let i = 0; i < v.value.length; i++) out.f32(v.value[i]);
      return;
  }
}

function arrayHeader(out: ByteSink, key: string, itemType: number, length: number): void {
  // gguf-py refuses empty arrays ("Invalid GGUF metadata array. Empty array"); callers leave such keys out.
  if (length === 0) throw new Error(`GGUF metadata ${key}: empty arrays cannot be written`);
  out.u32(VALUE_TYPE.array);
  out.u32(itemType);
  out.u64(length);
}
