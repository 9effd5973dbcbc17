/** float64 reference of gora.wgsl: per-column importance sums. */

/** w is [out, in] (or [in, out] when conv1d); g is [out, in]. Returns [in, 4]. */
export function importanceColumnsRef(
  w: ArrayLike<number>,
  g: ArrayLike<number>,
  out: number,
  inDim: number,
  conv1d: boolean,
): Float64Array {
  const sums = new Float64Array(inDim * 4);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < inDim; j++) {
      const gv = g[i * inDim + j];
      const prod = (conv1d ? w[j * out + i] : w[i * inDim + j]) * gv;
      sums[4 * j] += Math.abs(prod);
      sums[4 * j + 1] += prod * prod;
      sums[4 * j + 2] += Math.abs(gv);
      sums[4 * j + 3] += gv * gv;
    }
  }
  return sums;
}
