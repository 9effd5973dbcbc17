/**
 * Attention for incremental decoding (shaders/decode-attention.wgsl): query rows at given positions against
 * a KV cache with GQA, and the store that writes new k|v rows into the cache at their positions. Both read
 * the positions from a u32 tensor, so a recorded decode step serves every position: only that tensor changes.
 *
 * Two attention kernels compute the same values: 'workgroup' (one workgroup per (row, head), a tile of keys
 * per step: for real GPUs) and 'thread' (barrier-free: one thread per (row, head): for CPU Vulkan drivers
 * such as SwiftShader). By default the adapter decides.
 */
import code from '../../shaders/decode-attention.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import type { DecodeAttentionDims } from './decode-attention.ref';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'decode-attention', code };
const STORE_WG = 64; // threads per workgroup of cache_store (STORE_WG in the shader)
const THREAD_WG = 64; // threads per workgroup of attend_thread (THREAD_WG in the shader)
/** The largest head the kernels hold in registers (MAX_HEAD_DIM in the shader). */
export const DECODE_MAX_HEAD_DIM = 256;

const STORE: KernelSpec = { source, entry: 'cache_store', bindings: ['read', 'read', 'rw'] };
const ATTEND = (variant: DecodeAttentionVariant): KernelSpec => ({
  source,
  entry: `attend_${variant}`,
  bindings: ['read', 'read', 'read', 'read', 'rw'],
});

export type DecodeAttentionVariant = 'workgroup' | 'thread';

export interface CacheStoreArgs {
  /** rows x width values to store (e.g. the k|v columns of a fused q|k|v buffer). */
  src: StridedView;
  /** The cache: keyRows rows of width, row j for position j. */
  dst: StridedView;
  /** u32 [rows]: where each row goes; positions >= keyRows are skipped (padding rows). */
  positions: Tensor;
  rows: number;
  width: number;
  keyRows: number;
}

/** dst[positions[r]] = src[r] for each row whose position is inside the cache. */
export function cacheStore(list: CommandList, a: CacheStoreArgs): void {
  const name = 'cacheStore';
  for (const key of ['rows', 'width', 'keyRows'] as const) checkCount(name, key, a[key]);
  checkStrided(name, 'src', a.src, a.rows, a.width);
  checkStrided(name, 'dst', a.dst, a.keyRows, a.width);
  checkPositions(name, a.positions, a.rows);
  checkDistinct(name, { dst: a.dst.t }, { src: a.src.t, positions: a.positions });
  list.dispatch(
    STORE,
    [a.positions, a.src.t, a.dst.t],
    [
      u32(a.rows),
      u32(a.width),
      u32(a.src.offset ?? 0),
      u32(a.src.ld),
      u32(a.dst.offset ?? 0),
      u32(a.dst.ld),
      u32(a.keyRows),
      u32(0),
    ],
    grid1d(a.rows * a.width, STORE_WG),
  );
}

export interface DecodeAttentionArgs extends DecodeAttentionDims {
  /** [rows, heads * headDim] */
  q: StridedView;
  /** The cache's keys and values: keyRows rows of kvHeads * headDim (may be column slices of one tensor). */
  k: StridedView;
  v: StridedView;
  /** [rows, heads * headDim]; overwritten. */
  out: StridedView;
  /** u32 [rows]: row r attends to the keys at positions 0 ..= positions[r]. */
  positions: Tensor;
  variant?: DecodeAttentionVariant;
}

/** out = softmax(scale * q kᵀ) v per row and head, over each row's cached keys. One dispatch. */
export function decodeAttention(list: CommandList, a: DecodeAttentionArgs): void {
  const name = 'decodeAttention';
  for (const key of ['rows', 'heads', 'kvHeads', 'headDim', 'keyRows'] as const) checkCount(name, key, a[key]);
  if (a.kvHeads === 0 || a.heads % a.kvHeads !== 0) {
    throw new Error(`${name}: heads (${a.heads}) must be a positive multiple of kvHeads (${a.kvHeads})`);
  }
  if (a.headDim > DECODE_MAX_HEAD_DIM)
    throw new Error(`${name}: headDim ${a.headDim} exceeds the kernel's limit of ${DECODE_MAX_HEAD_DIM}`);
  if (a.keyRows === 0) throw new Error(`${name}: the cache must hold at least one key (keyRows is 0)`);
  if (!Number.isFinite(a.scale)) throw new Error(`${name}: scale must be finite, got ${a.scale}`);
  if (a.variant !== undefined && a.variant !== 'workgroup' && a.variant !== 'thread') {
    throw new Error(`${name}: unknown variant '${String(a.variant)}' (expected 'workgroup' or 'thread')`);
  }
  const qWidth = a.heads * a.headDim;
  const kvWidth = a.kvHeads * a.headDim;
  checkStrided(name, 'q', a.q, a.rows, qWidth);
  checkStrided(name, 'k', a.k, a.keyRows, kvWidth);
  checkStrided(name, 'v', a.v, a.keyRows, kvWidth);
  checkStrided(name, 'out', a.out, a.rows, qWidth);
  checkPositions(name, a.positions, a.rows);
  checkDistinct(name, { out: a.out.t }, { q: a.q.t, k: a.k.t, v: a.v.t, positions: a.positions });
  const variant = a.variant ?? (list.gpu.handle.adapter.software ? 'thread' : 'workgroup');
  const units = a.rows * a.heads;
  list.dispatch(
    ATTEND(variant),
    [a.positions, a.q.t, a.k.t, a.v.t, a.out.t],
    [
      u32(a.rows),
      u32(a.heads),
      u32(a.kvHeads),
      u32(a.headDim),
      u32(a.q.offset ?? 0),
      u32(a.q.ld),
      u32(a.k.offset ?? 0),
      u32(a.k.ld),
      u32(a.v.offset ?? 0),
      u32(a.v.ld),
      u32(a.out.offset ?? 0),
      u32(a.out.ld),
      u32(a.keyRows),
      f32(a.scale),
      u32(0),
      u32(0),
    ],
    variant === 'thread' ? grid1d(units, THREAD_WG) : grid1d(units, 1),
  );
}

function checkPositions(name: string, positions: Tensor, rows: number): void {
  if (positions.dtype !== 'u32') throw new Error(`${name}: positions (${positions.label}) must be u32`);
  checkTensor(name, 'positions', positions, rows, { ints: true });
}
