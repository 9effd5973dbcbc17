/**
 * A GPU buffer with a shape. All tensors are dense row-major; element type f32 unless stated.
 * f16 and bf16 tensors (frozen base weights) hold two elements per u32 word (see gpu/half.ts); only the
 * kernels that read weights (matmul's B operand, the embedding gather, GoRA's importance) accept them.
 */
export type DType = 'f32' | 'u32' | 'i32' | 'f16' | 'bf16';

export function isHalf(dtype: DType): dtype is 'f16' | 'bf16' {
  return dtype === 'f16' || dtype === 'bf16';
}

/** Bytes a tensor of n elements occupies (16-bit tensors round up to whole words). */
export function storageBytes(n: number, dtype: DType): number {
  return isHalf(dtype) ? Math.ceil(n / 2) * 4 : n * 4;
}

export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number; // elements
  readonly label: string;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
