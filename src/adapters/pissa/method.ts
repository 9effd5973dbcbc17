/** PiSSA as the registry knows it: LoRA's dense pair started from W's top-r singular triplets (PEFT "pissa"). */
import { loraScale } from '../lora/config';
import type { MethodDescriptor } from '../options';

/** PiSSA's options as a run holds them (absent: the default). */
export interface PissaOptionValues {
  /** PEFT's init_lora_weights: 0 = "pissa" (exact SVD), N = "pissa_niter_N" (randomized, N subspace iterations). */
  pissaNiter?: number;
}

export const PISSA_METHOD: MethodDescriptor<'pissa'> = {
  id: 'pissa',
  label: 'PiSSA',
  choiceLabel: 'PiSSA (principal singular vectors)',
  note:
    "Before step 0, starts A and B from W's top-r singular triplets and trains against the residual W − s·B₀·A₀ " +
    '(the layer subtracts its frozen initial pair; W is not modified). Exports a rank-2r LoRA for the original weights.',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'uniform', init: 'pissa' },
  allocatesRanks: false,
  // Half of LoRA's 1e-3: A and B start at √σ of W's largest directions instead of B = 0, so the same Adam step
  // moves s·B·A by ~‖A‖+‖B‖ times more than it moves a fresh LoRA; the PiSSA paper's runs likewise sit at or below
  // LoRA's rates (2e-5 vs LoRA's 2e-5..2e-4 at 7B).
  usualLr: 5e-4,
  options: [
    {
      key: 'pissaNiter',
      kind: 'int',
      label: 'SVD iterations',
      flag: 'pissa-niter',
      min: 0,
      max: 64,
      default: 0,
      inForm: true,
      help: 'init_lora_weights: 0 = "pissa" (exact SVD of W), N = "pissa_niter_N" (randomized SVD, N subspace iterations)',
    },
  ],
  scaleRule: (r, a) => ({ formula: 'α/r', value: loraScale(r, a, false), perModule: false }),
  rawExport: {
    button: 'Export raw PiSSA',
    what:
      'the raw PiSSA adapter as PEFT saves it by default (init_lora_weights "pissa"): PEFT rebuilds the residual base ' +
      'from the base model at load, so load it onto the unmodified base model',
  },
  summary: (c) => (Number(c.values.pissaNiter) > 0 ? `SVD pissa_niter_${c.values.pissaNiter}` : 'exact SVD'),
};
