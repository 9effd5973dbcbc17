/** Elementwise MLP activations: SwiGLU (Llama, Qwen) and GPT-2's tanh GELU, forward and backward. */
import code from '../../shaders/activation.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';

const source = { name: 'activation', code };
const WG = 256;

const SWIGLU_FORWARD: KernelSpec = { source, entry: 'swiglu_forward', bindings: ['read', 'read', 'rw'] };
const SWIGLU_BACKWARD: KernelSpec = {
  source,
  entry: 'swiglu_backward',
  bindings: ['read', 'read', 'read', 'rw', 'rw'],
};
const GELU_FORWARD: KernelSpec = { source, entry: 'gelu_forward', bindings: ['read', 'rw'] };
const GELU_BACKWARD: KernelSpec = { source, entry: 'gelu_backward', bindings: ['read', 'read', 'rw'] };

function checkAll(kernel: string, n: number, tensors: Record<string, Tensor>): void {
  checkCount(kernel, 'n', n);
  for (const [name, t] of Object.entries(tensors)) checkTensor(kernel, name, t, n, { ints: false });
}

/** out = silu(gate) * up (out distinct from gate and up). */
export function swigluForward(list: CommandList, a: { gate: Tensor; up: Tensor; out: Tensor; n: number }): void {
  const k = 'swigluForward';
  checkAll(k, a.n, { gate: a.gate, up: a.up, out: a.out });
  checkDistinct(k, { out: a.out }, { gate: a.gate, up: a.up });
  list.dispatch(SWIGLU_FORWARD, [a.gate, a.up, a.out], [u32(a.n)], grid1d(a.n, WG));
}

/** dgate = dout * up * silu'(gate), dup = dout * silu(gate) (both overwritten). */
export function swigluBackward(
  list: CommandList,
  a: { dout: Tensor; gate: Tensor; up: Tensor; dgate: Tensor; dup: Tensor; n: number },
): void {
  const k = 'swigluBackward';
  checkAll(k, a.n, { dout: a.dout, gate: a.gate, up: a.up, dgate: a.dgate, dup: a.dup });
  checkDistinct(k, { dgate: a.dgate, dup: a.dup }, { dout: a.dout, gate: a.gate, up: a.up });
  list.dispatch(SWIGLU_BACKWARD, [a.dout, a.gate, a.up, a.dgate, a.dup], [u32(a.n)], grid1d(a.n, WG));
}

/** GPT-2 gelu_new: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluForward(list: CommandList, a: { x: Tensor; out: Tensor; n: number }): void {
  const k = 'geluForward';
  checkAll(k, a.n, { x: a.x, out: a.out });
  checkDistinct(k, { out: a.out }, { x: a.x });
  list.dispatch(GELU_FORWARD, [a.x, a.out], [u32(a.n)], grid1d(a.n, WG));
}

/** dx = dout * gelu_new'(x) (overwritten). */
export function geluBackward(list: CommandList, a: { dout: Tensor; x: Tensor; dx: Tensor; n: number }): void {
  const k = 'geluBackward';
  checkAll(k, a.n, { dout: a.dout, x: a.x, dx: a.dx });
  checkDistinct(k, { dx: a.dx }, { dout: a.dout, x: a.x });
  list.dispatch(GELU_BACKWARD, [a.dout, a.x, a.dx], [u32(a.n)], grid1d(a.n, WG));
}
