/** float64 references for bias add and bias gradient on dense [rows, cols] arrays. */

export function biasAddRef(y: ArrayLike<number>, bias: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = y[r * cols + c] + bias[c];
  return out;
}

/** Column sums of dy. */
export function biasGradRef(dy: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) d[c] += dy[r * cols + c];
  return d;
}
