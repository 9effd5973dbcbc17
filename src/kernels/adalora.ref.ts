/**
 * Float64 references for shaders/adalora.wgsl, written from PEFT's AdaLoRA (tuners/adalora/layer.py and model.py)
 * rather than from the shaders: the SVD-like layer, the orthogonal regularizer and the RankAllocator's steps.
 */

type Vec = ArrayLike<number>;

/** y [rows, out] = s·x·(A ⊙ E)ᵀ·Bᵀ (PEFT SVDLinear.forward without the base layer), s = alpha/(init_r + 1e-5). */
export function adaloraForwardRef(
  x: Vec,
  A: Vec,
  E: Vec,
  B: Vec,
  d: { rows: number; inDim: number; outDim: number; rank: number; scale: number },
): Float64Array {
  const { rows, inDim, outDim, rank: r, scale } = d;
  const y = new Float64Array(rows * outDim);
  const h = new Float64Array(r);
  for (let t = 0; t < rows; t++) {
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let c = 0; c < inDim; c++) acc += x[t * inDim + c] * A[k * inDim + c];
      h[k] = acc * E[k];
    }
    for (let o = 0; o < outDim; o++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += h[k] * B[o * r + k];
      y[t * outDim + o] = scale * acc;
    }
  }
  return y;
}

/** Gradients of <dy, forward> with respect to x, A, E, B (the data gradient, without the regularizer). */
export function adaloraBackwardRef(
  x: Vec,
  A: Vec,
  E: Vec,
  B: Vec,
  dy: Vec,
  d: { rows: number; inDim: number; outDim: number; rank: number; scale: number },
): { dx: Float64Array; dA: Float64Array; dE: Float64Array; dB: Float64Array } {
  const { rows, inDim, outDim, rank: r, scale } = d;
  const dx = new Float64Array(rows * inDim);
  const dA = new Float64Array(r * inDim);
  const dE = new Float64Array(r);
  const dB = new Float64Array(outDim * r);
  const h = new Float64Array(r); // x·Aᵀ
  const dhE = new Float64Array(r); // d(h ⊙ E)
  for (let t = 0; t < rows; t++) {
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let c = 0; c < inDim; c++) acc += x[t * inDim + c] * A[k * inDim + c];
      h[k] = acc;
    }
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let o = 0; o < outDim; o++) {
        const g = scale * dy[t * outDim + o];
        acc += g * B[o * r + k];
        dB[o * r + k] += g * h[k] * E[k];
      }
      dhE[k] = acc;
      dE[k] += acc * h[k];
    }
    for (let k = 0; k < r; k++) {
      const g = dhE[k] * E[k];
      for (let c = 0; c < inDim; c++) {
        dA[k * inDim + c] += g * x[t * inDim + c];
        dx[t * inDim + c] += g * A[k * inDim + c];
      }
    }
  }
  return { dx, dA, dE, dB };
}

/** ‖M·Mᵀ − I‖_F with M = A [r, n], or ‖Bᵀ·B − I‖_F with B [n, r] (transposed = true). */
export function orthNormRef(M: Vec, r: number, n: number, transposed: boolean): number {
  const at = (k: number, c: number) => (transposed ? M[c * r + k] : M[k * n + c]);
  let sq = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let g = 0;
      for (let c = 0; c < n; c++) g += at(i, c) * at(j, c);
      sq += (g - (i === j ? 1 : 0)) ** 2;
    }
  }
  return Math.sqrt(sq);
}

/** weight·∂‖·‖/∂M for orthNormRef: 2·D·M/‖D‖ (in M's own layout); 0 where D = 0. */
export function orthGradRef(M: Vec, r: number, n: number, transposed: boolean, weight: number): Float64Array {
  const at = (k: number, c: number) => (transposed ? M[c * r + k] : M[k * n + c]);
  const D = new Float64Array(r * r);
  let sq = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < r; j++) {
      let g = 0;
      for (let c = 0; c < n; c++) g += at(i, c) * at(j, c);
      D[i * r + j] = g - (i === j ? 1 : 0);
      sq += D[i * r + j] ** 2;
    }
  }
  const norm = Math.sqrt(sq);
  const coef = norm > 0 ? (2 * weight) / norm : 0;
  const out = new Float64Array(r * n);
  for (let k = 0; k < r; k++) {
    for (let c = 0; c < n; c++) {
      let acc = 0;
      for (let j = 0; j < r; j++) acc += D[k * r + j] * at(j, c);
      out[transposed ? c * r + k : k * n + c] = coef * acc;
    }
  }
  return out;
}

/** RankAllocator.update_ipt for one tensor, in place: ema = [exp_avg_ipt | exp_avg_unc], g already clipped. */
export function iptUpdateRef(p: Vec, g: Vec, ema: Float64Array, beta1: number, beta2: number): void {
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const ipt = Math.abs(p[i] * g[i]);
    ema[i] = beta1 * ema[i] + (1 - beta1) * ipt;
    ema[n + i] = beta2 * ema[n + i] + (1 - beta2) * Math.abs(ipt - ema[i]);
  }
}

/**
 * RankAllocator.mask_to_budget's triplet scores of one module: _element_score = exp_avg_ipt·exp_avg_unc; A's is
 * averaged over its row (dim 1), B's over its column (dim 0); _combine_ipt adds E's own.
 */
export function tripletScoresRef(
  emaA: Vec,
  emaB: Vec,
  emaE: Vec,
  d: { rank: number; inDim: number; outDim: number },
): Float64Array {
  const { rank: r, inDim, outDim } = d;
  const na = r * inDim;
  const nb = outDim * r;
  const out = new Float64Array(r);
  for (let k = 0; k < r; k++) {
    let a = 0;
    for (let c = 0; c < inDim; c++) a += emaA[k * inDim + c] * emaA[na + k * inDim + c];
    let b = 0;
    for (let o = 0; o < outDim; o++) b += emaB[o * r + k] * emaB[nb + o * r + k];
    out[k] = emaE[k] * emaE[r + k] + a / inDim + b / outDim;
  }
  return out;
}

/** torch.kthvalue(scores, k) as the threshold, then mask = !(score <= threshold): 1 kept, 0 pruned. */
export function budgetMaskRef(scores: Vec, k: number): Float64Array {
  const out = new Float64Array(scores.length).fill(1);
  if (k <= 0) return out;
  const threshold = Array.from(scores).sort((a, b) => a - b)[k - 1];
  for (let i = 0; i < scores.length; i++) if (scores[i] <= threshold) out[i] = 0;
  return out;
}
