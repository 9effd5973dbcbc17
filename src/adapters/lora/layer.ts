/**
 * LoRA on one linear layer: y += s * (x Aᵀ) Bᵀ, A [r, in], B [out, r] (PEFT layout); the GEMMs are in low-rank.ts.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import type { LinearInfo } from '../../model/layout';
import type { BoundAdapter, LinearAdapter, Trainable } from '../../model/adapter';
import { bindLowRank } from './low-rank';

export interface LoraWeights {
  A: Float32Array;
  B: Float32Array;
}

export class LoraLayer implements LinearAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly dA: Tensor;
  readonly dB: Tensor;
  readonly trainables: Trainable[];

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
    readonly rank: number,
    /** The effective scale s (alpha/r, alpha/sqrt r, ...): the method decides. */
    readonly scale: number,
    init: LoraWeights,
    lrScaleB = 1,
  ) {
    if (init.A.length !== rank * info.in || init.B.length !== info.out * rank) {
      throw new Error(`${info.path}: LoRA weights must be A [${rank}, ${info.in}] and B [${info.out}, ${rank}]`);
    }
    this.A = gpu.tensorFrom(init.A, [rank, info.in], `${info.path}.lora_A`);
    this.B = gpu.tensorFrom(init.B, [info.out, rank], `${info.path}.lora_B`);
    this.dA = gpu.tensor([rank, info.in], `${info.path}.lora_A.grad`);
    this.dB = gpu.tensor([info.out, rank], `${info.path}.lora_B.grad`);
    this.trainables = [
      { name: `${info.path}.lora_A.weight`, param: this.A, grad: this.dA, decay: true, lrScale: 1 },
      { name: `${info.path}.lora_B.weight`, param: this.B, grad: this.dB, decay: true, lrScale: lrScaleB },
    ];
  }

  bind(gpu: Gpu, rows: number): BoundAdapter {
    const { in: inDim, out: outDim, path } = this.info;
    return bindLowRank(
      gpu,
      this,
      { in: inDim, out: outDim, rank: this.rank, scale: this.scale, label: `${path}.lora` },
      rows,
    );
  }
}
