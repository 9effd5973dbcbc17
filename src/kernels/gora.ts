/** GoRA's importance sums (|W⊙G|, (W⊙G)², |G|, G²) per column, for the host to finish in float64. */
import code from '../../shaders/gora.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';
import { checkWeight, weightSource } from './weight-storage';

const source = { name: 'gora', code };
const WG = 64;
/** Compiled per storage format of the weight (f32, or packed f16/bf16). */
const columns = (weight: Tensor): KernelSpec => ({
  source: weightSource(source, weight),
  entry: 'importance_columns',
  bindings: ['read', 'read', 'rw'],
});

/** The three sums each column contributes (in this order in `sums`). */
export const IMPORTANCE_SUMS = 4;

export interface ImportanceColumnsArgs {
  /** The frozen weight (f32, f16 or bf16): [out, in], or [in, out] when conv1d (GPT-2 stores Wᵀ). */
  weight: Tensor;
  /** The accumulated gradient of W in the [out, in] layout. */
  grad: Tensor;
  /** [in, 4] from sumsOffset: per column j, Σ_i |W_ij G_ij|, Σ_i (W_ij G_ij)², Σ_i |G_ij|, Σ_i G_ij². */
  sums: Tensor;
  sumsOffset?: number;
  out: number;
  in: number;
  conv1d: boolean;
}

export function importanceColumns(list: CommandList, a: ImportanceColumnsArgs): void {
  const k = 'importanceColumns';
  checkCount(k, 'out', a.out);
  checkCount(k, 'in', a.in);
  checkWeight(k, 'weight', a.weight);
  checkTensor(k, 'weight', a.weight, a.out * a.in);
  checkTensor(k, 'grad', a.grad, a.out * a.in, { ints: false });
  checkTensor(k, 'sums', a.sums, a.in * IMPORTANCE_SUMS, { offset: a.sumsOffset, ints: false });
  checkDistinct(k, { sums: a.sums }, { weight: a.weight, grad: a.grad });
  list.dispatch(
    columns(a.weight),
    [a.weight, a.grad, a.sums],
    [u32(a.out), u32(a.in), u32(a.conv1d ? 1 : 0), u32(a.sumsOffset ?? 0)],
    grid1d(a.in, WG),
  );
}
