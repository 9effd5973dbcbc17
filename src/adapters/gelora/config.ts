/** GeLoRA options (docs/METHODS.md, GeLoRA; sampling, budget fit and scale are the app's choices there). */
import type { GeloraRounding } from './ranks';

export const GELORA_ROUNDING = ['ceil', 'round'] as const;
export const GELORA_BUDGET = ['raw', 'fit'] as const;
export type GeloraBudget = (typeof GELORA_BUDGET)[number];
export const GELORA_SCALE = ['uniform', 'paper32'] as const;
export type GeloraScaleMode = (typeof GELORA_SCALE)[number];

export interface GeloraConfig {
  /** Hidden-state points per residual stream (token-level samples). */
  samples: number;
  /** At most this many random positions from one sequence. */
  perSequence: number;
  /** R in r_ℓ = max(R(d_{ℓ+1} − d_ℓ), 0) + 1. */
  rounding: GeloraRounding;
  /** 'raw': the formula's ranks as they are; 'fit': scaled to the parameter budget of a uniform rank-rankRef LoRA. */
  budget: GeloraBudget;
  /** r_ref: the uniform LoRA rank whose parameter count is the budget (and whose α/r is the 'uniform' scale). */
  rankRef: number;
  /** Cap on fitted ranks. */
  rankMax: number;
  alpha: number;
  /** 'uniform': s = alpha / rankRef for every module (only ranks differ from LoRA); 'paper32': s = 32. */
  scaleMode: GeloraScaleMode;
  /** PEFT list-form target names, already resolved (no 'all-linear', not empty). */
  targets: string[];
}

export const GELORA_DEFAULTS: Omit<GeloraConfig, 'rankRef' | 'alpha' | 'targets'> = {
  samples: 2048,
  perSequence: 8,
  rounding: 'ceil',
  budget: 'fit',
  rankMax: 32,
  scaleMode: 'uniform',
};

/** Below this many samples TwoNN's estimate gets noisy: allowed (tiny datasets, tests), with a warning. */
export const RECOMMENDED_MIN_SAMPLES = 512;
/** The N x N fp32 Gram matrix must fit one storage binding: 4096² floats are 64 MiB (WebGPU's default limit is 128 MiB). */
export const MAX_SAMPLES = 4096;
/** TwoNN needs two neighbours per point. */
const MIN_SAMPLES = 3;

/** The scale s every GeLoRA module uses. */
export function geloraScale(c: Pick<GeloraConfig, 'scaleMode' | 'alpha' | 'rankRef'>): number {
  return c.scaleMode === 'paper32' ? 32 : c.alpha / c.rankRef;
}

/**
 * Warnings for allowed but doubtful options, worded for any surface (the registry, gelora/method.ts, checks the
 * options themselves); throws only on what would break the analysis.
 */
export function validateGeloraConfig(c: GeloraConfig): string[] {
  if (!Number.isInteger(c.samples) || c.samples < MIN_SAMPLES || c.samples > MAX_SAMPLES) {
    throw new Error(`GeLoRA samples must be an integer from ${MIN_SAMPLES} to ${MAX_SAMPLES} (got ${c.samples})`);
  }
  if (c.targets.length === 0) throw new Error('GeLoRA needs at least one target module');
  const warnings: string[] = [];
  if (c.samples < RECOMMENDED_MIN_SAMPLES) {
    warnings.push(
      `GeLoRA samples (${c.samples}) is below ${RECOMMENDED_MIN_SAMPLES}: the intrinsic-dimension estimates (and so the ranks) will be noisy.`,
    );
  }
  if (c.budget === 'fit' && c.rankMax < c.rankRef) {
    warnings.push(
      `GeLoRA r_max (${c.rankMax}) is below the reference rank ${c.rankRef}: the fitted ranks cannot use the whole budget of a rank-${c.rankRef} LoRA.`,
    );
  }
  return warnings;
}
