/** float64 references for embedding lookups and their gradients (dense row-major arrays). */

/** out[r] = table[tokens[r]] (+ posTable[positions[r]]); ids outside a table contribute zeros. */
export function embedForwardRef(
  tokens: ArrayLike<number>,
  table: ArrayLike<number>,
  rows: number,
  width: number,
  vocab: number,
  positions?: ArrayLike<number>,
  posTable?: ArrayLike<number>,
  maxPos = 0,
): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) {
      let v = tokens[r] < vocab ? table[tokens[r] * width + c] : 0;
      if (positions && posTable && positions[r] < maxPos) v += posTable[positions[r] * width + c];
      out[r * width + c] = v;
    }
  }
  return out;
}

/** dtable[v] = sum of dout[r] over rows whose id is v (ids >= tableRows skipped). */
export function embedBackwardRef(
  ids: ArrayLike<number>,
  dout: ArrayLike<number>,
  rows: number,
  width: number,
  tableRows: number,
): Float64Array {
  const d = new Float64Array(tableRows * width);
  for (let r = 0; r < rows; r++) {
    if (ids[r] >= tableRows) continue;
    for (let c = 0; c < width; c++) d[ids[r] * width + c] += dout[r * width + c];
  }
  return d;
}
