/**
 * LoRA on one linear layer: y += s * (x Aᵀ) Bᵀ, A [r, in], B [out, r] (PEFT layout).
 * Backward (METHODS.md §1): dB = s dyᵀ H, dH = s dy B, dA = dHᵀ x, dx += dH A.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { matmul } from '../../kernels/matmul';
import type { LinearInfo } from '../../model/layout';
import type { BoundAdapter, LinearAdapter, Trainable } from '../types';

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
    const r = this.rank;
    const { in: inDim, out: outDim } = this.info;
    const h = gpu.tensor([rows, r], `${this.info.path}.lora_h`);
    const dh = gpu.tensor([rows, r], `${this.info.path}.lora_dh`);
    const s = this.scale;
    return {
      forward: (list, x, y) => {
        matmul(list, { a: x, b: { t: this.A, ld: inDim }, c: { t: h, ld: r }, M: rows, N: r, K: inDim, transB: true });
        matmul(list, { a: { t: h, ld: r }, b: { t: this.B, ld: r }, c: y, M: rows, N: outDim, K: r, transB: true, alpha: s, beta: 1 });
      },
      backward: (list, x, dy, dx) => {
        // dB = s dyᵀ H  [out, r]
        matmul(list, { a: dy, b: { t: h, ld: r }, c: { t: this.dB, ld: r }, M: outDim, N: r, K: rows, transA: true, alpha: s });
        // dH = s dy B  [rows, r]
        matmul(list, { a: dy, b: { t: this.B, ld: r }, c: { t: dh, ld: r }, M: rows, N: r, K: outDim, alpha: s });
        // dA = dHᵀ x  [r, in]
        matmul(list, { a: { t: dh, ld: r }, b: x, c: { t: this.dA, ld: inDim }, M: r, N: inDim, K: rows, transA: true });
        // dx += dH A
        matmul(list, { a: { t: dh, ld: r }, b: { t: this.A, ld: inDim }, c: dx, M: rows, N: inDim, K: r, beta: 1 });
      },
    };
  }
}
