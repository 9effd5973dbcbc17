/** Rotary position embedding (Hugging Face rotate_half), in place, forward and backward. */
import code from '../../shaders/rope.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'rope', code };
const WG = 64;

const FORWARD: KernelSpec = { source, entry: 'rope_forward', bindings: ['read', 'read', 'rw'] };
const BACKWARD: KernelSpec = { source, entry: 'rope_backward', bindings: ['read', 'read', 'rw'] };

export interface RopeArgs {
  /** Token rows (ld apart, from offset), each holding `heads` heads of headDim. Rotated in place. */
  x: StridedView;
  /** u32 [tokens]: the position of each token (packed sequences restart at 0). */
  positions: Tensor;
  /** f32 [rotaryDim / 2], e.g. from ropeInvFreq. */
  invFreq: Tensor;
  tokens: number;
  heads: number;
  headDim: number;
  /** Leading dims of each head that rotate (partial rotary); default headDim. Even. */
  rotaryDim?: number;
}

/** Rotates each head's first rotaryDim dims by pos * invFreq. */
export function ropeForward(list: CommandList, a: RopeArgs): void {
  record(list, 'ropeForward', FORWARD, a);
}

/** In place on the gradient of ropeForward's output: rotation by -angle. */
export function ropeBackward(list: CommandList, a: RopeArgs): void {
  record(list, 'ropeBackward', BACKWARD, a);
}

function record(list: CommandList, kernel: string, spec: KernelSpec, a: RopeArgs): void {
  const rotaryDim = a.rotaryDim ?? a.headDim;
  checkCount(kernel, 'tokens', a.tokens);
  checkCount(kernel, 'heads', a.heads);
  checkCount(kernel, 'headDim', a.headDim);
  if (!Number.isInteger(rotaryDim) || rotaryDim <= 0 || rotaryDim % 2 !== 0 || rotaryDim > a.headDim) {
    throw new Error(`${kernel}: rotaryDim must be even and in (0, headDim = ${a.headDim}], got ${rotaryDim}`);
  }
  const half = rotaryDim / 2;
  checkStrided(kernel, 'x', a.x, a.tokens, a.heads * a.headDim);
  checkTensor(kernel, 'positions', a.positions, a.tokens, { ints: true });
  checkTensor(kernel, 'invFreq', a.invFreq, half, { ints: false });
  const n = a.tokens * a.heads * half;
  list.dispatch(
    spec,
    [a.positions, a.invFreq, a.x.t],
    [u32(n), u32(a.heads), u32(a.headDim), u32(half), u32(a.x.offset ?? 0), u32(a.x.ld), u32(0), u32(0)],
    grid1d(n, WG),
  );
}

/**
 * Hugging Face's default inverse frequencies, rounded as torch computes them in f32:
 * invFreq[i] = 1 / theta^(2i / rotaryDim).
 */
export function ropeInvFreq(theta: number, rotaryDim: number): Float32Array {
  if (!Number.isInteger(rotaryDim) || rotaryDim <= 0 || rotaryDim % 2 !== 0) {
    throw new Error(`ropeInvFreq: rotaryDim must be a positive even integer, got ${rotaryDim}`);
  }
  const out = new Float32Array(rotaryDim / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = Math.fround((2 * i) / rotaryDim);
    out[i] = 1 / Math.fround(Math.pow(Math.fround(theta), exponent));
  }
  return out;
}
