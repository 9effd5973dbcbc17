/**
 * Causal multi-head attention with GQA: forward (probs, out) and backward (dq, dk, dv) on strided views.
 *
 * Two kernel sets compute the same values: 'workgroup' (one workgroup per score row with tree
 * reductions, one thread per output: for real GPUs) and 'thread' (barrier-free: one thread per score
 * row, 4x4 register blocks for the products: for CPU Vulkan drivers such as SwiftShader, where every
 * workgroup barrier costs a coroutine switch per thread). By default the adapter decides.
 */
import code from '../../shaders/attention.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import type { AttentionDims } from './attention.ref';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'attention', code };
const ELEM_WG = 256; // threads per workgroup of the one-output-per-thread entry points (must match the shader)
const THREAD_WG = 64; // threads per workgroup of the barrier-free entry points (THREAD_WG in the shader)

export type AttentionVariant = 'workgroup' | 'thread';

/** Element (row, col) of a view is t[offset + row * ld + col]; rows are tokens (b * seq + t). */
export type MatrixView = StridedView;

/** The reference's dimensions (scale multiplies q·k before the softmax, usually 1 / sqrt(headDim)). */
export interface AttentionShape extends Omit<AttentionDims, 'positions'> {
  /** Which kernel set runs; defaults to the adapter's preference (see the file comment). */
  variant?: AttentionVariant;
}

export interface AttentionForwardArgs extends AttentionShape {
  q: MatrixView;
  k: MatrixView;
  v: MatrixView;
  out: MatrixView;
  /** [batch, heads, seq, seq]: softmax probabilities saved for the backward pass (zero above the diagonal). */
  probs: Tensor;
  /**
   * u32 [batch * seq] token positions of packed rows: a query at position p attends only to the p keys before
   * it (its own document). Absent: causal attention over the whole row. The backward pass needs nothing more:
   * masked probabilities are zero, so their gradients are too.
   */
  positions?: Tensor;
}

export interface AttentionBackwardArgs extends AttentionShape {
  q: MatrixView;
  k: MatrixView;
  v: MatrixView;
  probs: Tensor;
  dout: MatrixView;
  /** Overwritten, not accumulated. dk and dv sum over the query heads of their group. */
  dq: MatrixView;
  dk: MatrixView;
  dv: MatrixView;
  /** Scratch [batch, heads, seq, seq]. */
  dscores: Tensor;
}

// Every entry point binds slots [probs | dscores, k | v, q | dout] read-only and slot 3 (its output) writable,
// as the shader's header lists; a slot an entry point does not use repeats one of its read-only inputs.
function spec(entry: string): KernelSpec {
  return { source, entry, bindings: ['read', 'read', 'read', 'rw'] };
}

/** probs = causal softmax(scale * q kᵀ), then out = probs v. Two dispatches. */
export function attentionForward(list: CommandList, a: AttentionForwardArgs): void {
  const name = 'attentionForward';
  const s = checkShape(name, a);
  const rows = a.batch * a.seq;
  checkStrided(name, 'q', a.q, rows, a.heads * a.headDim);
  checkStrided(name, 'k', a.k, rows, a.kvHeads * a.headDim);
  checkStrided(name, 'v', a.v, rows, a.kvHeads * a.headDim);
  checkStrided(name, 'out', a.out, rows, a.heads * a.headDim);
  checkTensor(name, 'probs', a.probs, s.scores, { ints: false });
  checkDistinct(name, { probs: a.probs }, { q: a.q.t, k: a.k.t });
  checkDistinct(name, { out: a.out.t }, { probs: a.probs, v: a.v.t });

  if (a.positions) {
    if (a.positions.dtype !== 'u32') throw new Error(`${name}: positions (${a.positions.label}) must be u32`);
    checkTensor(name, 'positions', a.positions, rows, { ints: true });
  }
  // Slot 0 carries the positions (or, unused, k again).
  const probsBindings = [a.positions ?? a.k.t, a.k.t, a.q.t, a.probs];
  const probsParams = params(a, a.k, a.q, null, a.positions !== undefined);
  const outBindings = [a.probs, a.v.t, a.probs, a.out.t];
  if (variantOf(list, a) === 'thread') {
    list.dispatch(spec('rows_probs'), probsBindings, probsParams, grid1d(s.rowBlocks, THREAD_WG));
    list.dispatch(spec('prod_scores'), outBindings, params(a, a.v, null, a.out), grid1d(s.blocks(a.heads), THREAD_WG));
    return;
  }
  list.dispatch(spec('fwd_probs'), probsBindings, probsParams, grid1d(s.scoreRows, 1));
  list.dispatch(spec('fwd_out'), outBindings, params(a, a.v, null, a.out), grid1d(rows * a.heads * a.headDim, ELEM_WG));
}

/** dv, dscores, dq, dk: four dispatches, each writing one buffer. */
export function attentionBackward(list: CommandList, a: AttentionBackwardArgs): void {
  const name = 'attentionBackward';
  const s = checkShape(name, a);
  const rows = a.batch * a.seq;
  const qWidth = a.heads * a.headDim;
  const kvWidth = a.kvHeads * a.headDim;
  checkStrided(name, 'q', a.q, rows, qWidth);
  checkStrided(name, 'k', a.k, rows, kvWidth);
  checkStrided(name, 'v', a.v, rows, kvWidth);
  checkStrided(name, 'dout', a.dout, rows, qWidth);
  checkStrided(name, 'dq', a.dq, rows, qWidth);
  checkStrided(name, 'dk', a.dk, rows, kvWidth);
  checkStrided(name, 'dv', a.dv, rows, kvWidth);
  checkTensor(name, 'probs', a.probs, s.scores, { ints: false });
  checkTensor(name, 'dscores', a.dscores, s.scores, { ints: false });
  checkDistinct(name, { dv: a.dv.t }, { probs: a.probs, dout: a.dout.t });
  checkDistinct(name, { dscores: a.dscores }, { probs: a.probs, v: a.v.t, dout: a.dout.t });
  checkDistinct(name, { dq: a.dq.t }, { dscores: a.dscores, k: a.k.t });
  checkDistinct(name, { dk: a.dk.t }, { dscores: a.dscores, q: a.q.t });

  const dv = { bindings: [a.probs, a.probs, a.dout.t, a.dv.t], params: params(a, null, a.dout, a.dv) };
  const dscores = { bindings: [a.probs, a.v.t, a.dout.t, a.dscores], params: params(a, a.v, a.dout, null) };
  const dq = { bindings: [a.dscores, a.k.t, a.dscores, a.dq.t], params: params(a, a.k, null, a.dq) };
  const dk = { bindings: [a.dscores, a.dscores, a.q.t, a.dk.t], params: params(a, null, a.q, a.dk) };
  if (variantOf(list, a) === 'thread') {
    const kvGrid = grid1d(s.blocks(a.kvHeads), THREAD_WG);
    list.dispatch(spec('prod_scores_t'), dv.bindings, dv.params, kvGrid);
    list.dispatch(spec('rows_dscores'), dscores.bindings, dscores.params, grid1d(s.rowBlocks, THREAD_WG));
    list.dispatch(spec('prod_scores'), dq.bindings, dq.params, grid1d(s.blocks(a.heads), THREAD_WG));
    list.dispatch(spec('prod_scores_t'), dk.bindings, dk.params, kvGrid);
    return;
  }
  const kvGrid = grid1d(rows * kvWidth, ELEM_WG);
  list.dispatch(spec('bwd_dv'), dv.bindings, dv.params, kvGrid);
  list.dispatch(spec('bwd_dscores'), dscores.bindings, dscores.params, grid1d(s.scoreRows, 1));
  list.dispatch(spec('bwd_dq'), dq.bindings, dq.params, grid1d(rows * qWidth, ELEM_WG));
  list.dispatch(spec('bwd_dk'), dk.bindings, dk.params, kvGrid);
}

function variantOf(list: CommandList, a: AttentionShape): AttentionVariant {
  return a.variant ?? (list.gpu.handle.adapter.software ? 'thread' : 'workgroup');
}

/**
 * Sizes derived from the shape. rowBlocks counts the thread kernels' blocks of 4 score rows; blocks(h)
 * their 4 positions x 4 dimensions blocks of h heads' outputs.
 */
interface DerivedSizes {
  scores: number;
  scoreRows: number;
  rowBlocks: number;
  blocks(heads: number): number;
}

function checkShape(name: string, a: AttentionShape): DerivedSizes {
  for (const key of ['batch', 'seq', 'heads', 'kvHeads', 'headDim'] as const) checkCount(name, key, a[key]);
  if (a.kvHeads === 0 || a.heads % a.kvHeads !== 0) {
    throw new Error(`${name}: heads (${a.heads}) must be a positive multiple of kvHeads (${a.kvHeads})`);
  }
  if (!Number.isFinite(a.scale)) throw new Error(`${name}: scale must be finite, got ${a.scale}`);
  if (a.variant !== undefined && a.variant !== 'workgroup' && a.variant !== 'thread') {
    throw new Error(`${name}: unknown variant '${String(a.variant)}' (expected 'workgroup' or 'thread')`);
  }
  const scoreRows = a.batch * a.heads * a.seq;
  const blocks = (heads: number) => a.batch * heads * Math.ceil(a.seq / 4) * Math.ceil(a.headDim / 4);
  const rowBlocks = a.batch * a.heads * Math.ceil(a.seq / 4);
  return { scores: scoreRows * a.seq, scoreRows, rowBlocks, blocks };
}

function params(a: AttentionShape, view1: MatrixView | null, view2: MatrixView | null, dst: MatrixView | null, docMask = false) {
  return [
    u32(a.batch), u32(a.seq), u32(a.heads), u32(a.kvHeads),
    u32(a.headDim), u32(view1?.offset ?? 0), u32(view1?.ld ?? 0), u32(view2?.offset ?? 0),
    u32(view2?.ld ?? 0), u32(dst?.offset ?? 0), u32(dst?.ld ?? 0), f32(a.scale),
    u32(docMask ? 1 : 0), u32(0), u32(0), u32(0),
  ];
}
