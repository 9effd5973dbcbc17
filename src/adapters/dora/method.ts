/** DoRA as the registry knows it: LoRA's dense pair on the direction, and a trained magnitude per output row. */
import { loraScale } from '../lora/config';
import type { MethodDescriptor } from '../options';

export const DORA_METHOD: MethodDescriptor<'dora'> = {
  id: 'dora',
  label: 'DoRA',
  choiceLabel: 'DoRA (magnitude and direction)',
  note:
    'LoRA on the direction of W, and a magnitude per output row (started at ‖W‖ of that row) that rescales it: ' +
    'y = b + m ⊙ (W + s·B·A)x / ‖W + s·B·A‖_row, the norm held constant in the backward pass as PEFT does.',
  peftType: 'LORA',
  recipe: { structure: 'dora', allocation: 'uniform', init: 'lora' },
  allocatesRanks: false,
  usualLr: 1e-3,
  options: [],
  scaleRule: (r, a) => ({ formula: 'α/r', value: loraScale(r, a, false), perModule: false }),
  moduleParameters: (m, r) => r * (m.in + m.out) + m.out,
};
