/** Full fine-tuning as the registry knows it: no adapter, every base weight trained (the runs' reference point). */
import type { MethodDescriptor } from '../options';

export const FULL_METHOD: MethodDescriptor<'full'> = {
  id: 'full',
  label: 'Full fine-tune',
  choiceLabel: 'Full fine-tune',
  note: 'Trains every weight of the model: no adapter, the most memory.',
  peftType: null,
  recipe: null,
  allocatesRanks: false,
  usualLr: 1e-4,
  options: [],
  scaleRule: () => ({ formula: 'no adapter', value: null, perModule: false }),
};
