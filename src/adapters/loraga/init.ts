/**
 * LoRA-GA's initialization (PEFT LoraLayer.lora_ga_init): from the mean gradient Ḡ [out, in] of a target weight,
 * Ḡ ≈ U·S·Vᵀ by torch.svd_lowrank(Ḡ, q = min(4r, min(out, in)), niter = 4); of its top 2r triplets A takes r right
 * vectors as rows and B r left vectors times their σ, chosen by `direction`; `scale` then rescales:
 *   stable      B ·= out^¼ / √γ
 *   weight_svd  B ·= σ₁(W) / σ_B[0]   (σ₁(W) from svd_lowrank(W, q = r, niter = 4))
 *   gd_scale    A /= s, B /= s
 *   unit        nothing.
 * PEFT then subtracts s·B·A from W; the layer here subtracts its frozen copy of (A, B) (pissa/layer.ts).
 */
import type { Rng } from '../../util/random';
import { type LinearOperator, svdLowRank } from '../../util/svd';
import type { LoragaConfig } from './method';

export interface LoragaFactors {
  A: Float32Array;
  B: Float32Array;
  /** The singular values of Ḡ whose left vectors B holds (σ_B), before the scale rule. */
  capturedSingularValues: number[];
}

/** Which of the top 2r triplets A and B take: [A's indices, B's indices]. */
export function loragaIndices(direction: LoragaConfig['direction'], r: number, rng: Rng): [number[], number[]] {
  const range = (from: number, step: number) => Array.from({ length: r }, (_, j) => from + step * j);
  switch (direction) {
    case 'ArBr':
      return [range(1, 2), range(0, 2)];
    case 'A2rBr':
      return [range(r, 1), range(0, 1)];
    case 'ArB2r':
      return [range(0, 1), range(r, 1)];
    case 'random': {
      // torch.randperm(2r)[:r], for A and B alike.
      const idx = rng.shuffle(Array.from({ length: 2 * r }, (_, j) => j)).slice(0, r);
      return [idx, idx];
    }
  }
}

export async function loragaFactors(
  /** The accumulated gradient [out, in] (on the GPU in a run: util/svd.ts LinearOperator). */
  grad: LinearOperator,
  r: number,
  cfg: Pick<LoragaConfig, 'direction' | 'scale' | 'stableGamma'>,
  /** s = alpha/r of the layer (gd_scale divides by it). */
  scaling: number,
  rng: Rng,
  /** W [out, in], only read by the weight_svd scale. */
  weight?: () => LinearOperator,
): Promise<LoragaFactors> {
  const { m: out, n: inDim } = grad;
  if (2 * r > Math.min(out, inDim))
    throw new Error(
      `LoRA-GA needs 2r (${2 * r}) <= min(in, out) (${Math.min(out, inDim)}) for a ${out}x${inDim} weight`,
    );
  const q = Math.min(4 * r, Math.min(out, inDim));
  const svd = await svdLowRank(grad, q, 4, rng);
  const k = svd.k;
  const [ia, ib] = loragaIndices(cfg.direction, r, rng);
  const sB = ib.map((j) => svd.S[j]);
  let factorA = 1;
  let factorB = 1;
  if (cfg.scale === 'stable') factorB = out ** 0.25 / Math.sqrt(cfg.stableGamma);
  else if (cfg.scale === 'weight_svd') {
    if (!weight) throw new Error('LoRA-GA weight_svd scale needs the weight');
    const ws = await svdLowRank(weight(), r, 4, rng);
    if (sB[0] > 0) factorB = ws.S[0] / sB[0];
  } else if (cfg.scale === 'gd_scale') {
    factorA = 1 / scaling;
    factorB = 1 / scaling;
  }
  const A = new Float32Array(r * inDim);
  const B = new Float32Array(out * r);
  for (let j = 0; j < r; j++) {
    for (let i = 0; i < inDim; i++) A[j * inDim + i] = factorA * svd.V[i * k + ia[j]];
    for (let o = 0; o < out; o++) B[o * r + j] = factorB * sB[j] * svd.U[o * k + ib[j]];
  }
  return { A, B, capturedSingularValues: sB };
}
