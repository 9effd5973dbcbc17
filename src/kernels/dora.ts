/**
 * DoRA's kernels (docs/METHODS.md, DoRA; shaders/dora.wgsl): the detached row norm of W + s·B·A and the scale
 * g = m / n without forming B·A (W's squared row norms, three small GEMMs and one pass over the rows), the rescaled
 * output y (+)= g ⊙ z, and the backward's g ⊙ dy with dm.
 *
 * ‖W_j + s(BA)_j‖² = ‖W_j‖² + Σ_r B_jr·E_rj with E = 2s·A·Wᵀ + s²·(A·Aᵀ)·Bᵀ [r, out]: A·Wᵀ reads W as the base
 * linear does (as GEMM operand B, so f16/bf16 storage works), and the rest is rank-sized.
 */
import code from '../../shaders/dora.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { matmul } from './matmul';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';
import { checkWeight, weightSource } from './weight-storage';

const source = { name: 'dora', code };
const WG = 256;
/** Columns per workgroup of scale_grad (COLS in dora.wgsl). */
const GRAD_COLS = 32;

const NORM_SCALE: KernelSpec = { source, entry: 'norm_scale', bindings: ['read', 'read', 'read', 'read', 'rw'] };
const COMBINE: KernelSpec = { source, entry: 'combine', bindings: ['read', 'read', 'rw'] };
const SCALE_GRAD: KernelSpec = { source, entry: 'scale_grad', bindings: ['read', 'read', 'read', 'rw', 'rw'] };

/** A frozen base weight as the graph's linear reads it. */
export interface BaseWeight {
  /** Linear: [out, in]; GPT-2 Conv1D: [in, out]. f32, f16 or bf16. */
  W: Tensor;
  inDim: number;
  outDim: number;
  conv1d: boolean;
}

/** wn2[j] = ‖W_j‖² over the input dimension, accumulated in f32 from W as stored. */
export function doraRowNormsSq(list: CommandList, a: BaseWeight & { out: Tensor }): void {
  const name = 'doraRowNormsSq';
  checkCount(name, 'inDim', a.inDim);
  checkCount(name, 'outDim', a.outDim);
  checkWeight(name, 'W', a.W);
  if (a.W.size < a.inDim * a.outDim) throw new Error(`${name} W (${a.W.label}): needs ${a.inDim * a.outDim} elements`);
  checkTensor(name, 'out', a.out, a.outDim, { ints: false });
  const spec: KernelSpec = { source: weightSource(source, a.W), entry: 'row_norms_sq', bindings: ['read', 'rw'] };
  list.dispatch(spec, [a.W, a.out], [u32(a.inDim), u32(a.outDim), u32(a.conv1d ? 1 : 0), u32(0)], grid1d(a.outDim, 1));
}

export interface DoraNormArgs extends BaseWeight {
  rank: number;
  scale: number;
  /** [rank, in] */
  A: Tensor;
  /** [out, rank] */
  B: Tensor;
  /** [out]: the magnitude vector. */
  m: Tensor;
  /** [out] scratch: ‖W_j‖², written here (reading W costs one pass, as A·Wᵀ does). */
  wn2: Tensor;
  /** [rank, out] and [rank, rank] scratch. */
  E: Tensor;
  G: Tensor;
  /** [2, out]: written n, then g = m / n. */
  ng: Tensor;
  /** [out]: n² held fixed instead of the live norm (tests: a loss whose norm does not move with A and B). */
  held?: Tensor;
}

/** ng = [n; m / n] with n_j = ‖W_j + s·(B·A)_j‖ (detached: nothing differentiates through it). */
export function doraNorm(list: CommandList, a: DoraNormArgs): void {
  const name = 'doraNorm';
  const { inDim, outDim, rank: r, scale: s } = a;
  checkCount(name, 'rank', r);
  checkTensor(name, 'A', a.A, r * inDim, { ints: false });
  checkTensor(name, 'B', a.B, outDim * r, { ints: false });
  checkTensor(name, 'm', a.m, outDim, { ints: false });
  checkTensor(name, 'wn2', a.wn2, outDim, { ints: false });
  checkTensor(name, 'E', a.E, r * outDim, { ints: false });
  checkTensor(name, 'G', a.G, r * r, { ints: false });
  checkTensor(name, 'ng', a.ng, 2 * outDim, { ints: false });
  if (a.held) checkTensor(name, 'held', a.held, outDim, { ints: false });
  checkDistinct(name, { ng: a.ng, wn2: a.wn2, E: a.E, G: a.G }, { B: a.B, m: a.m, A: a.A, held: a.held });
  if (!a.held) {
    doraRowNormsSq(list, { W: a.W, inDim, outDim, conv1d: a.conv1d, out: a.wn2 });
    // E = 2s·A·Wᵀ, G = A·Aᵀ, E += s²·G·Bᵀ.
    matmul(list, {
      a: { t: a.A, ld: inDim },
      b: { t: a.W, ld: a.conv1d ? outDim : inDim },
      c: { t: a.E, ld: outDim },
      M: r,
      N: outDim,
      K: inDim,
      transB: !a.conv1d,
      alpha: 2 * s,
    });
    matmul(list, {
      a: { t: a.A, ld: inDim },
      b: { t: a.A, ld: inDim },
      c: { t: a.G, ld: r },
      M: r,
      N: r,
      K: inDim,
      transB: true,
    });
    matmul(list, {
      a: { t: a.G, ld: r },
      b: { t: a.B, ld: r },
      c: { t: a.E, ld: outDim },
      M: r,
      N: outDim,
      K: r,
      transB: true,
      alpha: s * s,
      beta: 1,
    });
  }
  list.dispatch(
    NORM_SCALE,
    [a.held ?? a.wn2, a.B, a.E, a.m, a.ng],
    [u32(outDim), u32(r), u32(a.held ? 0 : 1), u32(0)],
    grid1d(outDim, WG),
  );
}

export interface DoraCombineArgs {
  /** [2, out] from doraNorm. */
  ng: Tensor;
  /** [rows, out] dense: x·Wᵀ + s·(x·Aᵀ)·Bᵀ. */
  z: Tensor;
  /** [rows, out] at offset, rows ld apart. */
  y: StridedView;
  rows: number;
  outDim: number;
  /** 0 overwrites y; 1 accumulates into it (residual connections). */
  beta: 0 | 1;
}

/** y = beta·y + g ⊙ z (g per column). */
export function doraCombine(list: CommandList, a: DoraCombineArgs): void {
  const name = 'doraCombine';
  checkCount(name, 'rows', a.rows);
  checkCount(name, 'outDim', a.outDim);
  checkTensor(name, 'ng', a.ng, 2 * a.outDim, { ints: false });
  checkTensor(name, 'z', a.z, a.rows * a.outDim, { ints: false });
  checkStrided(name, 'y', a.y, a.rows, a.outDim);
  checkDistinct(name, { y: a.y.t }, { ng: a.ng, z: a.z });
  list.dispatch(
    COMBINE,
    [a.ng, a.z, a.y.t],
    [u32(a.rows), u32(a.outDim), u32(a.y.offset ?? 0), u32(a.y.ld), u32(a.beta), u32(0), u32(0), u32(0)],
    grid1d(a.rows * a.outDim, WG),
  );
}

export interface DoraScaleGradArgs {
  /** [rows, out] at offset, rows ld apart. */
  dy: StridedView;
  /** [rows, out] dense, as the forward left it. */
  z: Tensor;
  ng: Tensor;
  /** [rows, out] dense: written g ⊙ dy. */
  dz: Tensor;
  /** [out]: overwritten with Σ_rows dy ⊙ z / n. */
  dm: Tensor;
  rows: number;
  outDim: number;
}

/** dz = g ⊙ dy and dm_j = Σ_i dy_ij·z_ij / n_j, in one pass over dy. */
export function doraScaleGrad(list: CommandList, a: DoraScaleGradArgs): void {
  const name = 'doraScaleGrad';
  checkCount(name, 'rows', a.rows);
  checkCount(name, 'outDim', a.outDim);
  checkStrided(name, 'dy', a.dy, a.rows, a.outDim);
  checkTensor(name, 'z', a.z, a.rows * a.outDim, { ints: false });
  checkTensor(name, 'ng', a.ng, 2 * a.outDim, { ints: false });
  checkTensor(name, 'dz', a.dz, a.rows * a.outDim, { ints: false });
  checkTensor(name, 'dm', a.dm, a.outDim, { ints: false });
  checkDistinct(name, { dz: a.dz, dm: a.dm }, { dy: a.dy.t, z: a.z, ng: a.ng });
  list.dispatch(
    SCALE_GRAD,
    [a.dy.t, a.z, a.ng, a.dz, a.dm],
    [u32(a.rows), u32(a.outDim), u32(a.dy.offset ?? 0), u32(a.dy.ld)],
    [Math.ceil(a.outDim / GRAD_COLS), 1, 1],
  );
}
