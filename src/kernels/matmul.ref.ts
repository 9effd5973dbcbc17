/** float64 reference for matmul: C = alpha * op(A) op(B) + beta * C on dense row-major arrays. */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  c: ArrayLike<number> | null,
  M: number,
  N: number,
  K: number,
  opts: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
): Float64Array {
  const out = new Float64Array(M * N);
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = opts.transA ? a[k * M + m] : a[m * K + k];
        const bv = opts.transB ? b[n * K + k] : b[k * N + n];
        s += av * bv;
      }
      out[m * N + n] = alpha * s + (beta !== 0 && c ? beta * c[m * N + n] : 0);
    }
  }
  return out;
}
