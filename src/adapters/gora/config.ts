/**
 * GoRA options (docs/METHODS.md, GoRA; defaults from the paper's released LLM scripts where they exist). They are
 * checked, and worded for each surface, by the method registry (gora/method.ts).
 */

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
  rankMin: 4,
  rankMax: 32,
  steps: 32,
  gamma: 0.05,
  importance: 'union_mean',
  features: 'identity',
  rounding: 'paper',
  adaptiveSteps: false,
};

/** Adaptive N's relative-change threshold τ and first step t_min (code defaults). */
export const ADAPTIVE_TAU = 0.1;
export const ADAPTIVE_MIN_STEPS = 3;

export function goraScale(rank: number, alpha: number): number {
  return alpha / Math.sqrt(rank);
}
