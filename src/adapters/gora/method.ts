/** GoRA as the registry knows it: ranks from gradient importance under a rank-r_ref budget, B started from Ḡ. */
import { graloraBlockOptions, usesGraloraBlocks } from '../gralora/method';
import type { MethodDescriptor, MethodOption } from '../options';
import { STRUCTURE_OPTION, type StructureOptionValues } from '../structure';
import {
  GORA_DEFAULTS,
  GORA_FEATURES,
  GORA_IMPORTANCE,
  GORA_ROUNDING,
  type GoraConfig,
  type GoraFeatures,
  type GoraImportance,
  type GoraRounding,
  goraScale,
} from './config';

/** GoRA's options as a run holds them (keys of the descriptor's options below; absent: the default). */
export interface GoraOptionValues extends StructureOptionValues {
  goraSteps?: number;
  goraGamma?: number;
  rankMin?: number;
  rankMax?: number;
  goraImportance?: string;
  goraFeatures?: string;
  goraRounding?: string;
  goraAdaptiveSteps?: boolean;
}

/** GoRA's configuration from a run's resolved options (registry.resolveMethodOptions: every default filled in). */
export function goraConfigOf(o: GoraOptionValues, rankRef: number, alpha: number): GoraConfig {
  return {
    rankRef,
    alpha,
    rankMin: o.rankMin!,
    rankMax: o.rankMax!,
    steps: o.goraSteps!,
    gamma: o.goraGamma!,
    importance: o.goraImportance as GoraImportance,
    features: o.goraFeatures as GoraFeatures,
    rounding: o.goraRounding as GoraRounding,
    adaptiveSteps: o.goraAdaptiveSteps === true,
  };
}

const RANK_MIN: MethodOption = {
  key: 'rankMin',
  kind: 'int',
  label: 'r_min',
  flag: 'rank-min',
  min: 1,
  default: GORA_DEFAULTS.rankMin,
  inForm: true,
  help: 'smallest rank a module gets',
};
const RANK_MAX: MethodOption = {
  key: 'rankMax',
  kind: 'int',
  label: 'r_max',
  flag: 'rank-max',
  min: 1,
  default: GORA_DEFAULTS.rankMax,
  inForm: true,
  help: 'largest rank a module gets',
};

export const GORA_METHOD: MethodDescriptor<'gora'> = {
  id: 'gora',
  label: 'GoRA',
  choiceLabel: 'GoRA (gradient ranks)',
  note:
    'Before step 0, accumulates the gradients of the frozen weights over N batches, gives each module a rank from its gradient ' +
    'importance (the total stays near the rank-r_ref budget) and starts B from the gradient (γ).',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'gora', init: 'gora' },
  allocatesRanks: true,
  usualLr: 1e-3,
  options: [
    STRUCTURE_OPTION,
    {
      key: 'goraSteps',
      kind: 'int',
      label: 'N batches',
      flag: 'gora-steps',
      min: 1,
      default: GORA_DEFAULTS.steps,
      inForm: true,
      help: 'training batches whose gradients are accumulated before step 0 (N)',
    },
    {
      key: 'goraGamma',
      kind: 'number',
      label: 'γ',
      flag: 'gora-gamma',
      min: 0,
      default: GORA_DEFAULTS.gamma,
      inForm: true,
      help: 'size of the initial gradient step B starts from (0 = B starts at zero, like LoRA)',
    },
    RANK_MIN,
    RANK_MAX,
    {
      key: 'goraImportance',
      kind: 'choice',
      label: 'Importance',
      flag: 'gora-importance',
      choices: GORA_IMPORTANCE,
      choiceLabels: { union_mean: 'union_mean (paper)' },
      default: GORA_DEFAULTS.importance,
      inForm: true,
      help: "how a module's importance is measured from W and its gradient",
    },
    ...graloraBlockOptions('gora'),
    {
      key: 'goraFeatures',
      kind: 'choice',
      label: 'Features',
      flag: 'gora-features',
      choices: GORA_FEATURES,
      default: GORA_DEFAULTS.features,
      inForm: false,
      help: 'parameters per unit of rank: identity (in + out) or sqrt',
    },
    {
      key: 'goraRounding',
      kind: 'choice',
      label: 'Rounding',
      flag: 'gora-rounding',
      choices: GORA_ROUNDING,
      default: GORA_DEFAULTS.rounding,
      inForm: false,
      help: 'rank rounding: paper (round(B·a/F)) or code (as the official code)',
    },
    {
      key: 'goraAdaptiveSteps',
      kind: 'flag',
      label: 'Adaptive N',
      flag: 'gora-adaptive-steps',
      default: GORA_DEFAULTS.adaptiveSteps,
      inForm: false,
      help: 'stop accumulating once every importance changes by <= 10% (N stays the cap)',
    },
  ],
  scaleRule: (r, a, c) => ({
    formula: 'α/√r_l per module',
    value: goraScale(r + (usesGraloraBlocks(c, 'gora') ? Number(c.values.hybridRank ?? 0) : 0), a),
    perModule: true,
  }),
  validate(_rank, c) {
    const min = Number(c.values.rankMin);
    const max = Number(c.values.rankMax);
    if (!(min > max)) return [];
    return [
      {
        key: 'rankMin',
        message: (w) =>
          `${w.name(RANK_MIN)} (${min}) is larger than ${w.short(RANK_MAX)} (${max}): no rank fits both bounds`,
      },
    ];
  },
  summary: (c) => `N ${c.values.goraSteps}, γ ${c.values.goraGamma}, r ${c.values.rankMin}–${c.values.rankMax}`,
};
