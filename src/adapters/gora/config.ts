/** GoRA options (METHODS.md §2; defaults from the paper's released LLM scripts where they exist). */

export const GORA_IMPORTANCE = ['union_mean', 'union_frobenius_norm', 'grad_mean'] as const;
export type GoraImportance = (typeof GORA_IMPORTANCE)[number];
export const GORA_FEATURES = ['identity', 'sqrt'] as const;
export type GoraFeatures = (typeof GORA_FEATURES)[number];
export const GORA_ROUNDING = ['paper', 'code'] as const;
export type GoraRounding = (typeof GORA_ROUNDING)[number];

export interface GoraConfig {
  /** r_ref: the uniform LoRA rank whose parameter count is the budget. */
  rankRef: number;
  rankMin: number;
  rankMax: number;
  /** N: training batches whose base-weight gradients are averaged. */
  steps: number;
  /** γ: the initial adapter is one gradient step of this size (0 = B starts at zero, like LoRA). */
  gamma: number;
  alpha: number;
  importance: GoraImportance;
  /** f in F'_l = f(in_l + out_l). */
  features: GoraFeatures;
  /** "paper": r = round(B'a/F'); "code": floor(round(B'a)/F') as the official code does. */
  rounding: GoraRounding;
  /** Stop accumulating once every importance changes by at most τ between steps (t ≥ 3); N stays the cap. */
  adaptiveSteps: boolean;
}

export const GORA_DEFAULTS: Omit<GoraConfig, 'rankRef' | 'alpha'> = {
  rankMin: 4, rankMax: 32, steps: 32, gamma: 0.05, importance: 'union_mean', features: 'identity', rounding: 'paper', adaptiveSteps: false,
};

/** Adaptive N's relative-change threshold τ and first step t_min (code defaults). */
export const ADAPTIVE_TAU = 0.1;
export const ADAPTIVE_MIN_STEPS = 3;

export function goraScale(rank: number, alpha: number): number {
  return alpha / Math.sqrt(rank);
}

export function validateGoraConfig(c: GoraConfig): void {
  const int = (flag: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`${flag} must be an integer >= ${min} (got ${v})`);
  };
  int('--rank', c.rankRef, 1);
  int('--rank-min', c.rankMin, 1);
  int('--rank-max', c.rankMax, 1);
  if (c.rankMin > c.rankMax) throw new Error(`--rank-min (${c.rankMin}) is larger than --rank-max (${c.rankMax})`);
  int('--gora-steps', c.steps, 1);
  if (!(c.gamma >= 0) || !Number.isFinite(c.gamma)) throw new Error(`--gora-gamma must be a finite number >= 0 (got ${c.gamma})`);
  if (!(c.alpha > 0)) throw new Error(`--alpha must be positive (got ${c.alpha})`);
  const oneOf = (flag: string, v: string, allowed: readonly string[]) => {
    if (!allowed.includes(v)) throw new Error(`${flag} must be one of ${allowed.join(', ')} (got "${v}")`);
  };
  oneOf('--gora-importance', c.importance, GORA_IMPORTANCE);
  oneOf('--gora-features', c.features, GORA_FEATURES);
  oneOf('--gora-rounding', c.rounding, GORA_ROUNDING);
}
