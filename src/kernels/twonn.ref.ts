/**
 * float64 references for TwoNN (docs/METHODS.md, GeLoRA): brute-force nearest two neighbours from raw points,
 * and the whole estimator written out step by step (the test oracle for the GPU path).
 */

export interface NearestTwo {
  r1: Float64Array;
  r2: Float64Array;
}

/** Distances from each of the n rows of points [n, dim] to its nearest and second-nearest other row. */
export function nearestTwoRef(points: ArrayLike<number>, n: number, dim: number): NearestTwo {
  const r1 = new Float64Array(n).fill(Infinity);
  const r2 = new Float64Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let d2 = 0;
      for (let c = 0; c < dim; c++) {
        const diff = points[i * dim + c] - points[j * dim + c];
        d2 += diff * diff;
      }
      const d = Math.sqrt(d2);
      if (d < r1[i]) {
        r2[i] = r1[i];
        r1[i] = d;
      } else if (d < r2[i]) {
        r2[i] = d;
      }
    }
  }
  return { r1, r2 };
}

/** The rows of points [n, dim] with later exact copies of an earlier row removed (O(n²·dim); tests only). */
export function distinctRowsRef(
  points: ArrayLike<number>,
  n: number,
  dim: number,
): { points: Float64Array; n: number } {
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    const same = (k: number) => {
      for (let c = 0; c < dim; c++) if (points[k * dim + c] !== points[i * dim + c]) return false;
      return true;
    };
    if (!kept.some(same)) kept.push(i);
  }
  const out = new Float64Array(kept.length * dim);
  kept.forEach((k, r) => {
    for (let c = 0; c < dim; c++) out[r * dim + c] = points[k * dim + c];
  });
  return { points: out, n: kept.length };
}

/** TwoNN intrinsic dimension of points [n, dim] in float64, discard fraction 0.1 (skdim's default). */
export function twoNNRef(points: ArrayLike<number>, n: number, dim: number, discard = 0.1): number {
  const distinct = distinctRowsRef(points, n, dim); // step 1 [app]: r1 > 0
  const N = distinct.n;
  const { r1, r2 } = nearestTwoRef(distinct.points, N, dim); // step 1
  const mu = Array.from(r1, (a, i) => r2[i] / a); // step 2
  mu.sort((a, b) => a - b); // step 3
  const kept = Math.floor(N * (1 - discard));
  let sxy = 0;
  let sxx = 0;
  for (let j = 0; j < kept; j++) {
    const x = Math.log(mu[j]); // step 4
    const y = -Math.log(1 - j / N);
    sxy += x * y;
    sxx += x * x;
  }
  return sxy / sxx; // step 5: least squares through the origin
}
