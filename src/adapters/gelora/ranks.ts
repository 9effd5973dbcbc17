/** GeLoRA's rank formula and the optional fit of its ranks to a parameter budget (docs/METHODS.md, GeLoRA). */

export type GeloraRounding = 'ceil' | 'round';

/**
 * r_ℓ = max(R(d_{ℓ+1} − d_ℓ), 0) + 1 for blocks ℓ = 0..L−1, from the L+1 intrinsic dimensions of the
 * residual streams; R is ⌈·⌉ (the app's default) or round. The +1 keeps every block adapted.
 */
export function geloraRanks(dims: number[], rounding: GeloraRounding = 'ceil'): number[] {
  if (dims.length < 2)
    throw new Error(`GeLoRA needs the dimensions of at least 2 residual streams, got ${dims.length}`);
  dims.forEach((d, i) => {
    if (!Number.isFinite(d))
      throw new Error(`GeLoRA: intrinsic dimension of residual stream ${i} is not finite (${d})`);
  });
  const R = rounding === 'ceil' ? Math.ceil : Math.round;
  return dims.slice(1).map((next, l) => Math.max(R(next - dims[l]), 0) + 1);
}

export interface BudgetFit {
  /** r′_ℓ = clamp(round(c·r_ℓ), 1, rMax). */
  ranks: number[];
  /** c: the largest factor found whose ranks stay within the budget. */
  factor: number;
  /** Σ r′_ℓ·width_ℓ: adapter parameters of the fitted ranks. */
  params: number;
  /** false when even rank 1 everywhere exceeds the budget (ranks are then all 1). */
  withinBudget: boolean;
}

const BISECTION_STEPS = 100;

/**
 * Scales the ranks by the largest c with Σ_ℓ clamp(round(c·r_ℓ), 1, rMax)·width_ℓ ≤ budget, found by
 * bisection (the sum only grows with c). width_ℓ = Σ over block ℓ's adapted matrices of (in + out),
 * so the sum is the adapters' parameter count.
 */
export function fitGeloraBudget(ranks: number[], widths: number[], budget: number, rMax: number): BudgetFit {
  if (ranks.length !== widths.length)
    throw new Error(`GeLoRA budget fit: ${ranks.length} ranks but ${widths.length} layer widths`);
  for (const r of ranks)
    if (!Number.isInteger(r) || r < 1) throw new Error(`GeLoRA budget fit: ranks must be integers >= 1 (got ${r})`);
  for (const w of widths)
    if (!Number.isInteger(w) || w < 0) throw new Error(`GeLoRA budget fit: widths must be integers >= 0 (got ${w})`);
  if (!Number.isInteger(rMax) || rMax < 1) throw new Error(`--rank-max must be an integer >= 1 (got ${rMax})`);
  if (!(budget >= 0)) throw new Error(`GeLoRA budget fit: the budget must be >= 0 (got ${budget})`);

  const scaled = (c: number) => ranks.map((r) => Math.min(Math.max(Math.round(c * r), 1), rMax));
  const params = (rs: number[]) => rs.reduce((s, r, l) => s + r * widths[l], 0);
  const fit = (c: number, withinBudget = true): BudgetFit => {
    const rs = scaled(c);
    return { ranks: rs, factor: c, params: params(rs), withinBudget };
  };

  if (params(scaled(0)) > budget) return fit(0, false);
  // At c = (rMax + 1) / min r every rank is clamped to rMax; nothing larger changes the ranks.
  let hi = (rMax + 1) / Math.min(...ranks);
  if (params(scaled(hi)) <= budget) return fit(hi);
  let lo = 0;
  for (let i = 0; i < BISECTION_STEPS; i++) {
    const mid = (lo + hi) / 2;
    if (params(scaled(mid)) <= budget) lo = mid;
    else hi = mid;
  }
  return fit(lo);
}
