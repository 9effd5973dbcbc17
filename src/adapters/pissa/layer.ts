/**
 * PiSSA's and LoRA-GA's layer: y += s·B·A x − s₀·B₀·A₀ x. A and B train (named as LoRA's, so checkpoints, resume
 * and the allocation plan read them as a dense pair); (A₀, B₀) is the frozen initial adapter, so the layer computes
 * (W − s₀·B₀·A₀) x + s·B·A x, PEFT's residual model, without writing W: at step 0 (A, B = A₀, B₀, s = s₀) it adds
 * nothing. An imported default-saved PiSSA folder uses it with (A₀, B₀) from W's own SVD and s₀ = 1.
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import type { BoundAdapter, LinearAdapter, Trainable } from '../../model/adapter';
import type { LinearInfo } from '../../model/layout';
import { bindLowRank } from '../lora/low-rank';
import { bindFrozenPair, type FrozenPair } from './frozen-pair';

export interface ResidualLoraInit {
  /** [rank, in] */
  A: Float32Array;
  /** [out, rank] */
  B: Float32Array;
  /** The frozen pair (same shapes) and its scale s₀. */
  A0: Float32Array;
  B0: Float32Array;
  scale0: number;
}

export class ResidualLoraLayer implements LinearAdapter {
  readonly A: Tensor;
  readonly B: Tensor;
  readonly dA: Tensor;
  readonly dB: Tensor;
  /** The frozen initial pair; its presence tells the allocation plan this is not a plain LoRA. */
  readonly initialPair: FrozenPair;
  readonly trainables: Trainable[];

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
    readonly rank: number,
    /** s of the trained pair. */
    readonly scale: number,
    init: ResidualLoraInit,
    lrScaleB = 1,
  ) {
    const { in: inDim, out, path } = info;
    for (const [name, data, size] of [
      ['A', init.A, rank * inDim],
      ['B', init.B, out * rank],
      ['A0', init.A0, rank * inDim],
      ['B0', init.B0, out * rank],
    ] as const) {
      if (data.length !== size)
        throw new Error(`${path}: ${name} must have ${size} values (rank ${rank}), got ${data.length}`);
    }
    this.A = gpu.tensorFrom(init.A, [rank, inDim], `${path}.lora_A`);
    this.B = gpu.tensorFrom(init.B, [out, rank], `${path}.lora_B`);
    this.dA = gpu.tensor([rank, inDim], `${path}.lora_A.grad`);
    this.dB = gpu.tensor([out, rank], `${path}.lora_B.grad`);
    this.initialPair = {
      A: gpu.tensorFrom(init.A0, [rank, inDim], `${path}.lora_A0`),
      B: gpu.tensorFrom(init.B0, [out, rank], `${path}.lora_B0`),
      scale: init.scale0,
    };
    this.trainables = [
      { name: `${path}.lora_A.weight`, param: this.A, grad: this.dA, decay: true, lrScale: 1 },
      { name: `${path}.lora_B.weight`, param: this.B, grad: this.dB, decay: true, lrScale: lrScaleB },
    ];
  }

  bind(gpu: Gpu, rows: number): BoundAdapter {
    const { in: inDim, out: outDim, path } = this.info;
    const dims = { in: inDim, out: outDim, rank: this.rank };
    const trained = bindLowRank(gpu, this, { ...dims, scale: this.scale, label: `${path}.lora` }, rows);
    const frozen = bindFrozenPair(gpu, this.initialPair, { ...dims, label: `${path}.lora_init` }, rows);
    return {
      forward: (list, x, y) => {
        trained.forward(list, x, y);
        frozen.forward(list, x, y);
      },
      backward: (list, x, dy, dx) => {
        trained.backward(list, x, dy, dx);
        frozen.backward(list, x, dy, dx);
      },
    };
  }
}
