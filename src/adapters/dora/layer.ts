/**
 * DoRA on one linear layer (docs/METHODS.md, DoRA; PEFT's DoraLinearLayer): y = b + g ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ) with
 * g = m / ‖W + s·B·A‖_row, the norm detached as PEFT does. LoRA's A [r, in] and B [out, r] (its GEMMs, low-rank.ts)
 * and the magnitude m [out]. The graph hands it x·Wᵀ (BoundAdapter.rescalesBase) and adds the bias after.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { doraCombine, doraNorm, doraScaleGrad } from '../../kernels/dora';
import type { BoundAdapter, LinearAdapter, Trainable } from '../../model/adapter';
import type { LinearInfo } from '../../model/layout';
import { bindLowRank } from '../lora/low-rank';

export interface DoraWeights {
  A: Float32Array;
  B: Float32Array;
  /** [out] */
  m: Float32Array;
}

export class DoraLayer implements LinearAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly m: Tensor;
  readonly dA: Tensor;
  readonly dB: Tensor;
  readonly dm: Tensor;
  readonly trainables: Trainable[];
  /** Tests only: n² held fixed (a loss whose norm does not move with A and B), set before binding. */
  heldNormSq: Tensor | null = null;

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
    readonly rank: number,
    /** s = alpha / r (PEFT's DoRA scaling, as LoRA's). */
    readonly scale: number,
    init: DoraWeights,
    lrScaleB = 1,
  ) {
    const { in: inDim, out: outDim, path } = info;
    if (init.A.length !== rank * inDim || init.B.length !== outDim * rank || init.m.length !== outDim) {
      throw new Error(`${path}: DoRA weights must be A [${rank}, ${inDim}], B [${outDim}, ${rank}] and m [${outDim}]`);
    }
    this.A = gpu.tensorFrom(init.A, [rank, inDim], `${path}.lora_A`);
    this.B = gpu.tensorFrom(init.B, [outDim, rank], `${path}.lora_B`);
    this.m = gpu.tensorFrom(init.m, [outDim], `${path}.lora_magnitude_vector`);
    this.dA = gpu.tensor([rank, inDim], `${path}.lora_A.grad`);
    this.dB = gpu.tensor([outDim, rank], `${path}.lora_B.grad`);
    this.dm = gpu.tensor([outDim], `${path}.lora_magnitude_vector.grad`);
    // Weight decay on m too: PEFT trains it as an ordinary parameter (AdamW decays everything it is given).
    this.trainables = [
      { name: `${path}.lora_A.weight`, param: this.A, grad: this.dA, decay: true, lrScale: 1 },
      { name: `${path}.lora_B.weight`, param: this.B, grad: this.dB, decay: true, lrScale: lrScaleB },
      { name: `${path}.lora_magnitude_vector`, param: this.m, grad: this.dm, decay: true, lrScale: 1 },
    ];
  }

  bind(gpu: Gpu, rows: number, W?: Tensor): BoundAdapter {
    const { in: inDim, out: outDim, path, conv1d } = this.info;
    if (!W) throw new Error(`${path}: DoRA needs the base weight to bind (its norm reads W)`);
    const r = this.rank;
    const lowRank = bindLowRank(
      gpu,
      this,
      { in: inDim, out: outDim, rank: r, scale: this.scale, label: `${path}.lora` },
      rows,
    );
    const z = gpu.tensor([rows, outDim], `${path}.dora_z`);
    const dz = gpu.tensor([rows, outDim], `${path}.dora_dz`);
    const wn2 = gpu.tensor([outDim], `${path}.dora_wn2`);
    const E = gpu.tensor([r, outDim], `${path}.dora_E`);
    const G = gpu.tensor([r, r], `${path}.dora_G`);
    const ng = gpu.tensor([2, outDim], `${path}.dora_ng`);
    const held = this.heldNormSq ?? undefined;
    const base = { t: z, ld: outDim };
    return {
      forward: () => {
        throw new Error(`${path}: DoRA rescales the base output; the graph calls rescalesBase.forward`);
      },
      // The graph passes g ⊙ dy (rescalesBase.scaleGrad): from there it is LoRA's backward.
      backward: (list, x, dz, dx) => lowRank.backward(list, x, dz, dx),
      rescalesBase: {
        base,
        forward: (list, x, y, beta) => {
          doraNorm(list, {
            W,
            inDim,
            outDim,
            conv1d,
            rank: r,
            scale: this.scale,
            A: this.A,
            B: this.B,
            m: this.m,
            wn2,
            E,
            G,
            ng,
            held,
          });
          lowRank.forward(list, x, base);
          doraCombine(list, { ng, z, y, rows, outDim, beta });
        },
        scaleGrad: (list, dy) => {
          doraScaleGrad(list, { dy, z, ng, dz, dm: this.dm, rows, outDim });
          return { t: dz, ld: outDim };
        },
      },
    };
  }
}
