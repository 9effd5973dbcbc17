/**
 * GoRA's compress init applied to adapters that already exist, whatever their structure (DESIGN.md:
 * allocation x structure x init). Each returns ‖ΔW₀‖_F for the studio.
 *  - dense LoRA: B = −ξ·Ḡ Aᵀ (A Aᵀ + εI)⁻¹ for the layer's own A;
 *  - GraLoRA: every block (m, n) is a LoRA of rank r/k on the sub-matrix Ḡ_{m,n} [out/k, in/k], so each gets
 *    its own least-squares B_{m,n}; ξ = γ·√((in/k)/(r/k))/s = γ·√(in/r)/s is the same for every block.
 *    Ḡ[:, n-block]·GA[n] for all n is one batched GEMM; its diagonal chunks are Ḡ_{m,n}·A_{m,n}ᵀ.
 *    The hybrid part keeps B_g = 0.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../kernels/matmul';
import { lowRankFrobenius } from '../../util/linalg';
import type { GraloraLayer } from '../gralora/layer';
import type { LoraLayer } from '../lora/layer';
import { compressB, compressStep, gradTimesAT } from './init';

export async function goraInitLora(gpu: Gpu, layer: LoraLayer, grad: Tensor, gamma: number): Promise<number> {
  const { in: inDim, out } = layer.info;
  const r = layer.rank;
  if (gamma === 0) return 0;
  const A = await gpu.read(layer.A);
  const p = await gradTimesAT(gpu, grad, layer.A, out, r, inDim);
  const B = compressB(p, A, out, r, inDim, compressStep(gamma, inDim, r, layer.scale));
  gpu.upload(layer.B, B);
  return lowRankFrobenius(B, A, out, r, inDim, layer.scale);
}

export async function goraInitGralora(gpu: Gpu, layer: GraloraLayer, grad: Tensor, gamma: number): Promise<number> {
  const { in: inDim, out } = layer.info;
  const { k, rank: r } = layer;
  if (gamma === 0) return 0;
  const ik = inDim / k, ok = out / k, sr = r / k;
  // P[n] = Ḡ[:, n-block] · GA[n]   [k, out, r]
  const p = gpu.tensor([k, out, r], 'gora.gralora_P');
  await gpu.runOnce('gora.init.gralora', (list) => matmul(list, {
    a: { t: grad, ld: inDim, batchStride: ik }, b: { t: layer.GA, ld: r, batchStride: ik * r }, c: { t: p, ld: r, batchStride: out * r },
    M: out, N: r, K: ik, batch: k,
  }));
  const P = await gpu.read(p);
  await gpu.freeTensors([p]);
  const GA = await gpu.read(layer.GA);
  const GB = new Float32Array(k * r * ok);
  const xi = compressStep(gamma, inDim, r, layer.scale);
  let squared = 0;
  for (let m = 0; m < k; m++) {
    for (let n = 0; n < k; n++) {
      // A_{m,n} [sr, in/k] = (GA[n][:, m·sr:(m+1)·sr])ᵀ ; P_{m,n} [out/k, sr] = P[n][m-rows, m-chunk]
      const a = new Float32Array(sr * ik);
      for (let i = 0; i < ik; i++) for (let c = 0; c < sr; c++) a[c * ik + i] = GA[n * ik * r + i * r + m * sr + c];
      const pmn = new Float32Array(ok * sr);
      for (let o = 0; o < ok; o++) for (let c = 0; c < sr; c++) pmn[o * sr + c] = P[n * out * r + (m * ok + o) * r + m * sr + c];
      const b = compressB(pmn, a, ok, sr, ik, xi);
      // GB[m][n·sr + c, o] = B_{m,n}[o, c]
      for (let o = 0; o < ok; o++) for (let c = 0; c < sr; c++) GB[m * r * ok + (n * sr + c) * ok + o] = b[o * sr + c];
      squared += lowRankFrobenius(b, a, ok, sr, ik, layer.scale) ** 2;
    }
  }
  gpu.upload(layer.GB, GB);
  return Math.sqrt(squared);
}
