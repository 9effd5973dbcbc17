/**
 * The per-element half of quantizing a frozen weight on the GPU (shaders/quantize.wgsl): codes from f32 values
 * and the per-block / per-row factors the host computed, written into the codes section of a quantized layout
 * (src/quant/layout.ts), one chunk of the tensor at a time.
 */
import code from '../../shaders/quantize.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import { isQuantized, type Tensor } from '../gpu/tensor';
import { checkCount, checkTensor } from './views';

const source = { name: 'quantize', code };
const WG = 64;
const CODES4: KernelSpec = { source, entry: 'codes4', bindings: ['read', 'read', 'read', 'rw'] };
const CODES8: KernelSpec = { source, entry: 'codes8', bindings: ['read', 'read', 'rw'] };

export interface CodesArgs {
  /** f32 [n]: the chunk's values. */
  x: Tensor;
  n: number;
  /** f32, one per block (4-bit: the scale 1/absmax) or per row (int8: 127/absmax) of the chunk. */
  factor: Tensor;
  /** Elements per factor: the block size, or the row width. */
  group: number;
  /** The quantized layout being filled. */
  out: Tensor;
  /** Word of `out` where the chunk's codes begin. */
  outWord: number;
}

function check(k: string, a: CodesArgs, elementsPerWord: number): void {
  checkCount(k, 'n', a.n);
  checkCount(k, 'group', a.group);
  checkTensor(k, 'x', a.x, a.n, { ints: false });
  checkTensor(k, 'factor', a.factor, Math.ceil(a.n / a.group), { ints: false });
  if (!isQuantized(a.out.dtype)) throw new Error(`${k}: out (${a.out.label}) must be a quantized layout`);
  const words = Math.ceil(a.n / elementsPerWord);
  if (a.outWord + words > a.out.buffer.size / 4)
    throw new Error(`${k}: ${words} words at ${a.outWord} overflow ${a.out.label} (${a.out.buffer.size / 4} words)`);
}

const params = (a: CodesArgs) => [u32(a.n), u32(a.outWord), u32(a.group), u32(0)];

/** NF4 codes of x * factor[e / group] against `mids` (f32 [15], the codebook's midpoints), 8 per word. */
export function quantizeCodes4(list: CommandList, a: CodesArgs & { mids: Tensor }): void {
  check('quantizeCodes4', a, 8);
  checkTensor('quantizeCodes4', 'mids', a.mids, 15, { ints: false });
  list.dispatch(CODES4, [a.x, a.factor, a.mids, a.out], params(a), grid1d(Math.ceil(a.n / 8), WG));
}

/** int8 codes round(x * factor[e / group]), clamped to ±127, 4 per word. */
export function quantizeCodes8(list: CommandList, a: CodesArgs): void {
  check('quantizeCodes8', a, 4);
  list.dispatch(CODES8, [a.x, a.factor, a.out], params(a), grid1d(Math.ceil(a.n / 4), WG));
}
