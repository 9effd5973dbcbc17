/**
 * A frozen low-rank pair y −= s₀·(x A₀ᵀ) B₀ᵀ: PiSSA's and LoRA-GA's initial adapter, subtracted in the layer
 * instead of from W (the base weights stay untouched on the GPU, 16-bit or shared between runs). Two GEMMs
 * forward and two backward (dx only: nothing about it trains), with one [rows, r] scratch used by both.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../kernels/matmul';
import type { BoundAdapter } from '../../model/adapter';

export interface FrozenPair {
  /** [rank, in] */
  A: Tensor;
  /** [out, rank] */
  B: Tensor;
  /** s₀: the pair contributes −s₀·B₀·A₀. */
  scale: number;
}

export function bindFrozenPair(
  gpu: Gpu,
  p: FrozenPair,
  dims: { in: number; out: number; rank: number; label: string },
  rows: number,
): BoundAdapter {
  const { in: inDim, out: outDim, rank: r } = dims;
  const h = gpu.tensor([rows, r], `${dims.label}_h`);
  return {
    forward: (list, x, y) => {
      matmul(list, { a: x, b: { t: p.A, ld: inDim }, c: { t: h, ld: r }, M: rows, N: r, K: inDim, transB: true });
      matmul(list, {
        a: { t: h, ld: r },
        b: { t: p.B, ld: r },
        c: y,
        M: rows,
        N: outDim,
        K: r,
        transB: true,
        alpha: -p.scale,
        beta: 1,
      });
    },
    // dH₀ = −s₀·dy B₀ (into the forward's scratch: the backward never reads H₀), dx += dH₀ A₀.
    backward: (list, _x, dy, dx) => {
      matmul(list, { a: dy, b: { t: p.B, ld: r }, c: { t: h, ld: r }, M: rows, N: r, K: outDim, alpha: -p.scale });
      matmul(list, { a: { t: h, ld: r }, b: { t: p.A, ld: inDim }, c: dx, M: rows, N: inDim, K: r, beta: 1 });
    },
  };
}
