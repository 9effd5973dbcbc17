/**
 * PiSSA's initialization (PEFT LoraLayer.pissa_init): W [out, in] = U·S·Vᵀ; with S_r' = S_r / s,
 * A = diag(√S_r')·V_rᵀ and B = U_r·diag(√S_r'), so s·B·A = U_r·S_r·V_rᵀ, W's top-r part. PEFT then replaces W by
 * W − s·B·A; here the layer subtracts its frozen copy of (A, B) instead (layer.ts).
 */
import type { Gpu } from '../../gpu/gpu';
import type { LinearInfo } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import type { Rng } from '../../util/random';
import { type LinearOperator, type Svd, svdLowRank, svdTop, truncateSvd } from '../../util/svd';
import { gpuOperator } from './weight-operator';

/** A target's weight as float64 [out, in] (nn.Linear's layout; GPT-2's Conv1D [in, out] transposed), any storage. */
export async function readLinearWeight(gpu: Gpu, weights: ModelWeights, info: LinearInfo): Promise<Float64Array> {
  const stored = await gpu.read(weights.get(info.weight));
  const w = new Float64Array(info.out * info.in);
  if (!info.conv1d) {
    w.set(stored);
    return w;
  }
  for (let i = 0; i < info.in; i++) for (let o = 0; o < info.out; o++) w[o * info.in + i] = stored[i * info.out + o];
  return w;
}

/**
 * The top-r SVD PEFT's `init_lora_weights` names for a target's weight: "pissa" (niter 0: exact, in float64 on the
 * host after one readback of W) or "pissa_niter_N" (randomized, q = r, its products on the GPU: W is never read back).
 */
export async function pissaSvd(
  gpu: Gpu,
  weights: ModelWeights,
  info: LinearInfo,
  rank: number,
  niter: number,
  rng: Rng,
): Promise<Svd> {
  if (niter === 0) return svdTop(await readLinearWeight(gpu, weights, info), info.out, info.in, rank);
  return truncateSvd(await svdLowRank(weightOperator(gpu, weights, info, rank), rank, niter, rng), rank);
}

/** A target's weight on the GPU as a LinearOperator of q columns (its scratch: the caller's mark / freeSince). */
export function weightOperator(gpu: Gpu, weights: ModelWeights, info: LinearInfo, q: number): LinearOperator {
  const stored = { tensor: weights.get(info.weight), m: info.out, n: info.in, transposed: info.conv1d };
  return gpuOperator(gpu, stored, q, info.path);
}

/** B = U_r·√(S_r/s) [out, r], A = √(S_r/s)·V_rᵀ [r, in] (float32, as the layer holds them). */
export function splitSingularTriplets(svd: Svd, scale: number): { A: Float32Array; B: Float32Array } {
  const { m: out, n: inDim, k: r } = svd;
  const A = new Float32Array(r * inDim);
  const B = new Float32Array(out * r);
  for (let j = 0; j < r; j++) {
    const root = Math.sqrt(svd.S[j] / scale);
    for (let i = 0; i < inDim; i++) A[j * inDim + i] = root * svd.V[i * r + j];
    for (let o = 0; o < out; o++) B[o * r + j] = root * svd.U[o * r + j];
  }
  return { A, B };
}

/** PEFT's init_lora_weights value for a PiSSA run. */
export function pissaInitName(niter: number): string {
  return niter === 0 ? 'pissa' : `pissa_niter_${niter}`;
}
