/**
 * GraLoRA's k x k block adapter (docs/METHODS.md, GraLoRA) as two batched GEMMs around one shuffle, whatever k:
 * the k input blocks of x are one batched view (batch stride in/k, the row stride of x), and so are the k
 * output blocks of y. Never k² dispatches.
 */
import code from '../../shaders/gralora.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { matmul, type MatView } from './matmul';
import { checkCount, checkDistinct, checkStrided, checkTensor, type StridedView } from './views';

const source = { name: 'gralora', code };
const WG = 256;
const SHUFFLE: KernelSpec = { source, entry: 'shuffle', bindings: ['read', 'rw'] };

export interface GraloraShuffleArgs {
  /** [k, rows, rank], batch n major. */
  src: Tensor;
  /** [k, rows, rank], batch m major. */
  dst: Tensor;
  rows: number;
  k: number;
  rank: number;
}

/** dst_m[t, n·sr + c] = src_n[t, m·sr + c] with sr = rank / k. An involution: it also maps dH' back to dH. */
export function graloraShuffle(list: CommandList, a: GraloraShuffleArgs): void {
  const name = 'graloraShuffle';
  checkCount(name, 'rows', a.rows);
  checkSplit(name, a.k, 'rank', a.rank);
  const n = a.k * a.rows * a.rank;
  checkTensor(name, 'src', a.src, n, { ints: false });
  checkTensor(name, 'dst', a.dst, n, { ints: false });
  checkDistinct(name, { dst: a.dst }, { src: a.src });
  list.dispatch(SHUFFLE, [a.src, a.dst], [u32(a.rows), u32(a.k), u32(a.rank), u32(a.rank / a.k)], grid1d(n, WG));
}

/** Shape and weights shared by the forward and backward recordings. */
export interface GraloraBlocks {
  rows: number;
  inDim: number;
  outDim: number;
  k: number;
  /** PEFT r: the GraLoRA part's rank (each block gets rank / k). */
  rank: number;
  scale: number;
  /** [k, in/k, rank] */
  GA: Tensor;
  /** [k, rank, out/k] */
  GB: Tensor;
}

export interface GraloraForwardArgs extends GraloraBlocks {
  /** [rows, in] at offset, rows ld apart (may be a column slice of a wider buffer). */
  x: StridedView;
  /** [rows, out]; accumulated into. */
  y: StridedView;
  /** H [k, rows, rank] scratch; not needed when k = 1 (the shuffle is the identity there). */
  h?: Tensor;
  /** H' [k, rows, rank]: written here and read by the backward pass. */
  hShuffled: Tensor;
}

/** y += s · Σ blocks: H_n = X_n·GA[n]; H' = shuffle(H); Y_m += s·H'_m·GB[m]. */
export function graloraForward(list: CommandList, a: GraloraForwardArgs): void {
  const name = 'graloraForward';
  checkBlocks(name, a);
  checkStrided(name, 'x', a.x, a.rows, a.inDim);
  checkStrided(name, 'y', a.y, a.rows, a.outDim);
  const h = unshuffledSide(name, a, { name: 'h', t: a.h }, { name: 'hShuffled', t: a.hShuffled });
  const { rows, k, rank } = a;
  const bi = a.inDim / k;
  const bo = a.outDim / k;
  matmul(list, {
    a: blocksOf(a.x, bi),
    b: gaView(a.GA, bi, rank),
    c: planes(h, rows, rank),
    M: rows,
    N: rank,
    K: bi,
    batch: k,
  });
  if (k > 1) graloraShuffle(list, { src: h, dst: a.hShuffled, rows, k, rank });
  matmul(list, {
    a: planes(a.hShuffled, rows, rank),
    b: gbView(a.GB, bo, rank),
    c: blocksOf(a.y, bo),
    M: rows,
    N: bo,
    K: rank,
    batch: k,
    alpha: a.scale,
    beta: 1,
  });
}

export interface GraloraBackwardArgs extends GraloraBlocks {
  x: StridedView;
  dy: StridedView;
  /** Accumulated into. */
  dx: StridedView;
  /** H' saved by the forward pass. */
  hShuffled: Tensor;
  /** dH' [k, rows, rank] scratch. */
  dhShuffled: Tensor;
  /** dH [k, rows, rank] scratch; not needed when k = 1. */
  dh?: Tensor;
  /** Overwritten: [k, in/k, rank] and [k, rank, out/k]. */
  dGA: Tensor;
  dGB: Tensor;
}

/** §3.3: dGB[m] = s·H'_mᵀ·dY_m; dH'_m = s·dY_m·GB[m]ᵀ; dH = shuffle(dH'); dGA[n] = X_nᵀ·dH_n; dX_n += dH_n·GA[n]ᵀ. */
export function graloraBackward(list: CommandList, a: GraloraBackwardArgs): void {
  const name = 'graloraBackward';
  checkBlocks(name, a);
  checkStrided(name, 'x', a.x, a.rows, a.inDim);
  checkStrided(name, 'dy', a.dy, a.rows, a.outDim);
  checkStrided(name, 'dx', a.dx, a.rows, a.inDim);
  const plane = a.k * a.rows * a.rank;
  checkTensor(name, 'hShuffled', a.hShuffled, plane, { ints: false });
  checkTensor(name, 'dGA', a.dGA, a.inDim * a.rank, { ints: false });
  checkTensor(name, 'dGB', a.dGB, a.rank * a.outDim, { ints: false });
  const dh = unshuffledSide(name, a, { name: 'dh', t: a.dh }, { name: 'dhShuffled', t: a.dhShuffled });
  const { rows, k, rank, scale } = a;
  const bi = a.inDim / k;
  const bo = a.outDim / k;
  const dyBlocks = blocksOf(a.dy, bo);
  matmul(list, {
    a: planes(a.hShuffled, rows, rank),
    b: dyBlocks,
    c: gbView(a.dGB, bo, rank),
    M: rank,
    N: bo,
    K: rows,
    transA: true,
    batch: k,
    alpha: scale,
  });
  matmul(list, {
    a: dyBlocks,
    b: gbView(a.GB, bo, rank),
    c: planes(a.dhShuffled, rows, rank),
    M: rows,
    N: rank,
    K: bo,
    transB: true,
    batch: k,
    alpha: scale,
  });
  if (k > 1) graloraShuffle(list, { src: a.dhShuffled, dst: dh, rows, k, rank });
  matmul(list, {
    a: blocksOf(a.x, bi),
    b: planes(dh, rows, rank),
    c: gaView(a.dGA, bi, rank),
    M: bi,
    N: rank,
    K: rows,
    transA: true,
    batch: k,
  });
  matmul(list, {
    a: planes(dh, rows, rank),
    b: gaView(a.GA, bi, rank),
    c: blocksOf(a.dx, bi),
    M: rows,
    N: bi,
    K: rank,
    transB: true,
    batch: k,
    beta: 1,
  });
}

/** The k column blocks of a strided [rows, k·width] matrix as one batch: block j starts j·width further on. */
function blocksOf(v: StridedView, width: number): MatView {
  return { t: v.t, offset: v.offset ?? 0, ld: v.ld, batchStride: width };
}

/** k dense [rows, rank] planes one after another. */
function planes(t: Tensor, rows: number, rank: number): MatView {
  return { t, ld: rank, batchStride: rows * rank };
}

const gaView = (t: Tensor, bi: number, rank: number): MatView => ({ t, ld: rank, batchStride: bi * rank });
const gbView = (t: Tensor, bo: number, rank: number): MatView => ({ t, ld: bo, batchStride: rank * bo });

/** k is a positive integer and `value` (a count) splits into k equal parts. */
function checkSplit(kernel: string, k: number, what: string, value: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${kernel}: k must be an integer >= 1, got ${k}`);
  checkCount(kernel, what, value);
  if (value % k !== 0) throw new Error(`${kernel}: ${what} ${value} is not divisible by k = ${k}`);
}

function checkBlocks(kernel: string, a: GraloraBlocks): void {
  checkCount(kernel, 'rows', a.rows);
  checkSplit(kernel, a.k, 'inDim', a.inDim);
  checkSplit(kernel, a.k, 'outDim', a.outDim);
  checkSplit(kernel, a.k, 'rank', a.rank);
  checkTensor(kernel, 'GA', a.GA, a.inDim * a.rank, { ints: false });
  checkTensor(kernel, 'GB', a.GB, a.rank * a.outDim, { ints: false });
}

interface Scratch {
  name: string;
  t: Tensor | undefined;
}

/**
 * Checks a [k, rows, rank] scratch pair and returns where the unshuffled side lives: its own tensor when
 * k > 1, else the shuffled tensor itself (k = 1 has nothing to shuffle).
 */
function unshuffledSide(
  kernel: string,
  a: GraloraBlocks,
  plain: Scratch,
  shuffled: { name: string; t: Tensor },
): Tensor {
  const n = a.k * a.rows * a.rank;
  checkTensor(kernel, shuffled.name, shuffled.t, n, { ints: false });
  if (a.k === 1) return shuffled.t;
  if (!plain.t) throw new Error(`${kernel}: ${plain.name} scratch is required when k > 1`);
  checkTensor(kernel, plain.name, plain.t, n, { ints: false });
  checkDistinct(kernel, { [plain.name]: plain.t }, { [shuffled.name]: shuffled.t });
  return plain.t;
}
