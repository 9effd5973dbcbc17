/**
 * GoRA's compress init applied to adapters that already exist, whatever their structure (docs/METHODS.md, Methods as composition:
 * allocation x structure x init). All layers' Ḡ·Aᵀ products are recorded into one list and read back in one
 * pass; the r x r solves run on the host. Each returns ‖ΔW₀‖_F per layer for the studio.
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
import { compressB, compressStep } from './init';

/** Records P_l = Ḡ_l·(the layer's A)ᵀ for every layer into one buffer and reads back P and every A at once. */
async function gradProducts<L>(
  gpu: Gpu,
  items: { layer: L; grad: Tensor }[],
  size: (l: L) => number,
  A: (l: L) => Tensor,
  record: (list: ReturnType<Gpu['list']>, l: L, grad: Tensor, p: Tensor, offset: number) => void,
): Promise<{ P: Float32Array[]; A: Float32Array[] }> {
  const offsets: number[] = [];
  let total = 0;
  for (const { layer } of items) {
    offsets.push(total);
    total += size(layer);
  }
  const mark = gpu.mark();
  try {
    const p = gpu.tensor([total], 'gora.products');
    await gpu.runOnce('gora.init', (list) =>
      items.forEach(({ layer, grad }, i) => record(list, layer, grad, p, offsets[i])),
    );
    const [all, ...as] = await gpu.readMany([p, ...items.map(({ layer }) => A(layer))]);
    return { P: items.map(({ layer }, i) => all.subarray(offsets[i], offsets[i] + size(layer))), A: as };
  } finally {
    await gpu.freeSince(mark);
  }
}

export async function goraInitLora(
  gpu: Gpu,
  items: { layer: LoraLayer; grad: Tensor }[],
  gamma: number,
): Promise<number[]> {
  if (gamma === 0) return items.map(() => 0);
  const { P, A } = await gradProducts(
    gpu,
    items,
    (l) => l.info.out * l.rank,
    (l) => l.A,
    (list, l, grad, p, offset) => {
      const { in: inDim, out } = l.info;
      matmul(list, {
        a: { t: grad, ld: inDim },
        b: { t: l.A, ld: inDim },
        c: { t: p, offset, ld: l.rank },
        M: out,
        N: l.rank,
        K: inDim,
        transB: true,
      });
    },
  );
  return items.map(({ layer }, i) => {
    const { in: inDim, out } = layer.info;
    const B = compressB(P[i], A[i], out, layer.rank, inDim, compressStep(gamma, inDim, layer.rank, layer.scale));
    gpu.upload(layer.B, B);
    return lowRankFrobenius(B, A[i], out, layer.rank, inDim, layer.scale);
  });
}

export async function goraInitGralora(
  gpu: Gpu,
  items: { layer: GraloraLayer; grad: Tensor }[],
  gamma: number,
): Promise<number[]> {
  if (gamma === 0) return items.map(() => 0);
  // P[n] = Ḡ[:, n-block] · GA[n]   [k, out, r] per layer
  const { P, A } = await gradProducts(
    gpu,
    items,
    (l) => l.k * l.info.out * l.rank,
    (l) => l.GA,
    (list, l, grad, p, offset) => {
      const { in: inDim, out } = l.info;
      const ik = inDim / l.k;
      matmul(list, {
        a: { t: grad, ld: inDim, batchStride: ik },
        b: { t: l.GA, ld: l.rank, batchStride: ik * l.rank },
        c: { t: p, offset, ld: l.rank, batchStride: out * l.rank },
        M: out,
        N: l.rank,
        K: ik,
        batch: l.k,
      });
    },
  );
  return items.map(({ layer }, i) => initBlocks(gpu, layer, P[i], A[i], gamma));
}

function initBlocks(gpu: Gpu, layer: GraloraLayer, P: Float32Array, GA: Float32Array, gamma: number): number {
  const { in: inDim, out } = layer.info;
  const { k, rank: r } = layer;
  const ik = inDim / k,
    ok = out / k,
    sr = r / k;
  const GB = new Float32Array(k * r * ok);
  const xi = compressStep(gamma, inDim, r, layer.scale);
  let squared = 0;
  for (let m = 0; m < k; m++) {
    for (let n = 0; n < k; n++) {
      // A_{m,n} [sr, in/k] = (GA[n][:, m·sr:(m+1)·sr])ᵀ ; P_{m,n} [out/k, sr] = P[n][m-rows, m-chunk]
      const a = new Float32Array(sr * ik);
      for (let i = 0; i < ik; i++) for (let c = 0; c < sr; c++) a[c * ik + i] = GA[n * ik * r + i * r + m * sr + c];
      const pmn = new Float32Array(ok * sr);
      for (let o = 0; o < ok; o++)
        for (let c = 0; c < sr; c++) pmn[o * sr + c] = P[n * out * r + (m * ok + o) * r + m * sr + c];
      const b = compressB(pmn, a, ok, sr, ik, xi);
      // GB[m][n·sr + c, o] = B_{m,n}[o, c]
      for (let o = 0; o < ok; o++) for (let c = 0; c < sr; c++) GB[m * r * ok + (n * sr + c) * ok + o] = b[o * sr + c];
      squared += lowRankFrobenius(b, a, ok, sr, ik, layer.scale) ** 2;
    }
  }
  gpu.upload(layer.GB, GB);
  return Math.sqrt(squared);
}
