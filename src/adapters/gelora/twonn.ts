/**
 * TwoNN intrinsic dimension of a point cloud (docs/METHODS.md, GeLoRA): distinct points, centred, Gram matrix and
 * nearest-two distances on the GPU (O(N²·D)), then the ratio fit on the CPU in float64.
 */
import type { Gpu } from '../../gpu/gpu';
import { matmul } from '../../kernels/matmul';
import { nearestTwo } from '../../kernels/twonn';

/** Fraction of the largest ratios μ = r2/r1 left out of the fit (Facco et al.; skdim's default). */
export const DISCARD_FRACTION = 0.1;
/** The fewest distinct points TwoNN can work with: each needs two other points. */
export const MIN_DISTINCT_POINTS = 3;

export interface IntrinsicDimension {
  dimension: number;
  /** Points whose ratio entered the fit (before the largest 10% are discarded). */
  used: number;
  /** Exact copies of an earlier row, removed before the distances (every copy would have r1 = 0). */
  duplicatesRemoved: number;
  /** Distinct points left out because r1 came out 0 (fp32 cancellation of near-identical points) or non-finite. */
  skipped: number;
}

/** TwoNN estimate for points [n, dim] (row-major). Allocates its GPU buffers per call and frees them. */
export async function estimateIntrinsicDimension(
  gpu: Gpu,
  points: Float32Array,
  n: number,
  dim: number,
): Promise<IntrinsicDimension> {
  if (!Number.isInteger(n) || !Number.isInteger(dim) || n < 0 || dim < 1)
    throw new Error(`TwoNN: invalid point set shape [${n}, ${dim}]`);
  if (points.length !== n * dim) throw new Error(`TwoNN: ${points.length} values for ${n} points of dimension ${dim}`);
  for (let i = 0; i < points.length; i++) {
    if (!Number.isFinite(points[i]))
      throw new Error(`TwoNN: point ${Math.floor(i / dim)} has a non-finite coordinate (${points[i]})`);
  }
  const rows = distinctRows(points, n, dim);
  if (rows.length < MIN_DISTINCT_POINTS) {
    throw new Error(
      `TwoNN needs at least ${MIN_DISTINCT_POINTS} distinct points, got ${rows.length} (of ${n} sampled); use more data.`,
    );
  }
  const r1r2 = await nearestTwoOnGpu(gpu, centredRows(points, rows, dim), rows.length, dim);
  const fit = twoNNFit(r1r2);
  return { dimension: fit.dimension, used: fit.used, duplicatesRemoved: n - rows.length, skipped: fit.skipped };
}

/** Indices of the rows that are not exact copies of an earlier row (value equality, so -0 equals 0). */
export function distinctRows(points: Float32Array, n: number, dim: number): number[] {
  const bits = new Uint32Array(points.buffer, points.byteOffset, points.length);
  const byHash = new Map<number, number[]>();
  const kept: number[] = [];
  const equal = (a: number, b: number) => {
    for (let c = 0; c < dim; c++) if (points[a * dim + c] !== points[b * dim + c]) return false;
    return true;
  };
  for (let i = 0; i < n; i++) {
    let h = 0x811c9dc5; // FNV-1a over the coordinates' bits
    for (let c = 0; c < dim; c++) {
      const k = i * dim + c;
      h = Math.imul(h ^ (points[k] === 0 ? 0 : bits[k]), 0x01000193);
    }
    const same = byHash.get(h);
    if (same?.some((k) => equal(k, i))) continue;
    if (same) same.push(i);
    else byHash.set(h, [i]);
    kept.push(i);
  }
  return kept;
}

/**
 * The chosen rows minus their mean (float64), as f32 rows padded with zero columns to a multiple of 4
 * (the Gram GEMM's vec4 kernel; zero columns change no distance). Centring keeps ‖x‖² small, so the
 * Gram identity ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b loses less to cancellation in fp32.
 */
function centredRows(points: Float32Array, rows: number[], dim: number): { data: Float32Array; width: number } {
  const mean = new Float64Array(dim);
  for (const r of rows) for (let c = 0; c < dim; c++) mean[c] += points[r * dim + c];
  for (let c = 0; c < dim; c++) mean[c] /= rows.length;
  const width = Math.ceil(dim / 4) * 4;
  const data = new Float32Array(rows.length * width);
  rows.forEach((r, i) => {
    for (let c = 0; c < dim; c++) data[i * width + c] = points[r * dim + c] - mean[c];
  });
  return { data, width };
}

async function nearestTwoOnGpu(
  gpu: Gpu,
  x: { data: Float32Array; width: number },
  n: number,
  dim: number,
): Promise<Float32Array> {
  // A preparation phase: nothing here is reused, so its memory goes back as soon as the result is read.
  const mark = gpu.mark();
  try {
    const points = gpu.tensorFrom(x.data, [n, x.width], `twonn.points [${n}x${dim}]`);
    const gram = gpu.tensor([n, n], 'twonn.gram');
    const r1r2 = gpu.tensor([n, 2], 'twonn.r1r2');
    await gpu.runOnce('twonn', (list) => {
      matmul(list, {
        a: { t: points, ld: x.width },
        b: { t: points, ld: x.width },
        c: { t: gram, ld: n },
        M: n,
        N: n,
        K: x.width,
        transB: true,
      });
      nearestTwo(list, { gram, n, r1r2 });
    });
    const out = await gpu.read(r1r2);
    gpu.checkErrors('GeLoRA intrinsic dimension (TwoNN)');
    return out;
  } finally {
    await gpu.freeSince(mark);
  }
}

/**
 * Steps 2–5 of §4.1 on interleaved [r1, r2] pairs: μ = r2/r1 sorted ascending, the largest 10% dropped,
 * x = ln μ, y = −ln(1 − j/N) with N the number of usable points, slope of the fit through the origin.
 * Points with r1 = 0 or a non-finite ratio are skipped (they would put inf/NaN into the fit).
 */
export function twoNNFit(
  r1r2: ArrayLike<number>,
  discard = DISCARD_FRACTION,
): { dimension: number; used: number; skipped: number } {
  const pairs = Math.floor(r1r2.length / 2);
  const mu: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const ratio = r1r2[2 * i + 1] / r1r2[2 * i];
    if (r1r2[2 * i] > 0 && Number.isFinite(ratio)) mu.push(ratio);
  }
  const N = mu.length;
  if (N < MIN_DISTINCT_POINTS) {
    throw new Error(
      `TwoNN: only ${N} of ${pairs} points have a usable nearest-neighbour ratio; need at least ${MIN_DISTINCT_POINTS}.`,
    );
  }
  const sorted = Float64Array.from(mu).sort();
  const kept = Math.floor(N * (1 - discard));
  let sxy = 0;
  let sxx = 0;
  for (let j = 0; j < kept; j++) {
    const x = Math.log(sorted[j]);
    sxy += x * -Math.log(1 - j / N);
    sxx += x * x;
  }
  if (!(sxx > 0))
    throw new Error(
      'TwoNN: every kept point has r2 = r1 (ln μ = 0), so the dimension is undefined (a lattice-like point set?).',
    );
  return { dimension: sxy / sxx, used: N, skipped: pairs - N };
}
