/**
 * GoRA's preparation, step 1 (docs/METHODS.md, GoRA): the mean over N training batches of the gradients of the
 * frozen target weights, Ḡ_l = (1/N) Σ_b ∇_{W_l} L_b, accumulated in f32 on the GPU.
 *
 * A GradientProbe stands in for an adapter on every target: its forward adds nothing and its backward
 * computes only the weight gradient the adapter-training graph otherwise skips, S += dYᵀX, straight into
 * the accumulator; `finish` turns the sum into the mean. Memory: one f32 [out, in] accumulator per target
 * (an f32 copy of the target weights) plus one training graph's activations, freed after the init.
 */
import type { Batch } from '../../data/index';
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { scale } from '../../kernels/elementwise';
import { matmul } from '../../kernels/matmul';
import type { LinearInfo } from '../../model/layout';
import { TransformerGraph, type Recompute } from '../../model/transformer';
import type { ModelWeights } from '../../model/weights';
import type { BoundAdapter, LinearAdapter } from '../../model/adapter';

export class GradientProbe implements LinearAdapter {
  readonly trainables = [];
  /** Σ_b ∇W L_b (Ḡ after `finish`), in the [out, in] layout of nn.Linear, also for GPT-2's Conv1D. */
  readonly grad: Tensor;

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
  ) {
    this.grad = gpu.tensor([info.out, info.in], `${info.path}.gora_grad`);
  }

  bind(_gpu: Gpu, rows: number): BoundAdapter {
    const { in: inDim, out: outDim } = this.info;
    return {
      forward: () => {},
      // S += dyᵀ x  [out, in]; dx is untouched (the probe is not part of the model).
      backward: (list, x, dy) => {
        matmul(list, {
          a: dy,
          b: x,
          c: { t: this.grad, ld: inDim },
          M: outDim,
          N: inDim,
          K: rows,
          transA: true,
          beta: 1,
        });
      },
    };
  }
}

/** A training graph with a probe on every target. */
export class GradientAccumulator {
  readonly probes: Map<string, GradientProbe>;
  readonly graph: TransformerGraph;
  steps = 0;

  constructor(
    private readonly gpu: Gpu,
    weights: ModelWeights,
    targets: LinearInfo[],
    shape: { batch: number; seq: number; recompute?: Recompute },
  ) {
    this.probes = new Map(targets.map((info) => [info.path, new GradientProbe(gpu, info)]));
    this.graph = new TransformerGraph(gpu, weights, {
      ...shape,
      train: 'adapters',
      adapters: new Map<string, LinearAdapter>(this.probes),
    });
  }

  /** Adds one batch's weight gradients (of its mean token loss, as in training). */
  add(batch: Batch): void {
    this.graph.setBatch(batch);
    this.graph.backwardList!.run();
    this.steps++;
  }

  /** Divides the sums by the number of batches: every probe then holds Ḡ. */
  async finish(): Promise<void> {
    if (this.steps === 0) throw new Error('GoRA: no batches were accumulated');
    await this.gpu.runOnce('gora.mean', (list) => {
      for (const p of this.probes.values()) scale(list, { x: p.grad, n: p.grad.size, alpha: 1 / this.steps });
    });
  }
}
