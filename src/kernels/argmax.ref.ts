/** float64 reference for row-wise argmax: the first index of each row's maximum (logits are finite). */
export function argmaxRef(x: ArrayLike<number>, rows: number, vocab: number, offset = 0, ld = vocab): Uint32Array {
  const out = new Uint32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = offset + r * ld;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (x[base + i] > x[base + best]) best = i;
    out[r] = best;
  }
  return out;
}
