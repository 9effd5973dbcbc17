/**
 * Memory-efficient (FlashAttention-style) causal multi-head attention with GQA on strided views: the forward
 * saves one logsumexp per (b, h, query) instead of the [B, H, T, T] probabilities, the backward recomputes
 * them. Same semantics as the float64 reference attention.ref.ts (causal, packed documents through positions, scale).
 *
 * Two kernel sets compute the same values: 'workgroup' (a workgroup per 16 rows of one head, the other side
 * streamed through shared-memory tiles: for real GPUs) and 'thread' (barrier-free, one thread per 4 rows
 * with 4x4 register blocks: for CPU Vulkan drivers such as SwiftShader, where every workgroup barrier costs
 * a coroutine switch per thread). By default the adapter decides.
 */
import code from '../../shaders/flash-attention.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32, type ParamValue } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import type { AttentionDims } from './attention.ref';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'flash-attention', code };
const THREAD_WG = 64; // threads per workgroup of the thread variant and bwd_delta (THREAD_WG in the shader)
const BQ = 16; // rows per workgroup of the workgroup variant (BQ in the shader)
const MAX_WG_HEAD_DIM = 256; // TPR * MAXU in the shader: head dimensions the workgroup variant keeps in registers

export type FlashAttentionVariant = 'workgroup' | 'thread';

/** Element (row, col) of a view is t[offset + row * ld + col]; rows are tokens (b * seq + t). */
export type MatrixView = StridedView;

/** The reference's dimensions (scale multiplies q·k before the softmax, usually 1 / sqrt(headDim)). */
export interface FlashAttentionShape extends Omit<AttentionDims, 'positions'> {
  /** Which kernel set runs; defaults to the adapter's preference (see the file comment). */
  variant?: FlashAttentionVariant;
}

export interface FlashAttentionForwardArgs extends FlashAttentionShape {
  q: MatrixView;
  k: MatrixView;
  v: MatrixView;
  /** Overwritten. */
  out: MatrixView;
  /** f32 [batch, heads, seq]: logsumexp of each query row's scaled, masked scores, saved for the backward. */
  lse: Tensor;
  /**
   * u32 [batch * seq] token positions of packed rows: a query at position p attends only to the p keys before
   * it (its own document). Absent: causal attention over the whole row. The backward needs the same tensor.
   */
  positions?: Tensor;
}

export interface FlashAttentionBackwardArgs extends FlashAttentionShape {
  q: MatrixView;
  k: MatrixView;
  v: MatrixView;
  /** The forward's out and lse (out gives D = rowsum(dout ∘ out)). */
  out: MatrixView;
  lse: Tensor;
  /** The forward's positions: the masks are recomputed, not stored. */
  positions?: Tensor;
  dout: MatrixView;
  /** Overwritten, not accumulated. dk and dv sum over the query heads of their group. */
  dq: MatrixView;
  dk: MatrixView;
  dv: MatrixView;
  /** Scratch f32 [batch, heads, seq] (D per query row and head). */
  delta: Tensor;
}

// Every entry point binds eight storage slots (the shader's header lists their roles) and the params; a slot
// it does not use carries one of its read-only inputs.
const READ7: KernelSpec['bindings'] = ['read', 'read', 'read', 'read', 'read', 'read', 'read', 'rw'];
const FORWARD_BINDINGS: KernelSpec['bindings'] = ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'];

function spec(entry: string, bindings: KernelSpec['bindings'], tile?: WorkgroupTile): KernelSpec {
  return { source, entry, bindings, constants: tile ? { HD: tile.headDim, BK: tile.keys } : undefined };
}

/** The workgroup variant's pipeline constants: HD (= headDim) and BK, the rows per streamed tile. */
export interface WorkgroupTile {
  headDim: number;
  keys: number;
}

/**
 * Largest streamed tile (32, 16, 8 or 4 rows) whose shared memory fits `limitBytes` for this head size, or
 * null when even 4 rows do not fit (or headDim is past what the workgroup variant keeps in registers).
 * Shared memory of the largest entry point (bwd_dkv_wg): two 16-row blocks and two tiles with padded rows of
 * headDim + 1, two score tiles of 16 x (BK + 1), and BK entries each of lse, delta and first keys.
 */
export function workgroupTile(headDim: number, limitBytes: number): WorkgroupTile | null {
  if (headDim < 1 || headDim > MAX_WG_HEAD_DIM) return null;
  for (const keys of [32, 16, 8, 4]) {
    const floats = 2 * BQ * (headDim + 1) + 2 * keys * (headDim + 1) + 2 * BQ * (keys + 1) + 3 * keys + 1;
    if (floats * 4 <= limitBytes) return { headDim, keys };
  }
  return null;
}

/** The kernel set that runs: the requested one, else the adapter's preference (thread where tiles don't fit). */
function pick(
  name: string,
  list: CommandList,
  a: FlashAttentionShape,
): { variant: FlashAttentionVariant; tile?: WorkgroupTile } {
  const want = a.variant ?? (list.gpu.handle.adapter.software ? 'thread' : 'workgroup');
  if (want === 'thread') return { variant: 'thread' };
  const tile = workgroupTile(a.headDim, list.gpu.limits.maxComputeWorkgroupStorageSize);
  if (tile) return { variant: 'workgroup', tile };
  if (a.variant === 'workgroup') {
    throw new Error(
      `${name}: the workgroup variant cannot tile headDim ${a.headDim} in ${list.gpu.limits.maxComputeWorkgroupStorageSize} bytes of shared memory (use variant 'thread')`,
    );
  }
  return { variant: 'thread' };
}

/** out and lse from q, k, v: one dispatch. */
export function flashAttentionForward(list: CommandList, a: FlashAttentionForwardArgs): void {
  const name = 'flashAttentionForward';
  checkShape(name, a);
  const rows = a.batch * a.seq;
  const qWidth = a.heads * a.headDim;
  const kvWidth = a.kvHeads * a.headDim;
  checkStrided(name, 'q', a.q, rows, qWidth);
  checkStrided(name, 'k', a.k, rows, kvWidth);
  checkStrided(name, 'v', a.v, rows, kvWidth);
  checkStrided(name, 'out', a.out, rows, qWidth);
  checkTensor(name, 'lse', a.lse, a.batch * a.heads * a.seq, { ints: false });
  checkPositions(name, a.positions, rows);
  checkDistinct(name, { out: a.out.t, lse: a.lse }, { q: a.q.t, k: a.k.t, v: a.v.t, positions: a.positions });

  const { variant, tile } = pick(name, list, a);
  const bindings = [a.q.t, a.k.t, a.v.t, a.positions ?? a.q.t, a.q.t, a.q.t, a.lse, a.out.t];
  const prm = params(a, { q: a.q, k: a.k, v: a.v, x: a.out }, a.positions !== undefined);
  if (variant === 'thread') {
    list.dispatch(
      spec('fwd_t', FORWARD_BINDINGS),
      bindings,
      prm,
      grid1d(a.batch * a.heads * Math.ceil(a.seq / 4), THREAD_WG),
    );
    return;
  }
  list.dispatch(
    spec('fwd_wg', FORWARD_BINDINGS, tile),
    bindings,
    prm,
    grid1d(a.batch * a.heads * Math.ceil(a.seq / BQ), 1),
  );
}

/**
 * delta = rowsum(dout ∘ out), then dq, then dk and dv: three dispatches, each writing one buffer (four when
 * dk and dv are different tensors: the dk|dv kernel then runs once per output).
 */
export function flashAttentionBackward(list: CommandList, a: FlashAttentionBackwardArgs): void {
  const name = 'flashAttentionBackward';
  checkShape(name, a);
  const rows = a.batch * a.seq;
  const qWidth = a.heads * a.headDim;
  const kvWidth = a.kvHeads * a.headDim;
  checkStrided(name, 'q', a.q, rows, qWidth);
  checkStrided(name, 'k', a.k, rows, kvWidth);
  checkStrided(name, 'v', a.v, rows, kvWidth);
  checkStrided(name, 'out', a.out, rows, qWidth);
  checkStrided(name, 'dout', a.dout, rows, qWidth);
  checkStrided(name, 'dq', a.dq, rows, qWidth);
  checkStrided(name, 'dk', a.dk, rows, kvWidth);
  checkStrided(name, 'dv', a.dv, rows, kvWidth);
  const stats = a.batch * a.heads * a.seq;
  checkTensor(name, 'lse', a.lse, stats, { ints: false });
  checkTensor(name, 'delta', a.delta, stats, { ints: false });
  checkPositions(name, a.positions, rows);
  checkDistinct(name, { delta: a.delta }, { out: a.out.t, dout: a.dout.t });
  const inputs = { q: a.q.t, k: a.k.t, v: a.v.t, dout: a.dout.t, lse: a.lse, delta: a.delta, positions: a.positions };
  checkDistinct(name, { dq: a.dq.t }, inputs);
  checkDistinct(name, { dk: a.dk.t }, inputs);
  checkDistinct(name, { dv: a.dv.t }, inputs);

  const { variant, tile } = pick(name, list, a);
  const docMask = a.positions !== undefined;
  const d = a.dout.t;
  list.dispatch(
    spec('bwd_delta', READ7),
    [a.out.t, d, d, d, d, d, d, a.delta],
    params(a, { o: a.out, g: a.dout }, false),
    grid1d(stats, THREAD_WG),
  );

  const grads = (dst: Tensor) => [a.q.t, a.k.t, a.v.t, a.positions ?? a.q.t, d, a.lse, a.delta, dst];
  const dq = params(a, { q: a.q, k: a.k, v: a.v, g: a.dout, x: a.dq }, docMask);
  // dk and dv in one dispatch when they share a buffer (column slices of a fused dq|dk|dv); else one each.
  const dkv: [Tensor, ParamValue[]][] =
    a.dk.t.buffer === a.dv.t.buffer
      ? [[a.dk.t, params(a, { q: a.q, k: a.k, v: a.v, g: a.dout, x: a.dk, y: a.dv }, docMask, 3)]]
      : [
          [a.dk.t, params(a, { q: a.q, k: a.k, v: a.v, g: a.dout, x: a.dk }, docMask, 1)],
          [a.dv.t, params(a, { q: a.q, k: a.k, v: a.v, g: a.dout, y: a.dv }, docMask, 2)],
        ];
  if (variant === 'thread') {
    list.dispatch(
      spec('bwd_dq_t', READ7),
      grads(a.dq.t),
      dq,
      grid1d(a.batch * a.heads * Math.ceil(a.seq / 4), THREAD_WG),
    );
    const kvGrid = grid1d(a.batch * a.kvHeads * Math.ceil(a.seq / 4), THREAD_WG);
    for (const [dst, prm] of dkv) list.dispatch(spec('bwd_dkv_t', READ7), grads(dst), prm, kvGrid);
    return;
  }
  list.dispatch(
    spec('bwd_dq_wg', READ7, tile),
    grads(a.dq.t),
    dq,
    grid1d(a.batch * a.heads * Math.ceil(a.seq / BQ), 1),
  );
  const kvGrid = grid1d(a.batch * a.kvHeads * Math.ceil(a.seq / BQ), 1);
  for (const [dst, prm] of dkv) list.dispatch(spec('bwd_dkv_wg', READ7, tile), grads(dst), prm, kvGrid);
}

function checkShape(name: string, a: FlashAttentionShape): void {
  for (const key of ['batch', 'seq', 'heads', 'kvHeads', 'headDim'] as const) checkCount(name, key, a[key]);
  if (a.kvHeads === 0 || a.heads % a.kvHeads !== 0) {
    throw new Error(`${name}: heads (${a.heads}) must be a positive multiple of kvHeads (${a.kvHeads})`);
  }
  if (!Number.isFinite(a.scale)) throw new Error(`${name}: scale must be finite, got ${a.scale}`);
  if (a.variant !== undefined && a.variant !== 'workgroup' && a.variant !== 'thread') {
    throw new Error(`${name}: unknown variant '${String(a.variant)}' (expected 'workgroup' or 'thread')`);
  }
}

function checkPositions(name: string, positions: Tensor | undefined, rows: number): void {
  if (!positions) return;
  if (positions.dtype !== 'u32') throw new Error(`${name}: positions (${positions.label}) must be u32`);
  checkTensor(name, 'positions', positions, rows, { ints: true });
}

type Views = Partial<Record<'q' | 'k' | 'v' | 'o' | 'g' | 'x' | 'y', MatrixView>>;

// The shader's Params: shape, scale, flags, then (offset, ld) of views q, k, v, o (saved out), g (dout),
// x (dst: out, dq or dk) and y (dst: dv).
function params(a: FlashAttentionShape, views: Views, docMask: boolean, flags = 0): ParamValue[] {
  const view = (x?: MatrixView) => [u32(x?.offset ?? 0), u32(x?.ld ?? 0)];
  return [
    u32(a.batch),
    u32(a.seq),
    u32(a.heads),
    u32(a.kvHeads),
    u32(a.headDim),
    f32(a.scale),
    u32(docMask ? 1 : 0),
    u32(flags),
    ...view(views.q),
    ...view(views.k),
    ...view(views.v),
    ...view(views.o),
    ...view(views.g),
    ...view(views.x),
    ...view(views.y),
    u32(0),
    u32(0),
  ];
}
