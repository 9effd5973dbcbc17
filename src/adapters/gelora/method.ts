/** GeLoRA as the registry knows it: ranks from the growth of the hidden states' intrinsic dimension. */
import { graloraBlockOptions } from '../gralora/method';
import type { MethodDescriptor } from '../options';
import { STRUCTURE_OPTION, type StructureOptionValues } from '../structure';
import {
  GELORA_BUDGET,
  GELORA_DEFAULTS,
  GELORA_ROUNDING,
  GELORA_SCALE,
  type GeloraBudget,
  type GeloraConfig,
  type GeloraScaleMode,
  geloraScale,
  MAX_SAMPLES,
  RECOMMENDED_MIN_SAMPLES,
} from './config';
import type { GeloraRounding } from './ranks';

/** GeLoRA's options as a run holds them (keys of the descriptor's options below; absent: the default). */
export interface GeloraOptionValues extends StructureOptionValues {
  geloraSamples?: number;
  geloraBudget?: string;
  rankMax?: number;
  geloraPerSequence?: number;
  geloraRounding?: string;
  geloraScale?: string;
}

/** GeLoRA's configuration from a run's resolved options (registry.resolveMethodOptions: every default filled in). */
export function geloraConfigOf(o: GeloraOptionValues, rankRef: number, alpha: number, targets: string[]): GeloraConfig {
  return {
    rankRef,
    alpha,
    targets,
    samples: o.geloraSamples!,
    perSequence: o.geloraPerSequence!,
    rankMax: o.rankMax!,
    budget: o.geloraBudget as GeloraBudget,
    rounding: o.geloraRounding as GeloraRounding,
    scaleMode: o.geloraScale as GeloraScaleMode,
  };
}

export const GELORA_METHOD: MethodDescriptor<'gelora'> = {
  id: 'gelora',
  label: 'GeLoRA',
  choiceLabel: 'GeLoRA (intrinsic dim.)',
  note:
    'Before step 0, estimates the intrinsic dimension of the hidden states after every block and gives each block a rank from its ' +
    'growth, fitted to the rank-r_ref budget.',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'gelora', init: 'lora' },
  allocatesRanks: true,
  usualLr: 1e-3,
  options: [
    STRUCTURE_OPTION,
    {
      key: 'geloraSamples',
      kind: 'int',
      label: 'Samples',
      flag: 'gelora-samples',
      min: 3,
      max: MAX_SAMPLES,
      default: GELORA_DEFAULTS.samples,
      inForm: true,
      help: `hidden-state points per layer for the intrinsic dimension (3 to ${MAX_SAMPLES}; ${RECOMMENDED_MIN_SAMPLES} or more for stable estimates)`,
    },
    {
      key: 'geloraBudget',
      kind: 'choice',
      label: 'Budget',
      flag: 'gelora-budget',
      choices: GELORA_BUDGET,
      default: GELORA_DEFAULTS.budget,
      choiceLabels: { fit: 'Fit to r_ref budget', raw: 'Raw ranks (formula)' },
      inForm: true,
      help: "raw ranks are the formula's (often 1 to 3); fit scales them to a rank-r_ref LoRA's parameter count",
    },
    {
      key: 'rankMax',
      kind: 'int',
      label: 'r_max',
      flag: 'rank-max',
      min: 1,
      default: GELORA_DEFAULTS.rankMax,
      inForm: true,
      help: 'cap on fitted ranks',
    },
    ...graloraBlockOptions('gelora'),
    {
      key: 'geloraPerSequence',
      kind: 'int',
      label: 'Per sequence',
      flag: 'gelora-per-sequence',
      min: 1,
      default: GELORA_DEFAULTS.perSequence,
      inForm: false,
      help: 'at most this many positions from one sequence',
    },
    {
      key: 'geloraRounding',
      kind: 'choice',
      label: 'Rounding',
      flag: 'gelora-rounding',
      choices: GELORA_ROUNDING,
      default: GELORA_DEFAULTS.rounding,
      inForm: false,
      help: 'how the dimension growth is rounded to a rank',
    },
    {
      key: 'geloraScale',
      kind: 'choice',
      label: 'Scale',
      flag: 'gelora-scale',
      choices: GELORA_SCALE,
      default: GELORA_DEFAULTS.scaleMode,
      inForm: false,
      help: 'the scale of every module: uniform is α/r_ref, paper32 is s = 32',
    },
  ],
  scaleRule: (r, a, c) => {
    const paper = c.values.geloraScale === 'paper32';
    return {
      formula: paper ? 's = 32 (every module)' : 'α/r_ref (every module)',
      value: geloraScale({ scaleMode: paper ? 'paper32' : 'uniform', alpha: a, rankRef: r }),
      perModule: false,
    };
  },
  summary: (c) => `${c.values.geloraSamples} samples, budget ${c.values.geloraBudget}, r_max ${c.values.rankMax}`,
};
