/** float64 reference for row-wise softmax cross-entropy; rows whose target is negative or >= vocab are ignored. */
export function crossEntropyRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  rows: number,
  vocab: number,
  gradScale = 1,
): { losses: Float64Array; dlogits: Float64Array } {
  const losses = new Float64Array(rows);
  const dlogits = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const target = targets[r];
    if (target < 0 || target >= vocab) continue;
    const base = r * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[base + j]);
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(logits[base + j] - max);
    losses[r] = Math.log(sum) + max - logits[base + target];
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(logits[base + j] - max) / sum;
      dlogits[base + j] = (p - (j === target ? 1 : 0)) * gradScale;
    }
  }
  return { losses, dlogits };
}
