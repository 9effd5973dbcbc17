/**
 * AdaLoRA's kernels (shaders/adalora.wgsl; float64 references in adalora.ref.ts): A ⊙ E and its gradient for the
 * layer, PEFT's orthogonal regularizer added to dA and dB, and the rank allocator's steps (importance EMAs, triplet
 * scores, the budget mask by rank counting, masking Λ). The allocator's per-step flags live in a small u32 buffer
 * the host writes before each step (`schedule`: update_ipt, compute_mask, apply_mask, k), so no step reads back.
 */
import code from '../../shaders/adalora.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkTensor } from './views';

const source = { name: 'adalora', code };
const WG = 256;

const ROW_SCALE: KernelSpec = { source, entry: 'row_scale', bindings: ['read', 'read', 'rw'] };
const SCALE_GRAD: KernelSpec = { source, entry: 'scale_grad', bindings: ['rw', 'read', 'read', 'rw'] };
const ORTH_GRAM: KernelSpec = { source, entry: 'orth_gram', bindings: ['read', 'read', 'rw'] };
const ORTH_COEF: KernelSpec = { source, entry: 'orth_coef', bindings: ['rw'] };
const ORTH_GRAD: KernelSpec = { source, entry: 'orth_grad', bindings: ['read', 'read', 'rw', 'rw', 'read'] };
const IPT_UPDATE: KernelSpec = { source, entry: 'ipt_update', bindings: ['read', 'read', 'rw', 'read', 'read'] };
const TRIPLET_SCORE: KernelSpec = {
  source,
  entry: 'triplet_score',
  bindings: ['read', 'read', 'read', 'rw', 'read'],
};
const SELECT_MASK: KernelSpec = { source, entry: 'select_mask', bindings: ['read', 'rw', 'read'] };
const APPLY_MASK: KernelSpec = { source, entry: 'apply_mask', bindings: ['rw', 'read', 'read'] };

/** Slots of the schedule buffer (u32 [4]). */
export const SCHEDULE = { updateIpt: 0, computeMask: 1, applyMask: 2, k: 3 } as const;
/** The orthogonal-regularizer scratch per module: [2][r, r] (M·Mᵀ − I for A and for B) and two coefficients. */
export const orthScratchSize = (rank: number): number => 2 * rank * rank + 2;

/** AE [r, cols] = A ⊙ E (E [r] broadcast over A's rows). */
export function adaloraRowScale(
  list: CommandList,
  a: { A: Tensor; E: Tensor; AE: Tensor; rank: number; cols: number },
) {
  const name = 'adaloraRowScale';
  const n = a.rank * a.cols;
  checkTensor(name, 'A', a.A, n, { ints: false });
  checkTensor(name, 'E', a.E, a.rank, { ints: false });
  checkTensor(name, 'AE', a.AE, n, { ints: false });
  list.dispatch(ROW_SCALE, [a.A, a.E, a.AE], [u32(n), u32(a.cols)], grid1d(n, WG));
}

/** In place: dA holds d(A ⊙ E) on entry and dA on exit; dE [r] is overwritten with Σ_c d(A ⊙ E)[k, c]·A[k, c]. */
export function adaloraScaleGrad(
  list: CommandList,
  a: { dA: Tensor; A: Tensor; E: Tensor; dE: Tensor; rank: number; cols: number },
) {
  const name = 'adaloraScaleGrad';
  const n = a.rank * a.cols;
  checkTensor(name, 'dA', a.dA, n, { ints: false });
  checkTensor(name, 'A', a.A, n, { ints: false });
  checkTensor(name, 'E', a.E, a.rank, { ints: false });
  checkTensor(name, 'dE', a.dE, a.rank, { ints: false });
  list.dispatch(SCALE_GRAD, [a.dA, a.A, a.E, a.dE], [u32(a.cols)], [a.rank, 1, 1]);
}

export interface OrthRegArgs {
  /** [r, in] */
  A: Tensor;
  /** [out, r] */
  B: Tensor;
  /** Accumulated into. */
  dA: Tensor;
  dB: Tensor;
  /** orthScratchSize(rank) */
  scratch: Tensor;
  rank: number;
  inDim: number;
  outDim: number;
  /** orth_reg_weight / num_param (PEFT divides the sum of norms by the number of A and B tensors). */
  weight: number;
}

/** dA += w·∂‖A·Aᵀ − I‖_F/∂A, dB += w·∂‖Bᵀ·B − I‖_F/∂B: three dispatches for both factors. */
export function adaloraOrthGrad(list: CommandList, a: OrthRegArgs): void {
  const name = 'adaloraOrthGrad';
  const { rank: r, inDim, outDim } = a;
  checkCount(name, 'rank', r);
  checkTensor(name, 'A', a.A, r * inDim, { ints: false });
  checkTensor(name, 'B', a.B, outDim * r, { ints: false });
  checkTensor(name, 'dA', a.dA, r * inDim, { ints: false });
  checkTensor(name, 'dB', a.dB, outDim * r, { ints: false });
  checkTensor(name, 'scratch', a.scratch, orthScratchSize(r), { ints: false });
  if (r === 0 || !(a.weight > 0)) return;
  const params = [u32(r), u32(inDim), u32(outDim), f32(a.weight)];
  list.dispatch(ORTH_GRAM, [a.A, a.B, a.scratch], params, [r * r, 2, 1]);
  list.dispatch(ORTH_COEF, [a.scratch], params, [2, 1, 1]);
  const n = Math.max(r * inDim, outDim * r);
  list.dispatch(ORTH_GRAD, [a.A, a.B, a.dA, a.dB, a.scratch], params, [Math.ceil(n / WG), 2, 1]);
}

/** One trainable's importance EMAs ([ipt | unc], 2n) from the clipped gradient g·state[clipIndex], when the schedule says so. */
export function adaloraIptUpdate(
  list: CommandList,
  a: {
    param: Tensor;
    grad: Tensor;
    ema: Tensor;
    state: Tensor;
    clipIndex: number;
    schedule: Tensor;
    beta1: number;
    beta2: number;
  },
): void {
  const name = 'adaloraIptUpdate';
  const n = a.param.size;
  checkTensor(name, 'grad', a.grad, n, { ints: false });
  checkTensor(name, 'ema', a.ema, 2 * n, { ints: false });
  list.dispatch(
    IPT_UPDATE,
    [a.param, a.grad, a.ema, a.state, a.schedule],
    [u32(n), u32(a.clipIndex), f32(a.beta1), f32(a.beta2)],
    grid1d(n, WG),
  );
}

/** One module's r triplet scores into scores[offset .. offset + r), when the schedule computes a mask. */
export function adaloraTripletScores(
  list: CommandList,
  a: {
    emaA: Tensor;
    emaB: Tensor;
    emaE: Tensor;
    scores: Tensor;
    schedule: Tensor;
    rank: number;
    inDim: number;
    outDim: number;
    offset: number;
  },
): void {
  const name = 'adaloraTripletScores';
  checkTensor(name, 'emaA', a.emaA, 2 * a.rank * a.inDim, { ints: false });
  checkTensor(name, 'emaB', a.emaB, 2 * a.outDim * a.rank, { ints: false });
  checkTensor(name, 'emaE', a.emaE, 2 * a.rank, { ints: false });
  if (a.offset + a.rank > a.scores.size) throw new Error(`${name}: scores too small for offset ${a.offset}`);
  list.dispatch(
    TRIPLET_SCORE,
    [a.emaA, a.emaB, a.emaE, a.scores, a.schedule],
    [u32(a.rank), u32(a.inDim), u32(a.outDim), u32(a.offset)],
    [a.rank, 1, 1],
  );
}

/** mask[i] = 0 for the triplets whose score is <= the k-th smallest of all (k from the schedule), else 1. */
export function adaloraSelectMask(
  list: CommandList,
  a: { scores: Tensor; mask: Tensor; schedule: Tensor; total: number },
): void {
  checkTensor('adaloraSelectMask', 'mask', a.mask, a.total, { ints: false });
  list.dispatch(SELECT_MASK, [a.scores, a.mask, a.schedule], [u32(a.total)], grid1d(a.total, WG));
}

/** E[k] = 0 where mask[offset + k] = 0, when the schedule applies the mask. */
export function adaloraApplyMask(
  list: CommandList,
  a: { E: Tensor; mask: Tensor; schedule: Tensor; rank: number; offset: number },
): void {
  checkTensor('adaloraApplyMask', 'E', a.E, a.rank, { ints: false });
  list.dispatch(APPLY_MASK, [a.E, a.mask, a.schedule], [u32(a.rank), u32(a.offset)], [1, 1, 1]);
}
