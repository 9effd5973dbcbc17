/**
 * Deterministic GPU sums: sum, sum of squares, and the global gradient norm with its clip factor. Each
 * workgroup sums its threads with subgroup operations where the device has them, else a tree (subgroups.ts).
 */
import code from '../../shaders/reduce.wgsl?raw';
import type { CommandList, KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { sourceFor, subgroupForms } from './subgroups';
import { checkCount, checkDistinct, checkTensor } from './views';

const sources = subgroupForms({ name: 'reduce', code });
const WG = 256; // threads per workgroup (must match the shader)
/** Above this many elements a scratch tensor, when given, splits the sum over several workgroups. */
const SINGLE_MAX = WG * 16;
/** Elements per thread aimed for in the first stage, and the most partial sums it produces. */
const PER_THREAD = 16;
const MAX_PARTIALS = 1024;

function spec(list: CommandList, entry: string, square: boolean): KernelSpec {
  return { source: sourceFor(list, sources), entry, bindings: ['read', 'rw'], constants: { SQUARE: square ? 1 : 0 } };
}

export interface SumArgs {
  x: Tensor;
  /** Sums x[0..n). */
  n: number;
  out: Tensor;
  outIndex: number;
  /**
   * Optional scratch for a two-stage sum of large inputs (a single workgroup otherwise loops over all of x):
   * up to 1024 partial sums, so any size works; larger scratch helps only past 4M elements.
   */
  scratch?: Tensor;
}

/** out[outIndex] = sum of x[i]^2 over i < n. */
export function sumSquares(list: CommandList, a: SumArgs): void {
  reduce(list, 'sumSquares', a, true);
}

/** out[outIndex] = sum of x[i] over i < n. */
export function sum(list: CommandList, a: SumArgs): void {
  reduce(list, 'sum', a, false);
}

function reduce(list: CommandList, name: string, a: SumArgs, square: boolean): void {
  checkCount(name, 'n', a.n);
  checkTensor(name, 'x', a.x, a.n, { ints: false });
  checkTensor(name, 'out', a.out, 1, { offset: a.outIndex, ints: false });
  checkDistinct(name, { out: a.out }, { x: a.x });
  const partials = a.scratch ? Math.min(a.scratch.size, MAX_PARTIALS, Math.ceil(a.n / (WG * PER_THREAD))) : 0;
  if (!a.scratch || a.n <= SINGLE_MAX || partials < 2) {
    list.dispatch(
      spec(list, 'reduce_single', square),
      [a.x, a.out],
      [u32(a.n), u32(a.outIndex), u32(0), f32(0)],
      [1, 1, 1],
    );
    return;
  }
  checkTensor(name, 'scratch', a.scratch, 1, { ints: false });
  checkDistinct(name, { scratch: a.scratch }, { x: a.x, out: a.out });
  list.dispatch(
    spec(list, 'reduce_partials', square),
    [a.x, a.scratch],
    [u32(a.n), u32(0), u32(0), f32(0)],
    [partials, 1, 1],
  );
  list.dispatch(
    spec(list, 'reduce_single', false),
    [a.scratch, a.out],
    [u32(partials), u32(a.outIndex), u32(0), f32(0)],
    [1, 1, 1],
  );
}

export interface ClipFactorArgs {
  /** Per-tensor sums of squares sq[0..count). */
  sq: Tensor;
  count: number;
  /** state[normIndex] = global norm; state[clipIndex] = gradient multiplier (1 when no clipping applies). */
  state: Tensor;
  normIndex: number;
  clipIndex: number;
  /** <= 0 disables clipping. */
  maxNorm: number;
}

/** norm = sqrt(sum sq); clip = maxNorm > 0 ? min(1, maxNorm / (norm + 1e-6)) : 1, as torch's clip_grad_norm_. */
export function clipFactor(list: CommandList, a: ClipFactorArgs): void {
  const name = 'clipFactor';
  checkCount(name, 'count', a.count);
  checkTensor(name, 'sq', a.sq, a.count, { ints: false });
  checkTensor(name, 'state', a.state, 1, { offset: a.normIndex, ints: false });
  checkTensor(name, 'state', a.state, 1, { offset: a.clipIndex, ints: false });
  if (a.normIndex === a.clipIndex) throw new Error(`${name}: normIndex and clipIndex are both ${a.normIndex}`);
  if (!Number.isFinite(a.maxNorm)) throw new Error(`${name}: maxNorm must be finite, got ${a.maxNorm}`);
  checkDistinct(name, { state: a.state }, { sq: a.sq });
  list.dispatch(
    spec(list, 'clip_factor', false),
    [a.sq, a.state],
    [u32(a.count), u32(a.normIndex), u32(a.clipIndex), f32(a.maxNorm)],
    [1, 1, 1],
  );
}
