/** float64 references for RMSNorm and LayerNorm on dense row-major [rows, width] arrays. */
type Arr = ArrayLike<number>;

export function rmsnormForwardRef(
  x: Arr,
  weight: Arr,
  rows: number,
  width: number,
  eps: number,
): { out: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * width);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < width; c++) ss += x[r * width + c] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / width + eps);
    for (let c = 0; c < width; c++) out[r * width + c] = x[r * width + c] * rstd[r] * weight[c];
  }
  return { out, rstd };
}

/** dx of rmsnorm; rstd as the forward returns it. */
export function rmsnormBackwardRef(
  dout: Arr,
  x: Arr,
  weight: Arr,
  rstd: Arr,
  rows: number,
  width: number,
): Float64Array {
  const dx = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let c = 0; c < width; c++) dot += dout[r * width + c] * weight[c] * x[r * width + c];
    const s = rstd[r];
    for (let c = 0; c < width; c++) {
      dx[r * width + c] = s * dout[r * width + c] * weight[c] - (s * s * s * x[r * width + c] * dot) / width;
    }
  }
  return dx;
}

export function rmsnormWeightGradRef(dout: Arr, x: Arr, rstd: Arr, rows: number, width: number): Float64Array {
  const dw = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) dw[c] += dout[r * width + c] * x[r * width + c] * rstd[r];
  }
  return dw;
}

export function layernormForwardRef(
  x: Arr,
  weight: Arr,
  bias: Arr,
  rows: number,
  width: number,
  eps: number,
): { out: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const out = new Float64Array(rows * width);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < width; c++) s += x[r * width + c];
    mean[r] = s / width;
    let v = 0;
    for (let c = 0; c < width; c++) v += (x[r * width + c] - mean[r]) ** 2;
    rstd[r] = 1 / Math.sqrt(v / width + eps);
    for (let c = 0; c < width; c++) out[r * width + c] = (x[r * width + c] - mean[r]) * rstd[r] * weight[c] + bias[c];
  }
  return { out, mean, rstd };
}

export function layernormBackwardRef(
  dout: Arr,
  x: Arr,
  weight: Arr,
  mean: Arr,
  rstd: Arr,
  rows: number,
  width: number,
): Float64Array {
  const dx = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < width; c++) {
      const g = dout[r * width + c] * weight[c];
      sg += g;
      sgx += g * (x[r * width + c] - mean[r]) * rstd[r];
    }
    for (let c = 0; c < width; c++) {
      const xhat = (x[r * width + c] - mean[r]) * rstd[r];
      dx[r * width + c] = rstd[r] * (dout[r * width + c] * weight[c] - sg / width - (xhat * sgx) / width);
    }
  }
  return dx;
}

export function layernormParamGradRef(
  dout: Arr,
  x: Arr,
  mean: Arr,
  rstd: Arr,
  rows: number,
  width: number,
): { dweight: Float64Array; dbias: Float64Array } {
  const dweight = new Float64Array(width);
  const dbias = new Float64Array(width);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < width; c++) {
      const g = dout[r * width + c];
      dweight[c] += g * (x[r * width + c] - mean[r]) * rstd[r];
      dbias[c] += g;
    }
  }
  return { dweight, dbias };
}
