/** float64 reference for RoPE (Hugging Face rotate_half) on dense [tokens, heads * headDim] arrays. */

/**
 * Returns the rotated copy of x; sign -1 gives the backward pass (rotation by -angle).
 * The angle is rounded to f32 first, as Hugging Face computes it (pos * invFreq in float32);
 * cos and sin are then exact.
 */
export function ropeRef(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  invFreq: ArrayLike<number>,
  tokens: number,
  heads: number,
  headDim: number,
  rotaryDim = headDim,
  sign: 1 | -1 = 1,
): Float64Array {
  const out = Float64Array.from(x);
  const half = rotaryDim / 2;
  const width = heads * headDim;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = t * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(positions[t] * invFreq[i]);
        const c = Math.cos(angle);
        const s = sign * Math.sin(angle);
        const x1 = x[base + i];
        const x2 = x[base + i + half];
        out[base + i] = x1 * c - x2 * s;
        out[base + i + half] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}
