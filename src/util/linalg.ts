/** Small dense float64 linear algebra for initializations (r x r systems; the big products run on the GPU). */

/** The transpose [cols, rows] of a row-major [rows, cols] matrix. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** A·Aᵀ of a row-major [rows, cols] matrix: [rows, rows]. */
export function gramRows(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const g = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += a[i * cols + c] * a[j * cols + c];
      g[i * rows + j] = g[j * rows + i] = s;
    }
  }
  return g;
}

/** Lower-triangular L with L·Lᵀ = M for a symmetric positive-definite [n, n] M; throws when M is not. */
export function cholesky(m: ArrayLike<number>, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = m[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      if (i === j) {
        if (!(s > 0)) throw new Error(`matrix is not positive definite (pivot ${i} is ${s})`);
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j];
      }
    }
  }
  return l;
}

/** Solves L·Lᵀ·x = b in place (b has n entries). */
export function choleskySolveInPlace(l: Float64Array, n: number, b: Float64Array): void {
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * b[k];
    b[i] = s / l[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}

/** ‖s·B·A‖_F for B [out, r], A [r, in], through r x r products: s·sqrt(tr((BᵀB)(AAᵀ))). */
export function lowRankFrobenius(
  b: ArrayLike<number>,
  a: ArrayLike<number>,
  out: number,
  r: number,
  inDim: number,
  s: number,
): number {
  const aat = gramRows(a, r, inDim);
  let trace = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let btb = 0;
      for (let o = 0; o < out; o++) btb += b[o * r + i] * b[o * r + j];
      trace += btb * aat[j * r + i];
    }
  }
  return Math.abs(s) * Math.sqrt(Math.max(0, trace));
}
