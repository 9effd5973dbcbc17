/**
 * RMSNorm (Hugging Face Llama) and LayerNorm (torch) forward and backward over strided row views.
 *
 * Two kernel sets compute the same values: 'workgroup' (one workgroup per row with tree reductions:
 * for real GPUs) and 'thread' (barrier-free, one thread per row or per column: for CPU Vulkan drivers
 * such as SwiftShader, where a workgroup barrier costs a coroutine switch per thread). Every function
 * takes an optional `variant`; by default the adapter decides. The 'workgroup' row kernels reduce with
 * subgroup operations where the device has them (subgroups.ts).
 */
import code from '../../shaders/norm.wgsl?raw';
import { grid1d, type BindingKind, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32, type ParamValue } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { sourceFor, subgroupForms } from './subgroups';
import { checkCount, checkDistinct, checkRows, checkTensor, rowParams, type RowView } from './views';

export type { RowView } from './views';

const sources = subgroupForms({ name: 'norm', code });
/** Columns per workgroup of the workgroup parameter-gradient kernels (COLS in norm.wgsl). */
const GRAD_COLS = 32;
/** Threads per workgroup of the thread kernels (THREAD_WG in norm.wgsl). */
const THREAD_WG = 64;

export type NormVariant = 'workgroup' | 'thread';

/**
 * A kernel's two entry points: `name` (workgroup per row or 32 columns, in the source form the device
 * runs) and `name_thread` (thread per row or column).
 */
interface NormKernel {
  workgroup: (list: CommandList) => KernelSpec;
  thread: KernelSpec;
}

function kernel(entry: string, reads: number, writes: number): NormKernel {
  const bindings: BindingKind[] = [...Array<BindingKind>(reads).fill('read'), ...Array<BindingKind>(writes).fill('rw')];
  return {
    workgroup: (list) => ({ source: sourceFor(list, sources), entry, bindings }),
    thread: { source: sources.plain, entry: `${entry}_thread`, bindings },
  };
}

const KERNELS = {
  rmsForward: kernel('rmsnorm_forward', 2, 2),
  rmsBackward: kernel('rmsnorm_backward', 4, 1),
  rmsWeightGrad: kernel('rmsnorm_weight_grad', 3, 1),
  lnForward: kernel('layernorm_forward', 3, 3),
  lnBackward: kernel('layernorm_backward', 5, 1),
  lnParamGrad: kernel('layernorm_param_grad', 4, 2),
};

/** Records a row kernel: `rows` rows, one workgroup or one thread each. */
function dispatchRows(
  list: CommandList,
  k: NormKernel,
  variant: NormVariant | undefined,
  tensors: Tensor[],
  p: ParamValue[],
  rows: number,
): void {
  if (pick(list, variant) === 'thread') list.dispatch(k.thread, tensors, p, grid1d(rows, THREAD_WG));
  else list.dispatch(k.workgroup(list), tensors, p, grid1d(rows, 1));
}

/** Records a parameter-gradient kernel: `width` columns, GRAD_COLS per workgroup or one thread each. */
function dispatchColumns(
  list: CommandList,
  k: NormKernel,
  variant: NormVariant | undefined,
  tensors: Tensor[],
  p: ParamValue[],
  width: number,
): void {
  if (pick(list, variant) === 'thread') list.dispatch(k.thread, tensors, p, grid1d(width, THREAD_WG));
  else list.dispatch(k.workgroup(list), tensors, p, [Math.ceil(width / GRAD_COLS), 1, 1]);
}

function pick(list: CommandList, variant: NormVariant | undefined): NormVariant {
  return variant ?? (list.gpu.handle.adapter.software ? 'thread' : 'workgroup');
}

/** Params: rows, width, eps, accumulate, then views a, b, c (unused views are zero). */
function params(rows: number, width: number, eps: number, accumulate: boolean, views: RowView[]): ParamValue[] {
  const out = [u32(rows), u32(width), f32(eps), u32(accumulate ? 1 : 0)];
  for (let i = 0; i < 3; i++) out.push(...(views[i] ? rowParams(views[i], width) : [u32(0), u32(1), u32(1), u32(0)]));
  return out;
}

function checkShape(kernel: string, rows: number, width: number): void {
  checkCount(kernel, 'rows', rows);
  checkCount(kernel, 'width', width);
}

export interface RmsnormForwardArgs {
  x: RowView;
  out: RowView;
  weight: Tensor;
  /** [rows]: 1 / sqrt(mean(x^2) + eps), saved for the backward pass. */
  rstd: Tensor;
  rows: number;
  width: number;
  eps: number;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** out = x * rstd * weight, row by row. */
export function rmsnormForward(list: CommandList, a: RmsnormForwardArgs): void {
  const k = 'rmsnormForward';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkRows(k, 'out', a.out, a.rows, a.width);
  checkTensor(k, 'weight', a.weight, a.width);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkDistinct(k, { out: a.out.t, rstd: a.rstd }, { x: a.x.t, weight: a.weight });
  dispatchRows(
    list,
    KERNELS.rmsForward,
    a.variant,
    [a.x.t, a.weight, a.out.t, a.rstd],
    params(a.rows, a.width, a.eps, false, [a.x, a.out]),
    a.rows,
  );
}

export interface RmsnormBackwardArgs {
  dout: RowView;
  x: RowView;
  weight: Tensor;
  rstd: Tensor;
  dx: RowView;
  rows: number;
  width: number;
  /** true: dx += gradient; false: dx = gradient. */
  accumulate: boolean;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** Gradient of rmsnormForward with respect to x. */
export function rmsnormBackward(list: CommandList, a: RmsnormBackwardArgs): void {
  const k = 'rmsnormBackward';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'dout', a.dout, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkRows(k, 'dx', a.dx, a.rows, a.width);
  checkTensor(k, 'weight', a.weight, a.width);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkDistinct(k, { dx: a.dx.t }, { dout: a.dout.t, x: a.x.t, weight: a.weight, rstd: a.rstd });
  dispatchRows(
    list,
    KERNELS.rmsBackward,
    a.variant,
    [a.dout.t, a.x.t, a.weight, a.rstd, a.dx.t],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x, a.dx]),
    a.rows,
  );
}

export interface RmsnormWeightGradArgs {
  dout: RowView;
  x: RowView;
  rstd: Tensor;
  /** [width] */
  dweight: Tensor;
  rows: number;
  width: number;
  accumulate: boolean;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** dweight[c] (+)= sum over rows of dout * x * rstd. */
export function rmsnormWeightGrad(list: CommandList, a: RmsnormWeightGradArgs): void {
  const k = 'rmsnormWeightGrad';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'dout', a.dout, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkTensor(k, 'dweight', a.dweight, a.width);
  checkDistinct(k, { dweight: a.dweight }, { dout: a.dout.t, x: a.x.t, rstd: a.rstd });
  dispatchColumns(
    list,
    KERNELS.rmsWeightGrad,
    a.variant,
    [a.dout.t, a.x.t, a.rstd, a.dweight],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x]),
    a.width,
  );
}

export interface LayernormForwardArgs {
  x: RowView;
  out: RowView;
  weight: Tensor;
  bias: Tensor;
  /** [rows], saved for the backward pass. */
  mean: Tensor;
  /** [rows]: 1 / sqrt(biased variance + eps). */
  rstd: Tensor;
  rows: number;
  width: number;
  eps: number;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** out = (x - mean) * rstd * weight + bias, row by row. */
export function layernormForward(list: CommandList, a: LayernormForwardArgs): void {
  const k = 'layernormForward';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkRows(k, 'out', a.out, a.rows, a.width);
  checkTensor(k, 'weight', a.weight, a.width);
  checkTensor(k, 'bias', a.bias, a.width);
  checkTensor(k, 'mean', a.mean, a.rows);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkDistinct(k, { out: a.out.t, mean: a.mean, rstd: a.rstd }, { x: a.x.t, weight: a.weight, bias: a.bias });
  dispatchRows(
    list,
    KERNELS.lnForward,
    a.variant,
    [a.x.t, a.weight, a.bias, a.out.t, a.mean, a.rstd],
    params(a.rows, a.width, a.eps, false, [a.x, a.out]),
    a.rows,
  );
}

export interface LayernormBackwardArgs {
  dout: RowView;
  x: RowView;
  weight: Tensor;
  mean: Tensor;
  rstd: Tensor;
  dx: RowView;
  rows: number;
  width: number;
  accumulate: boolean;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** Gradient of layernormForward with respect to x. */
export function layernormBackward(list: CommandList, a: LayernormBackwardArgs): void {
  const k = 'layernormBackward';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'dout', a.dout, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkRows(k, 'dx', a.dx, a.rows, a.width);
  checkTensor(k, 'weight', a.weight, a.width);
  checkTensor(k, 'mean', a.mean, a.rows);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkDistinct(k, { dx: a.dx.t }, { dout: a.dout.t, x: a.x.t, weight: a.weight, mean: a.mean, rstd: a.rstd });
  dispatchRows(
    list,
    KERNELS.lnBackward,
    a.variant,
    [a.dout.t, a.x.t, a.weight, a.mean, a.rstd, a.dx.t],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x, a.dx]),
    a.rows,
  );
}

export interface LayernormParamGradArgs {
  dout: RowView;
  x: RowView;
  mean: Tensor;
  rstd: Tensor;
  /** [width] */
  dweight: Tensor;
  /** [width] */
  dbias: Tensor;
  rows: number;
  width: number;
  accumulate: boolean;
  /** Which kernel runs; defaults to the adapter's preference (see the file comment). */
  variant?: NormVariant;
}

/** dweight[c] (+)= sum of dout * xhat, dbias[c] (+)= sum of dout, over rows. */
export function layernormParamGrad(list: CommandList, a: LayernormParamGradArgs): void {
  const k = 'layernormParamGrad';
  checkShape(k, a.rows, a.width);
  checkRows(k, 'dout', a.dout, a.rows, a.width);
  checkRows(k, 'x', a.x, a.rows, a.width);
  checkTensor(k, 'mean', a.mean, a.rows);
  checkTensor(k, 'rstd', a.rstd, a.rows);
  checkTensor(k, 'dweight', a.dweight, a.width);
  checkTensor(k, 'dbias', a.dbias, a.width);
  checkDistinct(k, { dweight: a.dweight, dbias: a.dbias }, { dout: a.dout.t, x: a.x.t, mean: a.mean, rstd: a.rstd });
  dispatchColumns(
    list,
    KERNELS.lnParamGrad,
    a.variant,
    [a.dout.t, a.x.t, a.mean, a.rstd, a.dweight, a.dbias],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x]),
    a.width,
  );
}
