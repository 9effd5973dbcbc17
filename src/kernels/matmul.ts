/**
 * Batched strided GEMM: C = alpha * op(A) op(B) + beta * C, every transpose variant.
 *
 * Two kernels compute the same product: 'tiled*' (shared-memory tiles with barriers, for real GPUs, in three
 * tile sizes, with scalar or vec4 register blocks and scalar or prefetched vec4 global loads) and 'register' (barrier-free 16x16 register blocks, for CPU Vulkan drivers such as SwiftShader,
 * where a workgroup barrier costs a coroutine switch per thread). 'register-vec4' is the register kernel
 * with vec4 loads, for 4-aligned views. By default the device's plan decides (matmul-plan.ts): the
 * autotuned choice per product shape where one was made at load, else register kernels on software
 * adapters and the 64x64 tile on hardware.
 *
 * B may be a frozen weight stored as packed f16/bf16 (every product with a base weight has it as B):
 * the kernel then reads it through weight-storage.ts's readers and accumulates in f32.
 */
import code from '../../shaders/matmul.wgsl?raw';
import type { CommandList, KernelSpec } from '../gpu/gpu';
import { f32, u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkWeight, weightSource, type WeightFormat } from './weight-storage';
import { matmulPlanOf, needsAlignment, plannedKernel, type MatmulVariant } from './matmul-plan';

export type { MatmulVariant } from './matmul-plan';

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
  /** Which kernel runs; defaults to the device's plan (see the file comment). */
  variant?: MatmulVariant;
  /**
   * Slices of K computed in parallel into list scratch and summed by a second dispatch (1: no split;
   * 'auto': splitCount() sizes it to fill the GPU). Defaults to the plan's choice.
   */
  splitK?: number | 'auto';
}

/**
 * Output tile (rows BM, columns BN), depth BK and entry point of each tiled kernel; 16x16 threads in every one.
 * main_v4 holds its register block as vec4s (BM and BN multiples of 64); main_g4 is main_v4 with vec4 global
 * loads fetched a tile ahead (4-aligned views only) into double-buffered shared memory (`stages`: 16 KiB at most,
 * WebGPU's guaranteed workgroup storage).
 */
const TILES = {
  tiled: { BM: 64, BN: 64, BK: 16, entry: 'main' },
  'tiled-128': { BM: 128, BN: 128, BK: 8, entry: 'main' },
  'tiled-128x64': { BM: 128, BN: 64, BK: 8, entry: 'main' },
  'tiled-v4': { BM: 64, BN: 64, BK: 16, entry: 'main_v4' },
  'tiled-128-v4': { BM: 128, BN: 128, BK: 8, entry: 'main_v4' },
  'tiled-g4': { BM: 64, BN: 64, BK: 16, entry: 'main_g4', stages: 2 },
  'tiled-128-g4': { BM: 128, BN: 128, BK: 8, entry: 'main_g4', stages: 2 },
  'tiled-128x64-g4': { BM: 128, BN: 64, BK: 8, entry: 'main_g4', stages: 2 },
} as const;
type TiledVariant = keyof typeof TILES;
const BLOCK = 16; // rows and columns of C per thread in the register kernels
const REG_SIDE = 4; // at most 4 x 4 threads per workgroup there: small workgroups spread over CPU cores

// Split-K sizing: enough workgroups to fill a large GPU, K slices long enough that the partial sums'
// extra traffic stays small, and a bounded scratch (the partials of one product).
const SPLIT_TARGET_WORKGROUPS = 256;
const SPLIT_MIN_K = 256;
const SPLIT_MAX = 32;
const SPLIT_SCRATCH_MAX = 4 << 20; // elements (16 MiB)
const K_ALIGN = 16; // slices start on a multiple of every kernel's K step (BK, the vec4 loads)

const tileSources = new Map<TiledVariant, KernelSpec['source']>();

/** matmul.wgsl with its `tile:` block set to the variant's tile (the file as written is the 64x64 one). */
function tileSource(variant: TiledVariant): KernelSpec['source'] {
  let out = tileSources.get(variant);
  if (!out) {
    const tile = TILES[variant];
    const { BM, BN, BK } = tile;
    const stages = 'stages' in tile ? tile.stages : 1;
    const block = `// tile:begin\nconst BM = ${BM}u;\nconst BN = ${BN}u;\nconst BK = ${BK}u;\nconst STAGES = ${stages}u;\n// tile:end`;
    const code = source.code.replace(/\/\/ tile:begin\n[\s\S]*?\/\/ tile:end/, block);
    if (!/\/\/ tile:begin/.test(source.code)) throw new Error('matmul.wgsl has no tile block');
    const name = `${source.name}@${BM}x${BN}x${BK}${stages > 1 ? `x${stages}` : ''}`;
    out = BM === 64 && BN === 64 && BK === 16 && stages === 1 ? source : { name, code };
    tileSources.set(variant, out);
  }
  return out;
}

function spec(
  entry: string,
  bFormat: WeightFormat,
  transA: boolean,
  transB: boolean,
  extra: Record<string, number> = {},
  tiled: TiledVariant = 'tiled',
): KernelSpec {
  return {
    source: weightSource(tileSource(tiled), bFormat),
    entry,
    bindings: ['read', 'read', 'rw'],
    constants: { TRANS_A: transA ? 1 : 0, TRANS_B: transB ? 1 : 0, ...extra },
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
  for (const [name, v] of [
    ['A', a],
    ['C', c],
  ] as const) {
    if (v.t.dtype !== 'f32')
      throw new Error(
        `matmul ${name} (${v.t.label}): expected an f32 tensor, got ${v.t.dtype} (only B may hold 16-bit weights)`,
      );
  }
  checkWeight('matmul', 'B', b.t);
  const aligned = vec4Aligned(args, batch);
  const planned = plannedKernel(list.gpu.device, list.gpu.handle.adapter.software, M, N, aligned);
  const variant = args.variant ?? planned.variant;
  if (needsAlignment(variant) && !aligned) {
    throw new Error(
      `matmul (${a.t.label} x ${b.t.label}): the ${variant} kernel needs K, every leading dimension, offset and batch stride of A and B to be multiples of 4`,
    );
  }
  const kernel = kernelFor(variant, M, N, b.t, transA, transB);
  const tiles = kernel.grid[0] * kernel.grid[1] * batch;
  const wanted = args.splitK ?? (planned.splitK ? 'auto' : 1);
  // split_sum's grid has a row of C per workgroup in y, within the per-dimension limit.
  const splits =
    M > 65535
      ? 1
      : Math.max(1, Math.min(wanted === 'auto' ? splitCount(tiles, M, N, K, batch) : wanted, Math.ceil(K / K_ALIGN)));
  const kChunk = splits > 1 ? Math.ceil(Math.ceil(K / splits) / K_ALIGN) * K_ALIGN : K;
  const slices = splits > 1 ? Math.ceil(K / kChunk) : 1;
  const params = (o: {
    splits: number;
    kChunk: number;
    c: MatView;
    strideSplit: number;
    alpha: number;
    beta: number;
  }) => [
    u32(M),
    u32(N),
    u32(K),
    u32(batch),
    u32(a.ld),
    u32(b.ld),
    u32(o.c.ld),
    u32(o.splits),
    u32(a.offset ?? 0),
    u32(b.offset ?? 0),
    u32(o.c.offset ?? 0),
    u32(o.kChunk),
    u32(a.batchStride ?? 0),
    u32(b.batchStride ?? 0),
    u32(o.c.batchStride ?? 0),
    u32(o.strideSplit),
    f32(o.alpha),
    f32(o.beta),
    u32(0),
    u32(0),
  ];
  const alpha = args.alpha ?? 1;
  const beta = args.beta ?? 0;
  if (slices === 1) {
    list.dispatch(kernel.spec, [a.t, b.t, c.t], params({ splits: 1, kChunk, c, strideSplit: 0, alpha, beta }), [
      kernel.grid[0],
      kernel.grid[1],
      batch,
    ]);
    return;
  }
  // Partial products into scratch laid out [batch][slice][M][N], then C = alpha * sum + beta * C. Sized splits
  // take the list's whole budget at once, so a list holds one scratch of known size (listScratchBytes).
  const need = batch * slices * M * N;
  const scratch = list.scratch(wanted === 'auto' ? Math.max(need, SPLIT_SCRATCH_MAX) : need);
  const partials: MatView = { t: scratch, ld: N, batchStride: slices * M * N };
  list.dispatch(
    kernel.spec,
    [a.t, b.t, scratch],
    params({ splits: slices, kChunk, c: partials, strideSplit: M * N, alpha: 1, beta: 0 }),
    [kernel.grid[0], kernel.grid[1], batch * slices],
  );
  list.dispatch(
    spec('split_sum', b.t, false, false),
    [scratch, b.t, c.t],
    params({ splits: slices, kChunk, c, strideSplit: M * N, alpha, beta }),
    [Math.ceil(N / 64), M, batch],
  );
}

/** The pipeline and (x, y) grid of one product's kernel. */
function kernelFor(
  variant: MatmulVariant,
  M: number,
  N: number,
  bFormat: WeightFormat,
  transA: boolean,
  transB: boolean,
): { spec: KernelSpec; grid: [number, number] } {
  if (variant in TILES) {
    const tile = TILES[variant as TiledVariant];
    return {
      spec: spec(tile.entry, bFormat, transA, transB, {}, variant as TiledVariant),
      grid: [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM)],
    };
  }
  // Shape the workgroup to C: a narrow output (LoRA's rank-r products) gets one column of threads, so
  // no workgroup is mostly idle lanes.
  const wx = Math.min(REG_SIDE, pow2AtLeast(Math.ceil(N / BLOCK)));
  const wy = Math.min(REG_SIDE, pow2AtLeast(Math.ceil(M / BLOCK)));
  return {
    spec: spec(variant === 'register-vec4' ? 'reg_vec4' : 'reg', bFormat, transA, transB, { WX: wx, WY: wy }),
    grid: [Math.ceil(N / (BLOCK * wx)), Math.ceil(M / (BLOCK * wy))],
  };
}

/**
 * Bytes of split-K partials one command list holds under the device's plan: the whole budget once any of
 * its products splits, nothing where the plan splits no class. (Memory estimates add it per recorded list.)
 */
export function listScratchBytes(device: GPUDevice): number {
  const plan = matmulPlanOf(device);
  return plan && (plan.wide.splitK || plan.narrow.splitK) ? SPLIT_SCRATCH_MAX * 4 : 0;
}

/** How many K slices fill the GPU with a product of `tiles` workgroups (1: not worth splitting). */
export function splitCount(tiles: number, M: number, N: number, K: number, batch: number): number {
  const s = Math.min(
    SPLIT_MAX,
    Math.ceil(SPLIT_TARGET_WORKGROUPS / tiles),
    Math.floor(K / SPLIT_MIN_K),
    Math.floor(SPLIT_SCRATCH_MAX / (M * N * batch)),
  );
  return Math.max(1, s);
}

/** True when reg_vec4 may read A and B as vec4s: K and every element offset of A and B are multiples of 4. */
function vec4Aligned(args: MatmulArgs, batch: number): boolean {
  const four = (x: number | undefined) => (x ?? 0) % 4 === 0;
  const view = (v: MatView) => four(v.ld) && four(v.offset) && (batch === 1 || four(v.batchStride));
  return four(args.K) && view(args.a) && view(args.b);
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Throws unless a rows x cols view (times batch) fits inside its tensor. */
function checkView(name: string, v: MatView, rows: number, cols: number, batch: number): void {
  if (rows === 0 || cols === 0) return;
  if (v.ld < cols) throw new Error(`matmul ${name} (${v.t.label}): leading dimension ${v.ld} < ${cols} columns`);
  const last = (v.offset ?? 0) + (batch - 1) * (v.batchStride ?? 0) + (rows - 1) * v.ld + cols;
  if (last > v.t.size) {
    throw new Error(
      `matmul ${name} (${v.t.label}): a ${rows}x${cols} view (ld ${v.ld}, batch ${batch}) reaches element ${last} of ${v.t.size}`,
    );
  }
}

/** Row-major dense view helper: the whole tensor as rows x cols. */
export function dense(t: Tensor, cols = t.shape[t.shape.length - 1]): MatView {
  return { t, ld: cols };
}
