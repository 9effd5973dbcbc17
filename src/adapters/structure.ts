/** The structure an allocating method (GoRA, GeLoRA) gives its ranks to: dense B·A or GraLoRA's blocks. */
import type { MethodOption, Structure } from './options';

/** The structure option as a run holds it (absent: dense). */
export interface StructureOptionValues {
  structure?: string;
}

export const STRUCTURES: readonly Structure[] = ['dense', 'gralora'];

export const STRUCTURE_OPTION: MethodOption = {
  key: 'structure',
  kind: 'choice',
  label: 'Structure',
  flag: 'structure',
  choices: STRUCTURES,
  default: 'dense',
  inForm: true,
  choiceLabels: { dense: 'Dense (B·A)', gralora: 'GraLoRA blocks' },
  help: 'the adapter the allocated ranks are given to',
};
