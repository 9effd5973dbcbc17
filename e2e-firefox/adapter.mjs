/** The exported adapter zip, read outside the browser: its files, and adapter_model.safetensors' tensors. */
import { strFromU8, unzipSync } from 'fflate';

/** The zip's files by name. */
export function readZip(bytes) {
  return unzipSync(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

export const json = (bytes) => JSON.parse(strFromU8(bytes));

/**
 * A safetensors file: 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets of every
 * tensor), then the data. Checks that the offsets tile the data exactly, and returns every F32 tensor's values.
 */
export function readSafetensors(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (8 + n > bytes.byteLength) throw new Error(`safetensors header of ${n} bytes in a ${bytes.byteLength}-byte file`);
  const header = JSON.parse(strFromU8(bytes.subarray(8, 8 + n)));
  const metadata = header.__metadata__ ?? null;
  delete header.__metadata__;
  const data = bytes.subarray(8 + n);
  const entries = Object.entries(header).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  let end = 0;
  const tensors = {};
  for (const [name, t] of entries) {
    const [from, to] = t.data_offsets;
    if (from !== end) throw new Error(`${name} starts at ${from}, the previous tensor ends at ${end}`);
    if (t.dtype !== 'F32') throw new Error(`${name} is ${t.dtype}, expected F32`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (to - from !== 4 * count) throw new Error(`${name}: ${to - from} bytes for shape [${t.shape}]`);
    // Copied: the data need not be 4-byte aligned in the zip's buffer.
    tensors[name] = { shape: t.shape, values: new Float32Array(data.slice(from, to).buffer) };
    end = to;
  }
  if (end !== data.byteLength) throw new Error(`the tensors end at ${end} of ${data.byteLength} data bytes`);
  return { metadata, tensors };
}

/** Largest |x|, and whether every value is finite. */
export function stats(values) {
  let maxAbs = 0;
  let finite = true;
  for (const v of values) {
    if (!Number.isFinite(v)) finite = false;
    else maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  return { maxAbs, finite };
}
