/**
 * AdaLoRA as the registry knows it (PEFT ADALORA): every module starts with init_r triplets P·Λ·Q and a rank
 * allocator prunes Λ entries by importance down to the run's rank (target_r) on average. Options are PEFT's
 * AdaLoraConfig fields.
 */
import type { MethodDescriptor, MethodOption, OptionContext, OptionProblem } from '../options';
import { ADALORA_DEFAULTS, adaloraScale, defaultInitR, type AdaloraConfig } from './config';

/** AdaLoRA's options as a run holds them (keys of the descriptor's options below; absent: the default). */
export interface AdaloraOptionValues {
  initR?: number;
  tinit?: number;
  tfinal?: number;
  deltaT?: number;
  beta1?: number;
  beta2?: number;
  orthRegWeight?: number;
  totalStep?: number;
}

/** AdaLoRA's configuration from resolved options; total_step 0 means the run's steps. */
export function adaloraConfigOf(
  o: AdaloraOptionValues,
  targetR: number,
  alpha: number,
  runSteps: number,
): AdaloraConfig {
  return {
    targetR,
    initR: o.initR ?? defaultInitR(targetR),
    tinit: o.tinit ?? ADALORA_DEFAULTS.tinit,
    tfinal: o.tfinal ?? ADALORA_DEFAULTS.tfinal,
    deltaT: o.deltaT ?? ADALORA_DEFAULTS.deltaT,
    beta1: o.beta1 ?? ADALORA_DEFAULTS.beta1,
    beta2: o.beta2 ?? ADALORA_DEFAULTS.beta2,
    orthRegWeight: o.orthRegWeight ?? ADALORA_DEFAULTS.orthRegWeight,
    totalStep: o.totalStep || runSteps,
    alpha,
  };
}

const INIT_R: MethodOption = {
  key: 'initR',
  kind: 'int',
  label: 'init_r',
  flag: 'init-r',
  min: 1,
  default: (c: OptionContext) => defaultInitR(c.rank),
  defaultText: 'round(1.5 × rank), PEFT’s 12 for target_r 8',
  inForm: true,
  help: 'rank every module starts with; the allocator prunes down to the rank (target_r) on average',
};
const TINIT: MethodOption = {
  key: 'tinit',
  kind: 'int',
  label: 't_init',
  flag: 'tinit',
  min: 0,
  default: ADALORA_DEFAULTS.tinit,
  inForm: true,
  help: 'steps before pruning starts (PEFT default 0)',
};
const TFINAL: MethodOption = {
  key: 'tfinal',
  kind: 'int',
  label: 't_final',
  flag: 'tfinal',
  min: 0,
  default: ADALORA_DEFAULTS.tfinal,
  inForm: true,
  help: 'last steps trained with the rank pattern fixed (PEFT default 0)',
};
const TOTAL_STEP: MethodOption = {
  key: 'totalStep',
  kind: 'int',
  label: 'Total steps',
  flag: 'total-step',
  min: 0,
  default: ADALORA_DEFAULTS.totalStep,
  inForm: false,
  help: "the step count the budget schedule spans (0 = the run's steps)",
};

export const ADALORA_METHOD: MethodDescriptor<'adalora'> = {
  id: 'adalora',
  label: 'AdaLoRA',
  choiceLabel: 'AdaLoRA (pruned triplets)',
  note:
    'Every module starts with init_r triplets P·Λ·Q; after each step, importance scores (|p·∇p|, smoothed) prune Λ ' +
    'entries on a cubic schedule until the modules keep rank r on average. An orthogonality penalty keeps P and Q near-orthogonal.',
  peftType: 'ADALORA',
  recipe: { structure: 'adalora', allocation: 'adalora', init: 'adalora' },
  allocatesRanks: true,
  usualLr: 1e-3,
  options: [
    INIT_R,
    TINIT,
    TFINAL,
    {
      key: 'deltaT',
      kind: 'int',
      label: 'ΔT',
      flag: 'delta-t',
      min: 1,
      default: ADALORA_DEFAULTS.deltaT,
      inForm: true,
      help: 'steps between two budget allocations (PEFT deltaT)',
    },
    {
      key: 'beta1',
      kind: 'number',
      label: 'β1',
      flag: 'beta1',
      min: 0,
      default: ADALORA_DEFAULTS.beta1,
      inForm: false,
      help: 'EMA factor of the importance (sensitivity) scores, in (0, 1)',
    },
    {
      key: 'beta2',
      kind: 'number',
      label: 'β2',
      flag: 'beta2',
      min: 0,
      default: ADALORA_DEFAULTS.beta2,
      inForm: false,
      help: 'EMA factor of their uncertainty, in (0, 1)',
    },
    {
      key: 'orthRegWeight',
      kind: 'number',
      label: 'Orth. weight',
      flag: 'orth-reg-weight',
      min: 0,
      default: ADALORA_DEFAULTS.orthRegWeight,
      inForm: true,
      help: 'weight of the orthogonal regularizer ‖PPᵀ − I‖ + ‖QᵀQ − I‖ added to the loss',
    },
    TOTAL_STEP,
  ],
  // ranknum is init_r for every module, whatever rank it keeps.
  scaleRule: (r, a, c) => ({
    formula: 'α/init_r',
    value: adaloraScale(a, Number(c.values.initR ?? defaultInitR(r))),
    perModule: false,
  }),
  // Its budget, as for the other methods that allocate ranks: the target_r triplets (P row, Λ entry, Q column) per
  // module it prunes down to. It trains init_r of them until the schedule prunes (the analysis counts those).
  moduleParameters: (m, rank) => rank * (m.in + m.out + 1),
  validate(rank, c) {
    const problems: OptionProblem[] = [];
    const initR = Number(c.values.initR);
    if (initR < rank)
      problems.push({
        key: 'initR',
        message: (w) =>
          `${w.name(INIT_R)} (${initR}) is smaller than the rank (target_r ${rank}): there is nothing to prune`,
      });
    for (const key of ['beta1', 'beta2'] as const) {
      const v = Number(c.values[key]);
      if (!(v > 0 && v < 1))
        problems.push({
          key,
          message: (w) => `${w.name({ flag: key, label: key === 'beta1' ? 'β1' : 'β2' })} must be in (0, 1) (got ${v})`,
        });
    }
    const total = Number(c.values.totalStep);
    const tinit = Number(c.values.tinit);
    const tfinal = Number(c.values.tfinal);
    if (total > 0 && tinit >= total - tfinal)
      problems.push({
        key: 'tinit',
        message: (w) =>
          `${w.name(TINIT)} (${tinit}) must be below ${w.short(TOTAL_STEP)} − ${w.short(TFINAL)} (${total} − ${tfinal}): no pruning phase is left`,
      });
    return problems;
  },
  summary: (c) =>
    `init_r ${c.values.initR}, t_init ${c.values.tinit}, t_final ${c.values.tfinal}, ΔT ${c.values.deltaT}, orth ${c.values.orthRegWeight}`,
};
