/**
 * The dense low-rank pair y += s·(x Aᵀ) Bᵀ as four GEMMs (docs/METHODS.md, LoRA and rsLoRA): LoRA's layer and GraLoRA's hybrid part
 * both record it. Backward: dB = s·dyᵀH, dH = s·dy B, dA = dHᵀx, dx += dH A.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../kernels/matmul';
import type { BoundAdapter } from '../../model/adapter';

export interface LowRankTensors {
  /** [rank, in] */
  A: Tensor;
  /** [out, rank] */
  B: Tensor;
  dA: Tensor;
  dB: Tensor;
}

/** Allocates the [rows, rank] scratch (H saved for the backward, and dH) and records forward/backward. */
export function bindLowRank(
  gpu: Gpu,
  t: LowRankTensors,
  dims: { in: number; out: number; rank: number; scale: number; label: string },
  rows: number,
): BoundAdapter {
  const { in: inDim, out: outDim, rank: r, scale: s } = dims;
  const h = gpu.tensor([rows, r], `${dims.label}_h`);
  const dh = gpu.tensor([rows, r], `${dims.label}_dh`);
  return {
    forward: (list, x, y) => {
      matmul(list, { a: x, b: { t: t.A, ld: inDim }, c: { t: h, ld: r }, M: rows, N: r, K: inDim, transB: true });
      matmul(list, {
        a: { t: h, ld: r },
        b: { t: t.B, ld: r },
        c: y,
        M: rows,
        N: outDim,
        K: r,
        transB: true,
        alpha: s,
        beta: 1,
      });
    },
    backward: (list, x, dy, dx) => {
      matmul(list, {
        a: dy,
        b: { t: h, ld: r },
        c: { t: t.dB, ld: r },
        M: outDim,
        N: r,
        K: rows,
        transA: true,
        alpha: s,
      });
      matmul(list, { a: dy, b: { t: t.B, ld: r }, c: { t: dh, ld: r }, M: rows, N: r, K: outDim, alpha: s });
      matmul(list, { a: { t: dh, ld: r }, b: x, c: { t: t.dA, ld: inDim }, M: r, N: inDim, K: rows, transA: true });
      matmul(list, { a: { t: dh, ld: r }, b: { t: t.A, ld: inDim }, c: dx, M: rows, N: inDim, K: r, beta: 1 });
    },
  };
}
