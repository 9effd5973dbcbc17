/** Causal multi-head attention with GQA: forward (probs, out) and backward (dq, dk, dv) on strided views. */
import code from '../../shaders/attention.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'attention', code };
const ELEM_WG = 256; // threads per workgroup of the one-output-per-thread entry points (must match the shader)

/** Element (row, col) of a view is t[offset + row * ld + col]; rows are tokens (b * seq + t). */
export type MatrixView = StridedView;

export interface AttentionShape {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Multiplies q·k before the softmax; usually 1 / sqrt(headDim). */
  scale: number;
}

export interface AttentionForwardArgs extends AttentionShape {
  q: MatrixView;
  k: MatrixView;
  v: MatrixView;
  out: MatrixView;
  /** [batch, heads, seq, seq]: softmax probabilities saved for the backward pass (zero above the diagonal). */
  probs: Tensor;
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

  list.dispatch(spec('fwd_probs'), [a.k.t, a.k.t, a.q.t, a.probs], params(a, a.k, a.q, null), grid1d(s.scoreRows, 1));
  list.dispatch(spec('fwd_out'), [a.probs, a.v.t, a.probs, a.out.t], params(a, a.v, null, a.out), grid1d(rows * a.heads * a.headDim, ELEM_WG));
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

  const kvGrid = grid1d(rows * kvWidth, ELEM_WG);
  list.dispatch(spec('bwd_dv'), [a.probs, a.probs, a.dout.t, a.dv.t], params(a, null, a.dout, a.dv), kvGrid);
  list.dispatch(spec('bwd_dscores'), [a.probs, a.v.t, a.dout.t, a.dscores], params(a, a.v, a.dout, null), grid1d(s.scoreRows, 1));
  list.dispatch(spec('bwd_dq'), [a.dscores, a.k.t, a.dscores, a.dq.t], params(a, a.k, null, a.dq), grid1d(rows * qWidth, ELEM_WG));
  list.dispatch(spec('bwd_dk'), [a.dscores, a.dscores, a.q.t, a.dk.t], params(a, null, a.q, a.dk), kvGrid);
}

function checkShape(name: string, a: AttentionShape): { scores: number; scoreRows: number } {
  for (const key of ['batch', 'seq', 'heads', 'kvHeads', 'headDim'] as const) checkCount(name, key, a[key]);
  if (a.kvHeads === 0 || a.heads % a.kvHeads !== 0) {
    throw new Error(`${name}: heads (${a.heads}) must be a positive multiple of kvHeads (${a.kvHeads})`);
  }
  if (!Number.isFinite(a.scale)) throw new Error(`${name}: scale must be finite, got ${a.scale}`);
  const scoreRows = a.batch * a.heads * a.seq;
  return { scores: scoreRows * a.seq, scoreRows };
}

function params(a: AttentionShape, view1: MatrixView | null, view2: MatrixView | null, dst: MatrixView | null) {
  return [
    u32(a.batch), u32(a.seq), u32(a.heads), u32(a.kvHeads),
    u32(a.headDim), u32(view1?.offset ?? 0), u32(view1?.ld ?? 0), u32(view2?.offset ?? 0),
    u32(view2?.ld ?? 0), u32(dst?.offset ?? 0), u32(dst?.ld ?? 0), f32(a.scale),
  ];
}
