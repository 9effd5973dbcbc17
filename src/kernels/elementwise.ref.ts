/** float64 references for the elementwise vector ops. */

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => a[i] + b[i]);
}

/** x + alpha * y */
export function addInPlaceRef(x: ArrayLike<number>, y: ArrayLike<number>, n: number, alpha = 1): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => x[i] + alpha * y[i]);
}

export function scaleRef(x: ArrayLike<number>, n: number, alpha: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => x[i] * alpha);
}
