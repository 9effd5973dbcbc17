/**
 * Q8_0, bit for bit as ggml's quantize_row_q8_0_ref and gguf-py's quants.Q8_0 compute it: blocks of 32 values,
 * each stored as an f16 scale d = amax / 127 followed by 32 int8 codes round(x / d), rounding half away from
 * zero. The arithmetic is float32 as in the C code (Math.fround after every operation it rounds).
 */
import { f16BitsToF32, f32ToF16Bits } from '../../gpu/half';

export const Q8_0_BLOCK = 32;
/** Bytes of one block: the f16 scale, then 32 int8 codes. */
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

/** C's roundf: half away from zero (not JavaScript's Math.round, which rounds -2.5 to -2). */
export function roundHalfAwayFromZero(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** Writes the Q8_0 blocks of `data` (its length a multiple of 32) at `offset` of `out`. */
export function encodeQ8_0(data: Float32Array, out: DataView, offset: number): void {
  if (data.length % Q8_0_BLOCK !== 0) {
    throw new Error(`Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${data.length}`);
  }
  let at = offset;
  for (let start = 0; start < data.length; start += Q8_0_BLOCK) {
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(data[start + j]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    out.setUint16(at, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      out.setInt8(at + 2 + j, roundHalfAwayFromZero(Math.fround(data[start + j] * id)));
    }
    at += Q8_0_BLOCK_BYTES;
  }
}

/** The values Q8_0 blocks stand for (ggml's dequantize_row_q8_0): code x f16 scale. */
export function decodeQ8_0(bytes: Uint8Array, count: number): Float32Array {
  if (count % Q8_0_BLOCK !== 0 || bytes.length < (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES) {
    throw new Error(`Q8_0: ${bytes.length} bytes do not hold ${count} values`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let b = 0; b < count / Q8_0_BLOCK; b++) {
    const at = b * Q8_0_BLOCK_BYTES;
    const d = f16BitsToF32(view.getUint16(at, true));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = view.getInt8(at + 2 + j) * d;
  }
  return out;
}
