/** LoRA-GA as the registry knows it: A and B from the SVD of the gradient accumulated over N batches (PEFT "lora_ga"). */
import { GORA_DEFAULTS } from '../gora/config';
import { loraScale } from '../lora/config';
import type { MethodDescriptor } from '../options';

export const LORAGA_DIRECTIONS = ['ArBr', 'A2rBr', 'ArB2r', 'random'] as const;
export const LORAGA_SCALES = ['stable', 'weight_svd', 'gd_scale', 'unit'] as const;
export type LoragaDirection = (typeof LORAGA_DIRECTIONS)[number];
export type LoragaScale = (typeof LORAGA_SCALES)[number];

/** LoRA-GA's options as a run holds them (PEFT's LoraGAConfig fields, and the number of gradient batches). */
export interface LoragaOptionValues {
  loragaDirection?: string;
  loragaScale?: string;
  loragaStableGamma?: number;
  loragaBatches?: number;
}

export interface LoragaConfig {
  direction: LoragaDirection;
  scale: LoragaScale;
  stableGamma: number;
  batches: number;
}

export function loragaConfigOf(o: LoragaOptionValues): LoragaConfig {
  return {
    direction: o.loragaDirection as LoragaDirection,
    scale: o.loragaScale as LoragaScale,
    stableGamma: o.loragaStableGamma!,
    batches: o.loragaBatches!,
  };
}

export const LORAGA_METHOD: MethodDescriptor<'loraga'> = {
  id: 'loraga',
  label: 'LoRA-GA',
  choiceLabel: 'LoRA-GA (gradient SVD)',
  note:
    'Before step 0, accumulates the gradients of the frozen weights over N batches and starts A and B from their top singular ' +
    'vectors (B scaled), training against the residual W − s·B₀·A₀ (W is not modified). Exports a rank-2r LoRA.',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'uniform', init: 'loraga' },
  allocatesRanks: false,
  // LoRA's rate: the "stable" scale is designed so the first steps move W like full fine-tuning at LoRA's rate, and
  // the LoRA-GA paper trains both at the same learning rate.
  usualLr: 1e-3,
  options: [
    {
      key: 'loragaDirection',
      kind: 'choice',
      label: 'Direction',
      flag: 'direction',
      choices: LORAGA_DIRECTIONS,
      choiceLabels: { ArB2r: 'ArB2r (recommended)' },
      default: 'ArB2r',
      inForm: true,
      help: "lora_ga_config.direction: which of the gradient's top 2r singular vectors A and B take",
    },
    {
      key: 'loragaScale',
      kind: 'choice',
      label: 'Scale',
      flag: 'scale',
      choices: LORAGA_SCALES,
      default: 'stable',
      inForm: true,
      help: 'lora_ga_config.scale: stable (B·out^¼/√γ), weight_svd (σ₁(W)/σ), gd_scale (both / s) or unit',
    },
    {
      key: 'loragaStableGamma',
      kind: 'number',
      label: 'γ',
      flag: 'stable-gamma',
      min: 1e-6,
      default: 16,
      inForm: true,
      help: 'lora_ga_config.stable_gamma: the stable scale divides B by √γ',
      appliesTo: (c) => (c.values.loragaScale ?? 'stable') === 'stable',
    },
    {
      key: 'loragaBatches',
      kind: 'int',
      label: 'N batches',
      flag: 'loraga-batches',
      min: 1,
      default: GORA_DEFAULTS.steps,
      inForm: true,
      help: "training batches whose mean gradient is decomposed before step 0 (PEFT's preprocess_loraga train_step)",
    },
  ],
  scaleRule: (r, a) => ({ formula: 'α/r', value: loraScale(r, a, false), perModule: false }),
  summary: (c) =>
    `N ${c.values.loragaBatches}, ${c.values.loragaDirection}, ${c.values.loragaScale}` +
    (c.values.loragaScale === 'stable' ? ` γ ${c.values.loragaStableGamma}` : ''),
};
