/** float64 references for SwiGLU and GPT-2's tanh GELU. */
type Arr = ArrayLike<number>;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

export function swigluForwardRef(gate: Arr, up: Arr, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
  return out;
}

export function swigluBackwardRef(
  dout: Arr,
  gate: Arr,
  up: Arr,
  n: number,
): { dgate: Float64Array; dup: Float64Array } {
  const dgate = new Float64Array(n);
  const dup = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = sigmoid(gate[i]);
    dgate[i] = dout[i] * up[i] * s * (1 + gate[i] * (1 - s));
    dup[i] = dout[i] * gate[i] * s;
  }
  return { dgate, dup };
}

export function geluForwardRef(x: Arr, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = 0.5 * x[i] * (1 + Math.tanh(SQRT_2_OVER_PI * (x[i] + GELU_C * x[i] ** 3)));
  return out;
}

export function geluBackwardRef(dout: Arr, x: Arr, n: number): Float64Array {
  const dx = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = Math.tanh(SQRT_2_OVER_PI * (x[i] + GELU_C * x[i] ** 3));
    const slope = 0.5 * (1 + t) + 0.5 * x[i] * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * x[i] ** 2);
    dx[i] = dout[i] * slope;
  }
  return dx;
}
