/**
 * ggml tensor types a GGUF export writes (F32, F16, Q8_0) and their encoders, plus the converter's rule for which
 * type a tensor takes (convert_hf_to_gguf.py ModelBase.prepare_tensors).
 */
import { f32ToF16Bits } from '../../gpu/half';
import type { GgufDtype } from '../merged-model';
import { encodeQ8_0, Q8_0_BLOCK, Q8_0_BLOCK_BYTES } from './q8-0';

/** ggml_type codes (ggml.h, gguf-py GGMLQuantizationType). */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
export type GgmlTypeName = keyof typeof GGML_TYPE;

/** llama_ftype codes for general.file_type (gguf-py LlamaFileType: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0). */
export const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7 };

const REQUESTED: Record<GgufDtype, GgmlTypeName> = { f32: 'F32', f16: 'F16', q8_0: 'Q8_0' };

/**
 * The converter's choice: 1-D tensors, norms, biases and the learned position embedding stay F32; every other
 * weight takes the requested type, and a Q8_0 weight whose rows are not a multiple of 32 falls back to F16
 * (gguf.QuantError -> "falling back to F16").
 */
export function tensorType(ggufName: string, ne: readonly number[], dtype: GgufDtype): GgmlTypeName {
  if (ne.length <= 1 || ggufName.endsWith('_norm.weight')) return 'F32';
  if (ggufName === 'position_embd.weight' || !ggufName.endsWith('.weight')) return 'F32';
  const type = REQUESTED[dtype];
  if (type === 'Q8_0' && ne[0] % Q8_0_BLOCK !== 0) return 'F16';
  return type;
}

export function byteLength(type: GgmlTypeName, count: number): number {
  if (type === 'F32') return count * 4;
  if (type === 'F16') return count * 2;
  return (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Writes `data` as `type` at `offset` of `out` (byteLength(type, data.length) bytes). */
export function encodeTensor(type: GgmlTypeName, data: Float32Array, out: DataView, offset: number): void {
  if (type === 'Q8_0') return encodeQ8_0(data, out, offset);
  if (type === 'F16') {
    for (let i = 0; i < data.length; i++) out.setUint16(offset + i * 2, f32ToF16Bits(data[i]), true);
    return;
  }
  if (littleEndianHost) {
    new Uint8Array(out.buffer, out.byteOffset + offset, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    return;
  }
  for (let i = 0; i < data.length; i++) out.setFloat32(offset + i * 4, data[i], true);
}
