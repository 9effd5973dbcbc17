/**
 * AdaLoRA's configuration and PEFT's budget schedule (tuners/adalora/layer.py RankAllocator.budget_schedule and
 * model.py update_and_allocate), ported for the host: it decides, before each step, what the GPU's allocator does.
 */

export interface AdaloraConfig {
  /** target_r: the average rank kept per module (the run's rank field). */
  targetR: number;
  /** init_r: every module's rank at the start. */
  initR: number;
  tinit: number;
  tfinal: number;
  deltaT: number;
  beta1: number;
  beta2: number;
  orthRegWeight: number;
  /** total_step, resolved (0 in the options means the run's steps). */
  totalStep: number;
  alpha: number;
}

/** PEFT's defaults (AdaLoraConfig), apart from init_r, which follows target_r by PEFT's default ratio 12/8. */
export const ADALORA_DEFAULTS = {
  tinit: 0,
  tfinal: 0,
  deltaT: 1,
  beta1: 0.85,
  beta2: 0.85,
  orthRegWeight: 0.5,
  totalStep: 0,
} as const;

/** init_r when none is given: PEFT's default pair (init_r 12, target_r 8) scaled to the run's target_r. */
export function defaultInitR(targetR: number): number {
  return Math.max(targetR, Math.round((targetR * 12) / 8));
}

/** s = lora_alpha / (ranknum + 1e-5) with ranknum = init_r for every module, whatever rank it keeps (PEFT). */
export function adaloraScale(alpha: number, initR: number): number {
  return alpha / (initR + 1e-5);
}

/** RankAllocator.budget_schedule(step): the total kept triplets, and whether this step masks. */
export function budgetSchedule(
  c: Pick<AdaloraConfig, 'tinit' | 'tfinal' | 'totalStep' | 'deltaT'>,
  initBudget: number,
  targetBudget: number,
  step: number,
): { budget: number; mask: boolean } {
  if (step <= c.tinit) return { budget: initBudget, mask: false };
  if (step > c.totalStep - c.tfinal) return { budget: targetBudget, mask: true };
  const mul = 1 - (step - c.tinit) / (c.totalStep - c.tfinal - c.tinit);
  return { budget: Math.trunc((initBudget - targetBudget) * mul ** 3 + targetBudget), mask: step % c.deltaT === 0 };
}

/** What the allocator does after the optimizer update of step `step` (AdaLoraModel.update_and_allocate). */
export interface AllocatorStep {
  /** update_ipt: the importance EMAs take this step's gradient. */
  updateIpt: boolean;
  /** mask_to_budget: new scores, a new mask at this budget. */
  computeMask: boolean;
  /** lora_E is masked (a new mask, or the pattern fixed at total_step − tfinal). */
  applyMask: boolean;
  budget: number;
  /** How many triplets the mask prunes: init_bgt − budget (torch.kthvalue's k). */
  k: number;
}

export function allocatorStep(c: AdaloraConfig, initBudget: number, targetBudget: number, step: number): AllocatorStep {
  const end = c.totalStep - c.tfinal;
  const { budget, mask } = budgetSchedule(c, initBudget, targetBudget, step);
  if (step < end) {
    return { updateIpt: true, computeMask: mask, applyMask: mask, budget, k: initBudget - budget };
  }
  if (step === end) return { updateIpt: false, computeMask: true, applyMask: true, budget, k: initBudget - budget };
  // After total_step − tfinal: mask_using_rank_pattern, the pattern fixed at total_step − tfinal.
  return { updateIpt: false, computeMask: false, applyMask: true, budget: targetBudget, k: initBudget - targetBudget };
}

/** Why a configuration cannot run (PEFT's AdaLoraConfig.__post_init__ checks), or null. */
export function adaloraConfigProblem(c: AdaloraConfig): string | null {
  if (!(c.totalStep > 0)) return `total_step must be > 0 (got ${c.totalStep})`;
  if (c.initR < c.targetR)
    return `init_r (${c.initR}) is smaller than target_r (${c.targetR}): there is nothing to prune`;
  if (c.tinit >= c.totalStep - c.tfinal)
    return `tinit (${c.tinit}) must be below total_step − tfinal (${c.totalStep} − ${c.tfinal}): no budgeting phase is left`;
  if (!(c.beta1 > 0 && c.beta1 < 1) || !(c.beta2 > 0 && c.beta2 < 1)) return 'beta1 and beta2 must be in (0, 1)';
  if (!(c.orthRegWeight >= 0)) return `orth_reg_weight must be >= 0 (got ${c.orthRegWeight})`;
  return null;
}
