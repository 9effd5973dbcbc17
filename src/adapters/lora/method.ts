/** LoRA and rsLoRA as the registry knows them: dense B·A on every target, one rank, PEFT's scale rules. */
import type { MethodDescriptor } from '../options';
import { loraScale } from './config';

export const LORA_METHOD: MethodDescriptor<'lora'> = {
  id: 'lora',
  label: 'LoRA',
  choiceLabel: 'LoRA',
  note: 'Every target module gets rank r.',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'uniform', init: 'lora' },
  allocatesRanks: false,
  usualLr: 1e-3,
  options: [],
  scaleRule: (r, a) => ({ formula: 'α/r', value: loraScale(r, a, false), perModule: false }),
};

export const RSLORA_METHOD: MethodDescriptor<'rslora'> = {
  id: 'rslora',
  label: 'rsLoRA',
  choiceLabel: 'rsLoRA (α/√r)',
  note: 'LoRA with the scale α/√r, which keeps updates stable at high ranks.',
  peftType: 'LORA',
  recipe: { structure: 'dense', allocation: 'uniform', init: 'lora' },
  allocatesRanks: false,
  usualLr: 1e-3,
  options: [],
  scaleRule: (r, a) => ({ formula: 'α/√r', value: loraScale(r, a, true), perModule: false }),
};
