/**
 * A GPU buffer with a shape. All tensors are dense row-major; element type f32 unless stated.
 * f16 and bf16 tensors (frozen base weights) hold two elements per u32 word (see gpu/half.ts); only the
 * kernels that read weights (matmul's B operand, the embedding gather, GoRA's importance) accept them.
 */
import { layoutWords } from '../quant/layout';

export type DType = 'f32' | 'u32' | 'i32' | 'f16' | 'bf16' | QuantDType;

/**
 * Quantized frozen weights (src/quant/layout.ts): 4-bit codebooks with bitsandbytes' blocks (NF4, and FP4 as
 * bnb-4bit checkpoints may store), or int8 with a scale per row.
 */
export type QuantDType = 'nf4' | 'fp4' | 'int8';

export function isHalf(dtype: DType): dtype is 'f16' | 'bf16' {
  return dtype === 'f16' || dtype === 'bf16';
}

export function isQuantized(dtype: DType): dtype is QuantDType {
  return dtype === 'nf4' || dtype === 'fp4' || dtype === 'int8';
}

/**
 * Bytes a tensor of n elements occupies (16-bit tensors round up to whole words). Quantized ones need their
 * row width (`cols`) and count bitsandbytes' default layout (NF4 blocks of 64, double quantization).
 */
export function storageBytes(n: number, dtype: DType, cols = n): number {
  if (isQuantized(dtype)) return 4 * layoutWords(dtype === 'int8' ? 'int8Rows' : 'codebook4', n, Math.max(1, cols));
  return isHalf(dtype) ? Math.ceil(n / 2) * 4 : n * 4;
}

export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number; // elements
  readonly label: string;
  /** A quantized layout's header options that its readers are compiled for (src/quant/layout.ts). */
  readonly quant?: QuantFormat;
}

/** What a quantized weight's readers are specialized on: branches a CPU driver would pay for on every value. */
export interface QuantFormat {
  /** Dequantized values round to this precision: the weight's when it was quantized. */
  rounding: 'f32' | 'bf16' | 'f16';
  /** Stored as the transpose of its logical shape (GPT-2's Conv1D weights). */
  transposed: boolean;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
