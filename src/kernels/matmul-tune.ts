/**
 * Matmul autotune: which kernel and tile size is fastest differs between GPUs (a 128x128 tile wins where
 * registers are plentiful, a 64x64 one on small integrated GPUs), so the adapter itself is asked. At load,
 * every candidate runs a few representative products of each shape class (matmul-plan.ts); the fastest
 * correct one per class becomes the device's plan. The result is cached per adapter (and per kernel
 * revision) so later loads pay nothing.
 *
 * Software adapters are not tuned unless forced: there the barrier-free register kernels are known to win
 * by an order of magnitude, and timing the tiled ones would cost a minute of CPU.
 */
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { Rng } from '../util/random';
import { matmul } from './matmul';
import {
  choiceLabel,
  MATMUL_VARIANTS,
  setMatmulPlan,
  untunedPlan,
  type MatmulChoice,
  type MatmulPlan,
  type MatmulVariant,
  type ShapeClass,
} from './matmul-plan';

/** Bump when a kernel changes: older measurements no longer describe it. */
const REVISION = 5;

export interface TuneShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}

/**
 * What training spends its matmul time on: the projections (forward x·Wᵀ, backward dY·W) and LoRA's
 * factors, over n tokens and features (1024 on a GPU; a forced tune on a software adapter uses 256, where
 * a tiled 1024³ product alone takes seconds).
 */
export function tuneShapes(n: number): Record<ShapeClass, TuneShape[]> {
  return {
    wide: [
      { M: n, N: n, K: n, transB: true },
      { M: n, N: n, K: n },
    ],
    narrow: [
      { M: 4 * n, N: 16, K: n, transB: true }, // x·Aᵀ over 4n tokens
      { M: 16, N: n, K: 4 * n, transA: true }, // dA = dHᵀ·x: K is every token
    ],
  };
}

/** Where tuning results live between loads: localStorage-like, string values. */
export interface TuneCache {
  get(key: string): Promise<string | null | undefined> | string | null | undefined;
  set(key: string, value: string): Promise<void> | void;
}

export interface TuneOptions {
  cache?: TuneCache;
  /** Measure even on a software adapter, or when the cache has a result. */
  force?: boolean;
  shapes?: Record<ShapeClass, TuneShape[]>;
  /** Kernels to measure; each also split along K on the narrow class. */
  candidates?: readonly MatmulVariant[];
  /** Timed trials per candidate and shape (the median counts). */
  trials?: number;
  /** Rough duration of one trial; the repetitions per trial are sized to it. */
  trialMs?: number;
}

export interface TuneResult {
  plan: MatmulPlan;
  source: 'measured' | 'cache' | 'untuned';
  /**
   * Median ms per product, summed over a class's shapes, per candidate (choiceLabel: 'tiled-128',
   * 'tiled+split-k'); null for a candidate that computed a wrong product.
   */
  timings: Record<ShapeClass, Record<string, number | null>>;
  /** Wall time of the tuning itself (0 from the cache). */
  tuneMs: number;
  adapterKey: string;
  /** Why measuring failed (the defaults are then in use). */
  error?: string;
}

/** Per adapter identity (device.ts): names alone may be blank (Firefox) and then every adapter would share one entry. */
export function tuneCacheKey(gpu: Gpu): string {
  return `matmul-tune/${REVISION}/${gpu.handle.adapter.identity}`;
}

/** Tunes (or recalls) the device's matmul plan and installs it. Never throws for a bad cache entry. */
export async function tuneMatmul(gpu: Gpu, o: TuneOptions = {}): Promise<TuneResult> {
  const adapterKey = tuneCacheKey(gpu);
  if (!o.force) {
    const cached = parseCached(await Promise.resolve(o.cache?.get(adapterKey)).catch(() => null));
    if (cached) {
      setMatmulPlan(gpu.device, cached.plan);
      return { ...cached, source: 'cache', tuneMs: 0, adapterKey };
    }
    if (gpu.handle.adapter.software) {
      const plan = untunedPlan(true);
      setMatmulPlan(gpu.device, plan);
      return { plan, source: 'untuned', timings: { wide: {}, narrow: {} }, tuneMs: 0, adapterKey };
    }
  }
  const started = performance.now();
  try {
    const { plan, timings } = await measure(gpu, o);
    setMatmulPlan(gpu.device, plan);
    await Promise.resolve(o.cache?.set(adapterKey, JSON.stringify({ plan, timings }))).catch(() => undefined);
    return { plan, source: 'measured', timings, tuneMs: performance.now() - started, adapterKey };
  } catch (e) {
    // The defaults always work: a failed measurement must not keep the GPU from being used.
    const plan = untunedPlan(gpu.handle.adapter.software);
    setMatmulPlan(gpu.device, plan);
    return {
      plan,
      source: 'untuned',
      timings: { wide: {}, narrow: {} },
      tuneMs: performance.now() - started,
      adapterKey,
      error: (e as Error).message ?? String(e),
    };
  }
}

async function measure(gpu: Gpu, o: TuneOptions): Promise<Pick<TuneResult, 'plan' | 'timings'>> {
  const shapes = o.shapes ?? tuneShapes(gpu.handle.adapter.software ? 256 : 1024);
  const variants = o.candidates ?? MATMUL_VARIANTS;
  const timings: TuneResult['timings'] = { wide: {}, narrow: {} };
  const plan = untunedPlan(gpu.handle.adapter.software);
  for (const cls of ['wide', 'narrow'] as const) {
    // Wide products have tiles enough to fill a GPU; splitting K only pays where there are few.
    const choices: MatmulChoice[] = variants.flatMap((variant) => [
      { variant, splitK: false },
      ...(cls === 'narrow' ? [{ variant, splitK: true }] : []),
    ]);
    const totals = new Map<MatmulChoice, number | null>(choices.map((c) => [c, 0]));
    for (const shape of shapes[cls]) {
      const operands = makeOperands(gpu, shape);
      try {
        for (const choice of choices) {
          if (totals.get(choice) === null) continue;
          const ms = await timeCandidate(gpu, operands, choice, o.trials ?? 3, o.trialMs ?? 10);
          totals.set(choice, ms === null ? null : totals.get(choice)! + ms);
        }
      } finally {
        await gpu.freeTensors([operands.a, operands.b, operands.c]);
      }
    }
    let best = Infinity;
    for (const [choice, ms] of totals) {
      timings[cls][choiceLabel(choice)] = ms;
      if (ms !== null && ms < best) {
        best = ms;
        plan[cls] = choice;
      }
    }
  }
  return { plan, timings };
}

interface Operands {
  shape: TuneShape;
  a: Tensor;
  b: Tensor;
  c: Tensor;
  aData: Float32Array;
  bData: Float32Array;
}

function makeOperands(gpu: Gpu, shape: TuneShape): Operands {
  const rng = new Rng(shape.M * 31 + shape.N * 7 + shape.K);
  const aData = rng.normals(shape.M * shape.K);
  const bData = rng.normals(shape.K * shape.N);
  return {
    shape,
    aData,
    bData,
    a: gpu.tensorFrom(aData, [aData.length], 'tune.A'),
    b: gpu.tensorFrom(bData, [bData.length], 'tune.B'),
    c: gpu.tensor([shape.M * shape.N], 'tune.C'),
  };
}

/** Median ms per product of `variant`, or null when its product is wrong (a fast wrong kernel must not win). */
async function timeCandidate(
  gpu: Gpu,
  x: Operands,
  choice: MatmulChoice,
  trials: number,
  trialMs: number,
): Promise<number | null> {
  const { M, N, K, transA = false, transB = false } = x.shape;
  const lists: CommandList[] = [];
  const record = (reps: number) => {
    const list = gpu.list(`tune ${choiceLabel(choice)}`);
    for (let i = 0; i < reps; i++) {
      matmul(list, {
        a: { t: x.a, ld: transA ? M : K },
        b: { t: x.b, ld: transB ? K : N },
        c: { t: x.c, ld: N },
        M,
        N,
        K,
        transA,
        transB,
        variant: choice.variant,
        splitK: choice.splitK ? 'auto' : 1,
      });
    }
    lists.push(list);
    return list;
  };
  try {
    return await timeLists(gpu, x, record, trials, trialMs);
  } finally {
    for (const l of lists) await l.release();
  }
}

async function timeLists(
  gpu: Gpu,
  x: Operands,
  record: (reps: number) => CommandList,
  trials: number,
  trialMs: number,
): Promise<number | null> {
  const timed = async (list: CommandList) => {
    const t0 = performance.now();
    list.run();
    await gpu.sync();
    return performance.now() - t0;
  };
  const once = record(1);
  await timed(once); // compiles the pipeline and touches the memory
  if (!spotCheck(await gpu.read(x.c), x)) return null;
  const reps = Math.max(1, Math.min(64, Math.round(trialMs / Math.max(await timed(once), 1e-3))));
  const list = reps === 1 ? once : record(reps);
  const times: number[] = [];
  for (let t = 0; t < trials; t++) times.push((await timed(list)) / reps);
  times.sort((p, q) => p - q);
  return times[times.length >> 1];
}

/** 16 entries of C against float64 dot products. */
function spotCheck(c: Float32Array, x: Operands): boolean {
  const { M, N, K, transA = false, transB = false } = x.shape;
  for (let s = 0; s < 16; s++) {
    const i = (s * 7919) % M;
    const j = (s * 104729) % N;
    let want = 0;
    let scale = 0;
    for (let k = 0; k < K; k++) {
      const term = x.aData[transA ? k * M + i : i * K + k] * x.bData[transB ? j * K + k : k * N + j];
      want += term;
      scale += Math.abs(term);
    }
    if (!(Math.abs(c[i * N + j] - want) <= 1e-4 * scale + 1e-6)) return false;
  }
  return true;
}

function parseCached(text: string | null | undefined): Pick<TuneResult, 'plan' | 'timings'> | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Pick<TuneResult, 'plan' | 'timings'>;
    const ok = (c: MatmulChoice | undefined) =>
      MATMUL_VARIANTS.includes(c?.variant as MatmulVariant) && typeof c?.splitK === 'boolean';
    return ok(v.plan?.wide) && ok(v.plan?.narrow) && v.timings ? v : null;
  } catch {
    return null;
  }
}

/** One line for logs: the chosen kernel per class and where the choice came from. */
export function describeTune(r: TuneResult): string {
  const how = r.error
    ? `tuning failed (${r.error}): defaults`
    : r.source === 'measured'
      ? `tuned in ${Math.round(r.tuneMs)} ms`
      : r.source === 'cache'
        ? 'tuned earlier (cached)'
        : 'software adapter: not tuned';
  return `matmul kernels: ${choiceLabel(r.plan.wide)} (wide products), ${choiceLabel(r.plan.narrow)} (narrow) · ${how}`;
}
