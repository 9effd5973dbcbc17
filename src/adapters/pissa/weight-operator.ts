/**
 * A matrix on the GPU as a LinearOperator (util/svd.ts) for the randomized SVD (PEFT's pissa_niter_N, LoRA-GA's
 * svd_lowrank): M·X and Mᵀ·Y are the graph's own linear products, so any weight storage (f32, bf16, f16) works and
 * the matrix is never read back. M [m, n] is a weight [out, in] (GPT-2's Conv1D stores it transposed, [in, out]) or
 * an f32 gradient [out, in]. The products are float32 (as torch.svd_lowrank on a float32 weight); the sketch's
 * orthonormalization and the small SVD stay float64 on the host.
 *
 * Only the [rows, q] sides cross the bus: M·X is computed as Xᵀ·Mᵀ [q, m] with M as the B operand (where the
 * matmul dequantizes 16-bit storage) and transposed on the host.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../kernels/matmul';
import type { LinearOperator } from '../../util/svd';

export interface StoredMatrix {
  tensor: Tensor;
  /** M's shape [m, n]. */
  m: number;
  n: number;
  /** Stored as Mᵀ [n, m] (GPT-2's Conv1D weights). */
  transposed: boolean;
}

/** The operator, with its scratch for q columns allocated now (the caller frees it with gpu.mark / freeSince). */
export function gpuOperator(gpu: Gpu, s: StoredMatrix, q: number, label: string): LinearOperator {
  const { m, n, tensor, transposed } = s;
  const x = gpu.tensor([n, q], `${label}.svd_x`);
  const y = gpu.tensor([m, q], `${label}.svd_y`);
  const mx = gpu.tensor([q, m], `${label}.svd_mx`);
  const mty = gpu.tensor([q, n], `${label}.svd_mty`);
  const ld = transposed ? m : n;
  const columns = (k: number) => {
    if (k !== q) throw new Error(`${label}: this operator was built for ${q} columns, not ${k}`);
  };
  return {
    m,
    n,
    async mul(xs, k) {
      columns(k);
      gpu.upload(x, Float32Array.from(xs));
      // (M·X)ᵀ = Xᵀ·Mᵀ [q, m]: M as the graph's forward reads a weight.
      await gpu.runOnce(`${label}.svd_mul`, (list) =>
        matmul(list, {
          a: { t: x, ld: q },
          b: { t: tensor, ld },
          c: { t: mx, ld: m },
          M: q,
          N: m,
          K: n,
          transA: true,
          transB: !transposed,
        }),
      );
      return transposeToRows(await gpu.read(mx), q, m);
    },
    async mulT(ys, k) {
      columns(k);
      gpu.upload(y, Float32Array.from(ys));
      // (Mᵀ·Y)ᵀ = Yᵀ·M [q, n]: M as the graph's backward reads a weight for dx.
      await gpu.runOnce(`${label}.svd_mul_t`, (list) =>
        matmul(list, {
          a: { t: y, ld: q },
          b: { t: tensor, ld },
          c: { t: mty, ld: n },
          M: q,
          N: n,
          K: m,
          transA: true,
          transB: transposed,
        }),
      );
      return transposeToRows(await gpu.read(mty), q, n);
    },
  };
}

/** [q, rows] row-major -> [rows, q] row-major, in float64. */
function transposeToRows(c: Float32Array, q: number, rows: number): Float64Array {
  const out = new Float64Array(rows * q);
  for (let j = 0; j < q; j++) for (let i = 0; i < rows; i++) out[i * q + j] = c[j * rows + i];
  return out;
}
