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
}

export interface LinearAdapter {
  readonly info: LinearInfo;
  readonly trainables: Trainable[];
  bind(gpu: Gpu, rows: number): BoundAdapter;
}
