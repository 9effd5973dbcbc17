/** Row-wise argmax on the GPU: greedy decoding reads back one u32 per row instead of the logits. */
import code from '../../shaders/argmax.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { sourceFor, subgroupForms } from './subgroups';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const sources = subgroupForms({ name: 'argmax', code });

/**
 * Threads per row. GPUs merge each row's 256 candidates (with subgroup operations where the device has them,
 * else a tree); software adapters (SwiftShader) run a workgroup's threads as coroutines, where each barrier
 * costs far more than the comparisons, so they get 4 and the tree.
 */
export type ArgmaxVariant = 'wide' | 'narrow';
const THREADS: Record<ArgmaxVariant, number> = { wide: 256, narrow: 4 };

function spec(list: CommandList, variant: ArgmaxVariant): KernelSpec {
  const source = variant === 'wide' ? sourceFor(list, sources) : sources.plain;
  return { source, entry: 'argmax_rows', bindings: ['read', 'rw'], constants: { WG: THREADS[variant] } };
}

export interface ArgmaxArgs {
  /** rows x vocab values, rows ld apart from offset (e.g. logits [rows, vocab]). */
  x: StridedView;
  /** u32 [rows]: the index of each row's largest value (the lowest among equal ones). */
  out: Tensor;
  rows: number;
  vocab: number;
  /** Threads per row; defaults to the adapter's preference. */
  variant?: ArgmaxVariant;
}

export function argmax(list: CommandList, a: ArgmaxArgs): void {
  const name = 'argmax';
  checkCount(name, 'rows', a.rows);
  checkCount(name, 'vocab', a.vocab);
  if (a.vocab === 0) throw new Error(`${name}: vocab must be positive`);
  checkStrided(name, 'x', a.x, a.rows, a.vocab);
  if (a.x.t.dtype !== 'f32') throw new Error(`${name} x (${a.x.t.label}): expected an f32 tensor, got ${a.x.t.dtype}`);
  checkTensor(name, 'out', a.out, a.rows, { ints: true });
  checkDistinct(name, { out: a.out }, { x: a.x.t });
  if (a.variant !== undefined && !(a.variant in THREADS))
    throw new Error(`${name}: unknown variant '${String(a.variant)}' (expected 'wide' or 'narrow')`);
  const variant = a.variant ?? (list.gpu.handle.adapter.software ? 'narrow' : 'wide');
  list.dispatch(
    spec(list, variant),
    [a.x.t, a.out],
    [u32(a.rows), u32(a.vocab), u32(a.x.offset ?? 0), u32(a.x.ld)],
    grid1d(a.rows, 1),
  );
}
