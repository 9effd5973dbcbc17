/** AdamW step (torch.optim.AdamW semantics) with hyperparameters and the clip factor read on the GPU. */
import code from '../../shaders/adamw.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';

const source = { name: 'adamw', code };
const WG = 256; // threads per workgroup (must match the shader)
const SPEC: KernelSpec = { source, entry: 'main', bindings: ['rw', 'read', 'rw', 'rw', 'read', 'read'] };

/** Slots of the hp tensor, which the trainer rewrites each step with queue.writeBuffer. */
export const ADAMW_HP = {
  lr: 0,
  beta1: 1,
  beta2: 2,
  eps: 3,
  weightDecay: 4,
  bias1: 5 /* 1 - beta1^t */,
  bias2: 6 /* 1 - beta2^t */,
} as const;
/** Number of floats in hp. */
export const ADAMW_HP_SIZE = 7;

export interface AdamwArgs {
  param: Tensor;
  grad: Tensor;
  /** First and second moments, same size as param, zero before step 1. */
  m: Tensor;
  v: Tensor;
  /** Updates elements [0, n). */
  n: number;
  /** ADAMW_HP_SIZE floats, laid out as ADAMW_HP. */
  hp: Tensor;
  /** state[clipIndex] multiplies the gradient (clipFactor writes it; 1 when not clipping). */
  state: Tensor;
  clipIndex: number;
  /** The parameter group's learning-rate multiplier (also scales the decay, as a torch param group lr does). Default 1. */
  lrScale?: number;
  /** Apply hp's weight decay to this group (usually off for biases and norms). Default false: decay only when asked. */
  applyDecay?: boolean;
}

export function adamw(list: CommandList, a: AdamwArgs): void {
  const name = 'adamw';
  checkCount(name, 'n', a.n);
  for (const [key, t] of [
    ['param', a.param],
    ['grad', a.grad],
    ['m', a.m],
    ['v', a.v],
  ] as const) {
    checkTensor(name, key, t, a.n, { ints: false });
  }
  checkTensor(name, 'hp', a.hp, ADAMW_HP_SIZE, { ints: false });
  checkTensor(name, 'state', a.state, 1, { offset: a.clipIndex, ints: false });
  const lrScale = a.lrScale ?? 1;
  if (!Number.isFinite(lrScale)) throw new Error(`${name}: lrScale must be finite, got ${lrScale}`);
  checkDistinct(name, { param: a.param, m: a.m, v: a.v }, { grad: a.grad, hp: a.hp, state: a.state });
  list.dispatch(
    SPEC,
    [a.param, a.grad, a.m, a.v, a.hp, a.state],
    [u32(a.n), u32(a.clipIndex), u32(a.applyDecay ? 1 : 0), f32(lrScale)],
    grid1d(a.n, WG),
  );
}
