/**
 * GoRA's "compress" initialization (docs/METHODS.md, GoRA): with A Kaiming-uniform as in LoRA,
 *   B̃ = Ḡ Aᵀ (A Aᵀ + εI)⁻¹   (least squares: argmin_B ‖B A − Ḡ‖_F),   B = −ξ B̃,   ξ = γ·√(in/r) / s,
 * so ΔW₀ = s·B·A = −γ·√(in/r)·Ḡ·P_A: one descent step of size ≈ γ restricted to A's row space.
 * The minus sign is deliberate (the official code's later "+" is an ascent step; see METHODS.md).
 * Ḡ Aᵀ is a GPU GEMM (init-layers.ts, for every layer at once); the r x r solve runs here, in float64.
 */
import { cholesky, choleskySolveInPlace, gramRows } from '../../util/linalg';

export const COMPRESS_EPSILON = 1e-8;

/** ξ for a matrix with `inDim` inputs, rank r and adapter scale s. */
export function compressStep(gamma: number, inDim: number, rank: number, scale: number): number {
  return (gamma * Math.sqrt(inDim / rank)) / scale;
}

/** B [out, r] from P = Ḡ Aᵀ [out, r] (host side of the init). */
export function compressB(
  p: ArrayLike<number>,
  a: ArrayLike<number>,
  out: number,
  rank: number,
  inDim: number,
  xi: number,
): Float32Array {
  const m = gramRows(a, rank, inDim);
  for (let i = 0; i < rank; i++) m[i * rank + i] += COMPRESS_EPSILON;
  const l = cholesky(m, rank);
  const b = new Float32Array(out * rank);
  const row = new Float64Array(rank);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < rank; c++) row[c] = p[o * rank + c];
    // (A Aᵀ + εI) is symmetric, so row o of B̃ solves (A Aᵀ + εI)·b = (Ḡ Aᵀ)[o, :].
    choleskySolveInPlace(l, rank, row);
    for (let c = 0; c < rank; c++) b[o * rank + c] = -xi * row[c];
  }
  return b;
}
