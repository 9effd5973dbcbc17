/** float64 references for the reduce kernels. */
export function sumRef(x: ArrayLike<number>, n = x.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i];
  return s;
}

export function sumSquaresRef(x: ArrayLike<number>, n = x.length): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

/** Global norm from per-tensor sums of squares, and torch clip_grad_norm_'s multiplier (1 when maxNorm <= 0). */
export function clipFactorRef(sq: ArrayLike<number>, count: number, maxNorm: number): { norm: number; clip: number } {
  const norm = Math.sqrt(sumRef(sq, count));
  // A non-finite norm yields 0: the optimizer skips the step (see reduce.wgsl).
  const clip = !Number.isFinite(norm) ? 0 : maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  return { norm, clip };
}
