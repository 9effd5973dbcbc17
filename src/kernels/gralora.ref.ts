/**
 * float64 references for GraLoRA (docs/METHODS.md, GraLoRA) on dense row-major arrays: ΔW built two independent ways
 * (block by block, and PEFT's scatter + einsum), forward, backward (§3.3), the shuffle, and the exact
 * conversion to a plain LoRA (§3.6).
 */

export interface GraloraRefParams {
  inDim: number;
  outDim: number;
  k: number;
  /** The GraLoRA part's rank r (PEFT convention); each block has rank r / k. */
  rank: number;
  /** [k, in/k, r] */
  GA: ArrayLike<number>;
  /** [k, r, out/k] */
  GB: ArrayLike<number>;
  hybridRank?: number;
  /** [h, in] */
  Ag?: ArrayLike<number>;
  /** [out, h] */
  Bg?: ArrayLike<number>;
  scale: number;
}

function dims(p: GraloraRefParams) {
  return { bi: p.inDim / p.k, bo: p.outDim / p.k, sr: p.rank / p.k, h: p.hybridRank ?? 0 };
}

/** A_{m,n} [sr, in/k] = (GA[n][:, m·sr:(m+1)·sr])ᵀ (§3.1). */
export function blockA(p: GraloraRefParams, m: number, n: number): Float64Array {
  const { bi, sr } = dims(p);
  const a = new Float64Array(sr * bi);
  for (let c = 0; c < sr; c++) for (let i = 0; i < bi; i++) a[c * bi + i] = p.GA[(n * bi + i) * p.rank + m * sr + c];
  return a;
}

/** B_{m,n} [out/k, sr] = (GB[m][n·sr:(n+1)·sr, :])ᵀ (§3.1). */
export function blockB(p: GraloraRefParams, m: number, n: number): Float64Array {
  const { bo, sr } = dims(p);
  const b = new Float64Array(bo * sr);
  for (let o = 0; o < bo; o++) for (let c = 0; c < sr; c++) b[o * sr + c] = p.GB[(m * p.rank + n * sr + c) * bo + o];
  return b;
}

/** ΔW [out, in] assembled block by block: ΔW_{m,n} = s·B_{m,n}·A_{m,n}, plus the hybrid s·B_g·A_g. */
export function graloraDeltaRef(p: GraloraRefParams): Float64Array {
  const { bi, bo, sr } = dims(p);
  const dw = new Float64Array(p.outDim * p.inDim);
  for (let m = 0; m < p.k; m++) {
    for (let n = 0; n < p.k; n++) {
      const A = blockA(p, m, n);
      const B = blockB(p, m, n);
      for (let o = 0; o < bo; o++) {
        for (let i = 0; i < bi; i++) {
          let acc = 0;
          for (let c = 0; c < sr; c++) acc += B[o * sr + c] * A[c * bi + i];
          dw[(m * bo + o) * p.inDim + n * bi + i] = p.scale * acc;
        }
      }
    }
  }
  addHybridDelta(dw, p);
  return dw;
}

/**
 * ΔW the way PEFT's get_delta_weight builds it: scatter GA into [in, k, r] (zero outside each row's own input
 * block), swap the k x k sr-chunks, contract with GB per output block, transpose.
 */
export function graloraDeltaEinsumRef(p: GraloraRefParams): Float64Array {
  const { inDim, outDim, k, rank } = p;
  const { bi, bo, sr } = dims(p);
  const scattered = new Float64Array(inDim * k * rank); // [in, k, r]
  for (let l = 0; l < inDim; l++) {
    const n = Math.floor(l / bi);
    for (let j = 0; j < rank; j++) scattered[(l * k + n) * rank + j] = p.GA[(n * bi + (l % bi)) * rank + j];
  }
  const permuted = new Float64Array(inDim * k * rank); // view [in, k, k, sr], permute(0, 2, 1, 3)
  for (let l = 0; l < inDim; l++) {
    for (let a = 0; a < k; a++)
      for (let b = 0; b < k; b++)
        for (let c = 0; c < sr; c++) {
          permuted[((l * k + b) * k + a) * sr + c] = scattered[((l * k + a) * k + b) * sr + c];
        }
  }
  const dw = new Float64Array(outDim * inDim);
  for (let l = 0; l < inDim; l++) {
    for (let m = 0; m < k; m++) {
      for (let o = 0; o < bo; o++) {
        let acc = 0; // einsum "ikr, kro -> iko"
        for (let j = 0; j < rank; j++) acc += permuted[(l * k + m) * rank + j] * p.GB[(m * rank + j) * bo + o];
        dw[(m * bo + o) * inDim + l] = p.scale * acc;
      }
    }
  }
  addHybridDelta(dw, p);
  return dw;
}

function addHybridDelta(dw: Float64Array, p: GraloraRefParams): void {
  const { h } = dims(p);
  if (h === 0) return;
  for (let o = 0; o < p.outDim; o++) {
    for (let i = 0; i < p.inDim; i++) {
      let acc = 0;
      for (let q = 0; q < h; q++) acc += p.Bg![o * h + q] * p.Ag![q * p.inDim + i];
      dw[o * p.inDim + i] += p.scale * acc;
    }
  }
}

/** Y [rows, out] = X ΔWᵀ (the adapter's contribution alone). */
export function graloraForwardRef(x: ArrayLike<number>, rows: number, p: GraloraRefParams): Float64Array {
  const dw = graloraDeltaRef(p);
  const y = new Float64Array(rows * p.outDim);
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < p.outDim; o++) {
      let acc = 0;
      for (let i = 0; i < p.inDim; i++) acc += x[t * p.inDim + i] * dw[o * p.inDim + i];
      y[t * p.outDim + o] = acc;
    }
  }
  return y;
}

/** dst_m[t, n·sr + c] = src_n[t, m·sr + c] on [k, rows, rank] arrays. */
export function graloraShuffleRef(src: ArrayLike<number>, rows: number, k: number, rank: number): Float64Array {
  const sr = rank / k;
  const dst = new Float64Array(k * rows * rank);
  for (let m = 0; m < k; m++)
    for (let t = 0; t < rows; t++)
      for (let n = 0; n < k; n++)
        for (let c = 0; c < sr; c++) {
          dst[(m * rows + t) * rank + n * sr + c] = src[(n * rows + t) * rank + m * sr + c];
        }
  return dst;
}

export interface GraloraGradsRef {
  dx: Float64Array; // [rows, in]
  dGA: Float64Array; // [k, in/k, r]
  dGB: Float64Array; // [k, r, out/k]
  dAg: Float64Array; // [h, in]
  dBg: Float64Array; // [out, h]
}

/** §3.3 given G_Y = dL/dY [rows, out], through H, H' and the shuffle (not through ΔW). */
export function graloraBackwardRef(
  x: ArrayLike<number>,
  gy: ArrayLike<number>,
  rows: number,
  p: GraloraRefParams,
): GraloraGradsRef {
  const { inDim, outDim, k, rank, scale: s } = p;
  const { bi, bo, h } = dims(p);
  const H = new Float64Array(k * rows * rank);
  for (let n = 0; n < k; n++)
    for (let t = 0; t < rows; t++)
      for (let j = 0; j < rank; j++) {
        let acc = 0;
        for (let i = 0; i < bi; i++) acc += x[t * inDim + n * bi + i] * p.GA[(n * bi + i) * rank + j];
        H[(n * rows + t) * rank + j] = acc;
      }
  const Hs = graloraShuffleRef(H, rows, k, rank);
  const dGB = new Float64Array(k * rank * bo);
  const dHs = new Float64Array(k * rows * rank);
  for (let m = 0; m < k; m++) {
    for (let j = 0; j < rank; j++)
      for (let o = 0; o < bo; o++) {
        let acc = 0;
        for (let t = 0; t < rows; t++) acc += Hs[(m * rows + t) * rank + j] * gy[t * outDim + m * bo + o];
        dGB[(m * rank + j) * bo + o] = s * acc;
      }
    for (let t = 0; t < rows; t++)
      for (let j = 0; j < rank; j++) {
        let acc = 0;
        for (let o = 0; o < bo; o++) acc += gy[t * outDim + m * bo + o] * p.GB[(m * rank + j) * bo + o];
        dHs[(m * rows + t) * rank + j] = s * acc;
      }
  }
  const dH = graloraShuffleRef(dHs, rows, k, rank);
  const dGA = new Float64Array(k * bi * rank);
  const dx = new Float64Array(rows * inDim);
  for (let n = 0; n < k; n++) {
    for (let i = 0; i < bi; i++)
      for (let j = 0; j < rank; j++) {
        let acc = 0;
        for (let t = 0; t < rows; t++) acc += x[t * inDim + n * bi + i] * dH[(n * rows + t) * rank + j];
        dGA[(n * bi + i) * rank + j] = acc;
      }
    for (let t = 0; t < rows; t++)
      for (let i = 0; i < bi; i++) {
        let acc = 0;
        for (let j = 0; j < rank; j++) acc += dH[(n * rows + t) * rank + j] * p.GA[(n * bi + i) * rank + j];
        dx[t * inDim + n * bi + i] = acc;
      }
  }
  // Hybrid: ordinary LoRA gradients with the same s.
  const dAg = new Float64Array(h * inDim);
  const dBg = new Float64Array(outDim * h);
  if (h > 0) {
    const Hg = new Float64Array(rows * h);
    const dHg = new Float64Array(rows * h);
    for (let t = 0; t < rows; t++)
      for (let q = 0; q < h; q++) {
        let a = 0;
        for (let i = 0; i < inDim; i++) a += x[t * inDim + i] * p.Ag![q * inDim + i];
        Hg[t * h + q] = a;
        let b = 0;
        for (let o = 0; o < outDim; o++) b += gy[t * outDim + o] * p.Bg![o * h + q];
        dHg[t * h + q] = s * b;
      }
    for (let o = 0; o < outDim; o++)
      for (let q = 0; q < h; q++) {
        let acc = 0;
        for (let t = 0; t < rows; t++) acc += gy[t * outDim + o] * Hg[t * h + q];
        dBg[o * h + q] = s * acc;
      }
    for (let q = 0; q < h; q++)
      for (let i = 0; i < inDim; i++) {
        let acc = 0;
        for (let t = 0; t < rows; t++) acc += dHg[t * h + q] * x[t * inDim + i];
        dAg[q * inDim + i] = acc;
      }
    for (let t = 0; t < rows; t++)
      for (let i = 0; i < inDim; i++) {
        let acc = 0;
        for (let q = 0; q < h; q++) acc += dHg[t * h + q] * p.Ag![q * inDim + i];
        dx[t * inDim + i] += acc;
      }
  }
  return { dx, dGA, dGB, dAg, dBg };
}

/**
 * §3.6: the plain LoRA of rank R = k·r + h with B_L·A_L = ΔW (scale 1: s is folded into B_L).
 * A_L is block-diagonal in GA[n]ᵀ; B_L places GB[m]'s n-chunk at columns n·r + m·sr.
 */
export function graloraToLoraRef(p: GraloraRefParams): { rank: number; A: Float64Array; B: Float64Array } {
  const { inDim, outDim, k, rank: r } = p;
  const { bi, bo, sr, h } = dims(p);
  const R = k * r + h;
  const A = new Float64Array(R * inDim);
  const B = new Float64Array(outDim * R);
  for (let n = 0; n < k; n++)
    for (let i = 0; i < bi; i++)
      for (let rho = 0; rho < r; rho++) {
        A[(n * r + rho) * inDim + n * bi + i] = p.GA[(n * bi + i) * r + rho];
      }
  for (let m = 0; m < k; m++)
    for (let n = 0; n < k; n++)
      for (let c = 0; c < sr; c++)
        for (let o = 0; o < bo; o++) {
          B[(m * bo + o) * R + n * r + m * sr + c] = p.scale * p.GB[(m * r + n * sr + c) * bo + o];
        }
  for (let q = 0; q < h; q++) {
    for (let i = 0; i < inDim; i++) A[(k * r + q) * inDim + i] = p.Ag![q * inDim + i];
    for (let o = 0; o < outDim; o++) B[o * R + k * r + q] = p.scale * p.Bg![o * h + q];
  }
  return { rank: R, A, B };
}
