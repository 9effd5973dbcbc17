/** What the transformer needs from an adapter method: trainable tensors and a forward/backward pair per linear layer. */
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import type { MatView } from '../kernels/matmul';
import type { LinearInfo } from '../model/layout';

export interface Trainable {
  name: string;
  param: Tensor;
  grad: Tensor;
  /** AdamW weight decay applies (not to norms and biases in full fine-tuning). */
  decay: boolean;
  /** Learning-rate multiplier of this tensor's group (LoRA+ uses a larger one for B). */
  lrScale: number;
  /** The grad buffer is accumulated into by several writers and must be cleared before each backward pass. */
  accumulates?: boolean;
}

/** An adapter's per-graph state: scratch sized for a fixed number of rows (tokens), with saved activations. */
export interface BoundAdapter {
  /** y[rows, out] += adapter(x[rows, in]) */
  forward(list: CommandList, x: MatView, y: MatView): void;
  /** From dy: writes the adapter's parameter gradients (overwriting) and accumulates dx += d(adapter)/dx. */
  backward(list: CommandList, x: MatView, dy: MatView, dx: MatView): void;
  /**
   * An adapter that rescales the base output (DoRA: y = b + g ⊙ (x·Wᵀ + adapter(x))). The graph then writes x·Wᵀ
   * into `base` instead of y, calls `forward(list, x, y, beta)` in place of the adapter's forward, and adds the
   * bias after; its backward reads dy through `scaleGrad` (which writes the adapter's own gradient of the scale)
   * for the base dx product and the adapter's backward.
   */
  rescalesBase?: RescalesBase;
}

export interface RescalesBase {
  /** [rows, out] dense: where the graph writes x·Wᵀ (and what the backward reads again). */
  base: MatView;
  /** y = beta·y + g ⊙ (base + adapter(x)); the graph adds the bias after. */
  forward(list: CommandList, x: MatView, y: MatView, beta: 0 | 1): void;
  /** Writes the scale's gradient from dy and the saved base; returns g ⊙ dy, what the rest of the backward reads. */
  scaleGrad(list: CommandList, dy: MatView): MatView;
}

export interface LinearAdapter {
  readonly info: LinearInfo;
  readonly trainables: Trainable[];
  /** `base`: the frozen weight the graph's linear reads for this module (DoRA's norm reads it; others ignore it). */
  bind(gpu: Gpu, rows: number, base?: Tensor): BoundAdapter;
}
