/** Elementwise vector ops: out = a + b, x += alpha * y, x *= alpha. */
import code from '../../shaders/elementwise.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';

const source = { name: 'elementwise', code };
const WG = 256;

const ADD: KernelSpec = { source, entry: 'add', bindings: ['read', 'read', 'rw'] };
const ADD_IN_PLACE: KernelSpec = { source, entry: 'add_in_place', bindings: ['read', 'rw'] };
const SCALE: KernelSpec = { source, entry: 'scale', bindings: ['rw'] };

function checkAll(kernel: string, n: number, tensors: Record<string, Tensor>): void {
  checkCount(kernel, 'n', n);
  for (const [name, t] of Object.entries(tensors)) checkTensor(kernel, name, t, n, { ints: false });
}

/** out = a + b over the first n elements (out distinct from a and b; a and b may be the same tensor). */
export function add(list: CommandList, a: { a: Tensor; b: Tensor; out: Tensor; n: number }): void {
  checkAll('add', a.n, { a: a.a, b: a.b, out: a.out });
  checkDistinct('add', { out: a.out }, { a: a.a, b: a.b });
  list.dispatch(ADD, [a.a, a.b, a.out], [u32(a.n), f32(1)], grid1d(a.n, WG));
}

/** x += alpha * y over the first n elements (alpha defaults to 1; y distinct from x: use scale for x += alpha * x). */
export function addInPlace(list: CommandList, a: { x: Tensor; y: Tensor; n: number; alpha?: number }): void {
  checkAll('addInPlace', a.n, { x: a.x, y: a.y });
  checkDistinct('addInPlace', { x: a.x }, { y: a.y });
  list.dispatch(ADD_IN_PLACE, [a.y, a.x], [u32(a.n), f32(a.alpha ?? 1)], grid1d(a.n, WG));
}

/** x *= alpha over the first n elements, in place. */
export function scale(list: CommandList, a: { x: Tensor; n: number; alpha: number }): void {
  checkAll('scale', a.n, { x: a.x });
  list.dispatch(SCALE, [a.x], [u32(a.n), f32(a.alpha)], grid1d(a.n, WG));
}
