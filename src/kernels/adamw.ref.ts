/** float64 reference for one AdamW step (torch.optim.AdamW), updating param, m and v in place. */
export interface AdamwHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** step counts from 1; clip multiplies the gradient; lrScale is the group's lr multiplier. */
export function adamwStepRef(
  param: Float64Array,
  grad: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  hp: AdamwHyper,
  step: number,
  opts: { clip?: number; lrScale?: number; applyDecay?: boolean } = {},
): void {
  const clip = opts.clip ?? 1;
  if (clip === 0) return; // a skipped step (non-finite gradient norm)
  const lr = hp.lr * (opts.lrScale ?? 1);
  const bias1 = 1 - Math.pow(hp.beta1, step);
  const bias2 = 1 - Math.pow(hp.beta2, step);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i] * clip;
    m[i] = hp.beta1 * m[i] + (1 - hp.beta1) * g;
    v[i] = hp.beta2 * v[i] + (1 - hp.beta2) * g * g;
    if (opts.applyDecay) param[i] *= 1 - lr * hp.weightDecay;
    param[i] -= (lr * (m[i] / bias1)) / (Math.sqrt(v[i] / bias2) + hp.eps);
  }
}
