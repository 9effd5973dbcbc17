/** Bias add and bias gradient over a column slice of a strided matrix. */
import code from '../../shaders/bias.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'bias', code };
const WG = 256;
/** Columns per workgroup of bias_grad (COLS in bias.wgsl). */
const GRAD_COLS = 32;

const ADD: KernelSpec = { source, entry: 'bias_add', bindings: ['read', 'rw'] };
const GRAD: KernelSpec = { source, entry: 'bias_grad', bindings: ['read', 'rw'] };

export interface BiasAddArgs {
  /** rows x cols block at offset, rows ld apart; updated in place. */
  y: StridedView;
  bias: Tensor;
  /** Where this slice's bias starts inside `bias` (e.g. the k part of a fused q|k|v bias). */
  biasOffset?: number;
  rows: number;
  cols: number;
}

/** y[r, c] += bias[biasOffset + c]. */
export function biasAdd(list: CommandList, a: BiasAddArgs): void {
  const k = 'biasAdd';
  checkCount(k, 'rows', a.rows);
  checkCount(k, 'cols', a.cols);
  checkStrided(k, 'y', a.y, a.rows, a.cols);
  checkTensor(k, 'bias', a.bias, a.cols, { offset: a.biasOffset, ints: false });
  checkDistinct(k, { y: a.y.t }, { bias: a.bias });
  list.dispatch(
    ADD,
    [a.bias, a.y.t],
    params(a.rows, a.cols, a.y, a.biasOffset ?? 0, false),
    grid1d(a.rows * a.cols, WG),
  );
}

export interface BiasGradArgs {
  dy: StridedView;
  dbias: Tensor;
  dbiasOffset?: number;
  rows: number;
  cols: number;
  /** true: dbias += column sums; false: dbias = column sums. */
  accumulate: boolean;
}

/** dbias[dbiasOffset + c] (+)= sum over rows of dy[r, c]. */
export function biasGrad(list: CommandList, a: BiasGradArgs): void {
  const k = 'biasGrad';
  checkCount(k, 'rows', a.rows);
  checkCount(k, 'cols', a.cols);
  checkStrided(k, 'dy', a.dy, a.rows, a.cols);
  checkTensor(k, 'dbias', a.dbias, a.cols, { offset: a.dbiasOffset, ints: false });
  checkDistinct(k, { dbias: a.dbias }, { dy: a.dy.t });
  list.dispatch(GRAD, [a.dy.t, a.dbias], params(a.rows, a.cols, a.dy, a.dbiasOffset ?? 0, a.accumulate), [
    Math.ceil(a.cols / GRAD_COLS),
    1,
    1,
  ]);
}

function params(rows: number, cols: number, v: StridedView, biasOffset: number, accumulate: boolean) {
  return [
    u32(rows),
    u32(cols),
    u32(v.offset ?? 0),
    u32(v.ld),
    u32(biasOffset),
    u32(accumulate ? 1 : 0),
    u32(0),
    u32(0),
  ];
}
