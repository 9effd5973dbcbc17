/**
 * AdaLoRA on one linear layer (PEFT SVDLinear): y += s·x·(A ⊙ E)ᵀ·Bᵀ with lora_A = P [r, in], lora_E = Λ [r, 1],
 * lora_B = Q [out, r] and s = lora_alpha/(init_r + 1e-5). The forward forms A ⊙ E once ([r, in], tiny) and runs the
 * dense low-rank pair on it; the backward's dA of that pair is d(A ⊙ E), turned into dA and dE in place. Training
 * layers then add PEFT's orthogonal regularizer's gradient to dA and dB (before the Trainer's clip).
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { adaloraOrthGrad, adaloraRowScale, adaloraScaleGrad, orthScratchSize } from '../../kernels/adalora';
import type { BoundAdapter, LinearAdapter, Trainable } from '../../model/adapter';
import type { LinearInfo } from '../../model/layout';
import { bindLowRank } from '../lora/low-rank';

export interface AdaloraWeights {
  /** [r, in] */
  A: Float32Array;
  /** [r] (PEFT's [r, 1]) */
  E: Float32Array;
  /** [out, r] */
  B: Float32Array;
}

export class AdaloraLayer implements LinearAdapter {
  readonly A: Tensor;
  readonly E: Tensor;
  readonly B: Tensor;
  readonly dA: Tensor;
  readonly dE: Tensor;
  readonly dB: Tensor;
  /** A ⊙ E, formed by each forward. */
  readonly AE: Tensor;
  /** The regularizer's Gram matrices and coefficients (kernels/adalora.ts orthScratchSize). */
  readonly orth: Tensor;
  readonly trainables: Trainable[];

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
    readonly rank: number,
    /** alpha / (init_r + 1e-5). */
    readonly scale: number,
    init: AdaloraWeights,
    /** orth_reg_weight / num_param (0: no regularizer, as in eval and the gradient checks). */
    readonly orthWeight = 0,
  ) {
    const { in: inDim, out: outDim, path } = info;
    if (!Number.isInteger(rank) || rank < 1)
      throw new Error(`${path}: AdaLoRA rank must be an integer >= 1 (got ${rank})`);
    if (init.A.length !== rank * inDim || init.E.length !== rank || init.B.length !== outDim * rank) {
      throw new Error(
        `${path}: AdaLoRA weights must be lora_A [${rank}, ${inDim}], lora_E [${rank}, 1] and lora_B [${outDim}, ${rank}]`,
      );
    }
    this.A = gpu.tensorFrom(init.A, [rank, inDim], `${path}.lora_A`);
    this.E = gpu.tensorFrom(init.E, [rank, 1], `${path}.lora_E`);
    this.B = gpu.tensorFrom(init.B, [outDim, rank], `${path}.lora_B`);
    this.dA = gpu.tensor([rank, inDim], `${path}.lora_A.grad`);
    this.dE = gpu.tensor([rank, 1], `${path}.lora_E.grad`);
    this.dB = gpu.tensor([outDim, rank], `${path}.lora_B.grad`);
    this.AE = gpu.tensor([rank, inDim], `${path}.lora_AE`);
    this.orth = gpu.tensor([orthScratchSize(rank)], `${path}.adalora_orth`);
    // PEFT's names (no `.weight`): the allocation table tells AdaLoRA from LoRA by them.
    this.trainables = [
      { name: `${path}.lora_A`, param: this.A, grad: this.dA, decay: true, lrScale: 1 },
      { name: `${path}.lora_E`, param: this.E, grad: this.dE, decay: true, lrScale: 1 },
      { name: `${path}.lora_B`, param: this.B, grad: this.dB, decay: true, lrScale: 1 },
    ];
  }

  bind(gpu: Gpu, rows: number): BoundAdapter {
    const { in: inDim, out: outDim, path } = this.info;
    const r = this.rank;
    // The dense pair on A ⊙ E: its dA output is d(A ⊙ E), which scale_grad turns into dA and dE.
    const pair = bindLowRank(
      gpu,
      { A: this.AE, B: this.B, dA: this.dA, dB: this.dB },
      { in: inDim, out: outDim, rank: r, scale: this.scale, label: `${path}.adalora` },
      rows,
    );
    return {
      forward: (list, x, y) => {
        adaloraRowScale(list, { A: this.A, E: this.E, AE: this.AE, rank: r, cols: inDim });
        pair.forward(list, x, y);
      },
      backward: (list, x, dy, dx) => {
        pair.backward(list, x, dy, dx);
        adaloraScaleGrad(list, { dA: this.dA, A: this.A, E: this.E, dE: this.dE, rank: r, cols: inDim });
        adaloraOrthGrad(list, {
          A: this.A,
          B: this.B,
          dA: this.dA,
          dB: this.dB,
          scratch: this.orth,
          rank: r,
          inDim,
          outDim,
          weight: this.orthWeight,
        });
      },
    };
  }
}
