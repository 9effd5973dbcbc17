/** Nearest-two-neighbour distances from a Gram matrix: the GPU part of the TwoNN intrinsic-dimension estimate. */
import code from '../../shaders/twonn.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';

const source = { name: 'twonn', code };
const WG = 64;

const NEAREST_TWO: KernelSpec = { source, entry: 'nearest_two', bindings: ['read', 'rw'] };

export interface NearestTwoArgs {
  /** G = X·Xᵀ, dense [n, n] (symmetric; its diagonal holds the squared norms). */
  gram: Tensor;
  /** Number of points (>= 3: every point needs a first and a second neighbour). */
  n: number;
  /** Output [n, 2]: r1r2[2i] = distance to i's nearest neighbour, r1r2[2i + 1] = to its second nearest. */
  r1r2: Tensor;
}

/** Euclidean distances from every point to its nearest and second-nearest other point (r1 <= r2). */
export function nearestTwo(list: CommandList, a: NearestTwoArgs): void {
  const k = 'nearestTwo';
  checkCount(k, 'n', a.n);
  if (a.n < 3) throw new Error(`${k}: needs at least 3 points (a first and a second neighbour for each), got ${a.n}`);
  checkTensor(k, 'gram', a.gram, a.n * a.n, { ints: false });
  checkTensor(k, 'r1r2', a.r1r2, 2 * a.n, { ints: false });
  checkDistinct(k, { r1r2: a.r1r2 }, { gram: a.gram });
  list.dispatch(NEAREST_TWO, [a.gram, a.r1r2], [u32(a.n), u32(0), u32(0), u32(0)], grid1d(a.n, WG));
}
