/** GoRA's rank allocation under the budget of a uniform rank-r_ref LoRA (docs/METHODS.md, GoRA). Pure. */
import type { GoraConfig } from './config';

export interface AllocationInput {
  in: number;
  out: number;
  /** I_l (any non-negative importance). */
  importance: number;
}

/** a_l = I_l / Σ I (all equal when every importance is zero, so a dead gradient falls back to r_ref). */
export function normalizeImportance(importances: number[]): number[] {
  const total = importances.reduce((a, b) => a + b, 0);
  if (!(total > 0) || !Number.isFinite(total)) return importances.map(() => 1 / importances.length);
  return importances.map((i) => i / total);
}

export function allocateRanks(
  modules: AllocationInput[],
  cfg: Pick<GoraConfig, 'rankRef' | 'rankMin' | 'rankMax' | 'features' | 'rounding'>,
): number[] {
  const f = cfg.features === 'sqrt' ? Math.sqrt : (x: number) => x;
  const features = modules.map((m) => f(m.in + m.out));
  const budget = features.reduce((a, b) => a + b, 0) * cfg.rankRef;
  const shares = normalizeImportance(modules.map((m) => m.importance));
  return modules.map((m, l) => {
    const raw =
      cfg.rounding === 'code'
        ? Math.floor(Math.round(budget * shares[l]) / features[l])
        : Math.round((budget * shares[l]) / features[l]);
    // A rank above min(in, out) adds nothing (and would make A·Aᵀ singular in the init).
    const cap = Math.min(cfg.rankMax, m.in, m.out);
    return Math.max(Math.min(cfg.rankMin, cap), Math.min(raw, cap));
  });
}
