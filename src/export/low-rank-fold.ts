/**
 * Adapter updates folded into a weight in float64, on W as nn.Linear holds it ([out, in], row-major; GPT-2's Conv1D
 * weights are transposed to this before and back after, merge.ts): what PEFT's merge computes for each method.
 */

/** scale · B·diag(E)·A: B [out, rank], A [rank, in], E (AdaLoRA's Λ) [rank] or none. */
export interface LowRankUpdate {
  rank: number;
  scale: number;
  B: ArrayLike<number>;
  A: ArrayLike<number>;
  E?: ArrayLike<number>;
}

/** w += scale · B·diag(E)·A (LoRA, rsLoRA, GraLoRA as its equivalent LoRA, AdaLoRA, PiSSA's residual). */
export function addLowRank(w: Float64Array, out: number, inDim: number, u: LowRankUpdate): void {
  const { rank, scale, B, A, E } = u;
  for (let o = 0; o < out; o++) {
    const row = o * inDim;
    for (let k = 0; k < rank; k++) {
      const c = scale * B[o * rank + k] * (E ? E[k] : 1);
      // GraLoRA's equivalent B is mostly zeros (block structure).
      if (c === 0) continue;
      const a = k * inDim;
      for (let i = 0; i < inDim; i++) w[row + i] += c * A[a + i];
    }
  }
}

/**
 * DoRA (PEFT's dora.py merge): V = W + s·B·A, then each output row of V times m[o] / ‖V[o]‖. PEFT takes the norm
 * over the output-feature axis of the [out, in] weight also for Conv1D (fan_in_fan_out), so the same holds here.
 */
export function applyDora(w: Float64Array, out: number, inDim: number, u: LowRankUpdate, m: ArrayLike<number>): void {
  addLowRank(w, out, inDim, u);
  for (let o = 0; o < out; o++) {
    const row = o * inDim;
    let squares = 0;
    for (let i = 0; i < inDim; i++) squares += w[row + i] * w[row + i];
    const g = m[o] / Math.sqrt(squares);
    for (let i = 0; i < inDim; i++) w[row + i] *= g;
  }
}
