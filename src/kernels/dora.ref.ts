/**
 * float64 references for DoRA on dense arrays: W [out, in] (Linear layout), A [r, in], B [out, r], m [out],
 * x [rows, in], y [rows, out]. y = bias + g ⊙ (x·Wᵀ + s·x·Aᵀ·Bᵀ), g = m / ‖W + s·B·A‖_row, the norm detached.
 */

export interface DoraRefParams {
  inDim: number;
  outDim: number;
  rank: number;
  scale: number;
  W: ArrayLike<number>;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
  m: ArrayLike<number>;
  bias?: ArrayLike<number>;
}

/** ‖W_j‖² per output row. */
export function doraRowNormsSqRef(W: ArrayLike<number>, outDim: number, inDim: number): Float64Array {
  const out = new Float64Array(outDim);
  for (let j = 0; j < outDim; j++) for (let k = 0; k < inDim; k++) out[j] += W[j * inDim + k] ** 2;
  return out;
}

/** n_j = ‖W_j + s·(B·A)_j‖, formed densely. */
export function doraNormRef(p: DoraRefParams): Float64Array {
  const n = new Float64Array(p.outDim);
  for (let j = 0; j < p.outDim; j++) {
    let acc = 0;
    for (let k = 0; k < p.inDim; k++) {
      let v = p.W[j * p.inDim + k];
      for (let r = 0; r < p.rank; r++) v += p.scale * p.B[j * p.rank + r] * p.A[r * p.inDim + k];
      acc += v * v;
    }
    n[j] = Math.sqrt(acc);
  }
  return n;
}

/** z = x·(W + s·B·A)ᵀ [rows, out], the rescaled product before g. */
function dirRef(x: ArrayLike<number>, rows: number, p: DoraRefParams): Float64Array {
  const z = new Float64Array(rows * p.outDim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < p.outDim; j++) {
      let acc = 0;
      for (let k = 0; k < p.inDim; k++) {
        let w = p.W[j * p.inDim + k];
        for (let r = 0; r < p.rank; r++) w += p.scale * p.B[j * p.rank + r] * p.A[r * p.inDim + k];
        acc += x[i * p.inDim + k] * w;
      }
      z[i * p.outDim + j] = acc;
    }
  }
  return z;
}

/** y = bias + (m / n) ⊙ z; `norm` holds n (default: the live norm of W + s·B·A). */
export function doraForwardRef(
  x: ArrayLike<number>,
  rows: number,
  p: DoraRefParams,
  norm?: ArrayLike<number>,
): Float64Array {
  const n = norm ?? doraNormRef(p);
  const z = dirRef(x, rows, p);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < p.outDim; j++) z[i * p.outDim + j] = (p.bias?.[j] ?? 0) + (p.m[j] / n[j]) * z[i * p.outDim + j];
  }
  return z;
}

/**
 * Gradients of <dy, y> with the norm held constant (PEFT detaches it): dz = g ⊙ dy; dm_j = Σ_i dy_ij·z_ij / n_j;
 * dx = dz·(W + s·B·A); dB = s·dzᵀ·(x·Aᵀ); dA = s·(dz·B)ᵀ·x.
 */
export function doraBackwardRef(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  p: DoraRefParams,
): { dx: Float64Array; dA: Float64Array; dB: Float64Array; dm: Float64Array } {
  const { inDim, outDim, rank: R, scale: s } = p;
  const n = doraNormRef(p);
  const z = dirRef(x, rows, p);
  const dz = new Float64Array(rows * outDim);
  const dm = new Float64Array(outDim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < outDim; j++) {
      dz[i * outDim + j] = (p.m[j] / n[j]) * dy[i * outDim + j];
      dm[j] += (dy[i * outDim + j] * z[i * outDim + j]) / n[j];
    }
  }
  const h = new Float64Array(rows * R); // x·Aᵀ
  const dh = new Float64Array(rows * R); // s·dz·B
  for (let i = 0; i < rows; i++) {
    for (let r = 0; r < R; r++) {
      for (let k = 0; k < inDim; k++) h[i * R + r] += x[i * inDim + k] * p.A[r * inDim + k];
      for (let j = 0; j < outDim; j++) dh[i * R + r] += s * dz[i * outDim + j] * p.B[j * R + r];
    }
  }
  const dx = new Float64Array(rows * inDim);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < inDim; k++) {
      let acc = 0;
      for (let j = 0; j < outDim; j++) acc += dz[i * outDim + j] * p.W[j * inDim + k];
      for (let r = 0; r < R; r++) acc += dh[i * R + r] * p.A[r * inDim + k];
      dx[i * inDim + k] = acc;
    }
  }
  const dB = new Float64Array(outDim * R);
  for (let j = 0; j < outDim; j++)
    for (let r = 0; r < R; r++) for (let i = 0; i < rows; i++) dB[j * R + r] += s * dz[i * outDim + j] * h[i * R + r];
  const dA = new Float64Array(R * inDim);
  for (let r = 0; r < R; r++)
    for (let k = 0; k < inDim; k++)
      for (let i = 0; i < rows; i++) dA[r * inDim + k] += dh[i * R + r] * x[i * inDim + k];
  return { dx, dA, dB, dm };
}
