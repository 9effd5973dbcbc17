/** Softmax cross-entropy per row, with the logits gradient fused in (optionally written over the logits). */
import code from '../../shaders/xent.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { sourceFor, subgroupForms } from './subgroups';
import { checkCount, checkDistinct, checkTensor } from './views';

const sources = subgroupForms({ name: 'xent', code });

/**
 * Threads per row. GPUs reduce each row with 256 threads (with subgroup operations where the device has
 * them, else a tree); software adapters (SwiftShader) run a workgroup's threads as coroutines, where each
 * barrier costs far more than the arithmetic, so they get 4 and the tree.
 */
export type CrossEntropyVariant = 'wide' | 'narrow';
const THREADS: Record<CrossEntropyVariant, number> = { wide: 256, narrow: 4 };

function spec(entry: string, bindings: KernelSpec['bindings']) {
  return (list: CommandList, variant: CrossEntropyVariant): KernelSpec => {
    const source = variant === 'wide' ? sourceFor(list, sources) : sources.plain;
    return { source, entry, bindings, constants: { WG: THREADS[variant] } };
  };
}
const FORWARD = spec('forward', ['read', 'read', 'rw']);
const FORWARD_BACKWARD = spec('forward_backward', ['read', 'read', 'rw', 'read', 'rw']);
const FORWARD_BACKWARD_INPLACE = spec('forward_backward_inplace', ['rw', 'read', 'rw', 'read']);

function pick(list: CommandList, variant: CrossEntropyVariant | undefined): CrossEntropyVariant {
  return variant ?? (list.gpu.handle.adapter.software ? 'narrow' : 'wide');
}

export interface CrossEntropyArgs {
  /** [rows, vocab] */
  logits: Tensor;
  /** i32 [rows]: the target token of each row; negative (-100) or >= vocab marks a row as ignored. */
  targets: Tensor;
  /** [rows]: logsumexp(logits[r]) - logits[r][target], 0 for ignored rows. */
  losses: Tensor;
  rows: number;
  vocab: number;
  /** Row r of logits (and dlogits) is row rowOffset + r of targets and losses (a chunk of rows); default 0. */
  rowOffset?: number;
  /** Threads per row; defaults to the adapter's preference. */
  variant?: CrossEntropyVariant;
}

export interface CrossEntropyBackwardArgs extends CrossEntropyArgs {
  /** [rows, vocab]: (softmax - onehot) * gradScale[0], 0 on ignored rows. May be the logits tensor itself. */
  dlogits: Tensor;
  /** 1 element, read on the GPU (the trainer writes 1 / supervised tokens there each step). */
  gradScale: Tensor;
}

/** losses only. */
export function crossEntropyForward(list: CommandList, a: CrossEntropyArgs): void {
  const name = 'crossEntropyForward';
  checkCommon(name, a);
  checkDistinct(name, { losses: a.losses }, { logits: a.logits, targets: a.targets });
  list.dispatch(FORWARD(list, pick(list, a.variant)), [a.logits, a.targets, a.losses], params(a), grid1d(a.rows, 1));
}

/** losses and dlogits in one pass over each row; in place when dlogits is logits. */
export function crossEntropyForwardBackward(list: CommandList, a: CrossEntropyBackwardArgs): void {
  const name = 'crossEntropyForwardBackward';
  checkCommon(name, a);
  checkTensor(name, 'gradScale', a.gradScale, 1, { ints: false });
  if (a.dlogits.buffer === a.logits.buffer) {
    checkDistinct(name, { logits: a.logits, losses: a.losses }, { targets: a.targets, gradScale: a.gradScale });
    list.dispatch(
      FORWARD_BACKWARD_INPLACE(list, pick(list, a.variant)),
      [a.logits, a.targets, a.losses, a.gradScale],
      params(a),
      grid1d(a.rows, 1),
    );
    return;
  }
  checkTensor(name, 'dlogits', a.dlogits, a.rows * a.vocab, { ints: false });
  checkDistinct(
    name,
    { losses: a.losses, dlogits: a.dlogits },
    { logits: a.logits, targets: a.targets, gradScale: a.gradScale },
  );
  list.dispatch(
    FORWARD_BACKWARD(list, pick(list, a.variant)),
    [a.logits, a.targets, a.losses, a.gradScale, a.dlogits],
    params(a),
    grid1d(a.rows, 1),
  );
}

function params(a: CrossEntropyArgs) {
  return [u32(a.rows), u32(a.vocab), u32(a.rowOffset ?? 0), u32(0)];
}

function checkCommon(name: string, a: CrossEntropyArgs): void {
  checkCount(name, 'rows', a.rows);
  checkCount(name, 'vocab', a.vocab);
  if (a.vocab === 0) throw new Error(`${name}: vocab must be positive`);
  checkTensor(name, 'logits', a.logits, a.rows * a.vocab, { ints: false });
  checkTensor(name, 'targets', a.targets, a.rows, { offset: a.rowOffset, ints: true });
  checkTensor(name, 'losses', a.losses, a.rows, { offset: a.rowOffset, ints: false });
}
