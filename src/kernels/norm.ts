/** RMSNorm (Hugging Face Llama) and LayerNorm (torch) forward and backward over strided row views. */
import code from '../../shaders/norm.wgsl?raw';
import { grid1d, type BindingKind, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32, type ParamValue } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkRows, checkTensor, rowParams, type RowView } from './views';

export type { RowView } from './views';

const source = { name: 'norm', code };
/** Columns per workgroup of the parameter-gradient kernels (COLS in norm.wgsl). */
const GRAD_COLS = 32;

function spec(entry: string, reads: number, writes: number): KernelSpec {
  const bindings: BindingKind[] = [...Array<BindingKind>(reads).fill('read'), ...Array<BindingKind>(writes).fill('rw')];
  return { source, entry, bindings };
}

const SPECS = {
  rmsForward: spec('rmsnorm_forward', 2, 2),
  rmsBackward: spec('rmsnorm_backward', 4, 1),
  rmsWeightGrad: spec('rmsnorm_weight_grad', 3, 1),
  lnForward: spec('layernorm_forward', 3, 3),
  lnBackward: spec('layernorm_backward', 5, 1),
  lnParamGrad: spec('layernorm_param_grad', 4, 2),
};

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
  list.dispatch(SPECS.rmsForward, [a.x.t, a.weight, a.out.t, a.rstd], params(a.rows, a.width, a.eps, false, [a.x, a.out]), grid1d(a.rows, 1));
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
  list.dispatch(
    SPECS.rmsBackward,
    [a.dout.t, a.x.t, a.weight, a.rstd, a.dx.t],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x, a.dx]),
    grid1d(a.rows, 1),
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
  list.dispatch(
    SPECS.rmsWeightGrad,
    [a.dout.t, a.x.t, a.rstd, a.dweight],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x]),
    [Math.ceil(a.width / GRAD_COLS), 1, 1],
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
  list.dispatch(
    SPECS.lnForward,
    [a.x.t, a.weight, a.bias, a.out.t, a.mean, a.rstd],
    params(a.rows, a.width, a.eps, false, [a.x, a.out]),
    grid1d(a.rows, 1),
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
  list.dispatch(
    SPECS.lnBackward,
    [a.dout.t, a.x.t, a.weight, a.mean, a.rstd, a.dx.t],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x, a.dx]),
    grid1d(a.rows, 1),
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
  list.dispatch(
    SPECS.lnParamGrad,
    [a.dout.t, a.x.t, a.mean, a.rstd, a.dweight, a.dbias],
    params(a.rows, a.width, 0, a.accumulate, [a.dout, a.x]),
    [Math.ceil(a.width / GRAD_COLS), 1, 1],
  );
}
