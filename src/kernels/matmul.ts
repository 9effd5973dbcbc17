/** Batched strided GEMM: C = alpha * op(A) op(B) + beta * C, every transpose variant. */
import code from '../../shaders/matmul.wgsl?raw';
import type { CommandList, KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';

const source = { name: 'matmul', code };

/** A strided 2-D view into a tensor (optionally a batch of them). */
export interface MatView {
  t: Tensor;
  offset?: number;
  /** Leading dimension: elements between consecutive rows of the stored matrix. */
  ld: number;
  /** Elements between consecutive matrices of a batch. */
  batchStride?: number;
}

export interface MatmulArgs {
  a: MatView;
  b: MatView;
  c: MatView;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  batch?: number;
  alpha?: number;
  /** 0 overwrites C; 1 accumulates into it. */
  beta?: number;
}

function spec(transA: boolean, transB: boolean): KernelSpec {
  return {
    source,
    entry: 'main',
    bindings: ['read', 'read', 'rw'],
    constants: { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0 },
  };
}

export function matmul(list: CommandList, args: MatmulArgs): void {
  const { a, b, c, M, N, K } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const batch = args.batch ?? 1;
  checkView('A', a, transA ? K : M, transA ? M : K, batch);
  checkView('B', b, transB ? N : K, transB ? K : N, batch);
  checkView('C', c, M, N, batch);
  list.dispatch(
    spec(transA, transB),
    [a.t, b.t, c.t],
    [
      u32(M), u32(N), u32(K), u32(batch),
      u32(a.ld), u32(b.ld), u32(c.ld), u32(0),
      u32(a.offset ?? 0), u32(b.offset ?? 0), u32(c.offset ?? 0), u32(0),
      u32(a.batchStride ?? 0), u32(b.batchStride ?? 0), u32(c.batchStride ?? 0), u32(0),
      f32(args.alpha ?? 1), f32(args.beta ?? 0), u32(0), u32(0),
    ],
    [Math.ceil(N / 64), Math.ceil(M / 64), batch],
  );
}

/** Throws unless a rows x cols view (times batch) fits inside its tensor. */
function checkView(name: string, v: MatView, rows: number, cols: number, batch: number): void {
  if (rows === 0 || cols === 0) return;
  if (v.ld < cols) throw new Error(`matmul ${name} (${v.t.label}): leading dimension ${v.ld} < ${cols} columns`);
  const last = (v.offset ?? 0) + (batch - 1) * (v.batchStride ?? 0) + (rows - 1) * v.ld + cols;
  if (last > v.t.size) {
    throw new Error(`matmul ${name} (${v.t.label}): a ${rows}x${cols} view (ld ${v.ld}, batch ${batch}) reaches element ${last} of ${v.t.size}`);
  }
}

/** Row-major dense view helper: the whole tensor as rows x cols. */
export function dense(t: Tensor, cols = t.shape[t.shape.length - 1]): MatView {
  return { t, ld: cols };
}
