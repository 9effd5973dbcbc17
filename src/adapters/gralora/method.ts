/**
 * GraLoRA as the registry knows it: k x k block adapters with an optional hybrid LoRA. The block options (k,
 * hybrid_r) also apply to GoRA's and GeLoRA's ranks when they choose the GraLoRA structure.
 */
import { RANK_OPTION, type MethodDescriptor, type MethodOption, type OptionContext } from '../options';
import { defaultGraloraK, graloraScale } from './config';

/** GraLoRA's block options as a run holds them (absent: the defaults). */
export interface GraloraOptionValues {
  graloraK?: number;
  hybridRank?: number;
}

/** Whether a run's adapters are GraLoRA blocks (the method itself, or an allocating method's structure choice). */
export const usesGraloraBlocks = (c: OptionContext, method: string) =>
  method === 'gralora' || c.values.structure === 'gralora';

export const HYBRID_RANK: MethodOption = {
  key: 'hybridRank',
  kind: 'int',
  label: 'Hybrid r',
  flag: 'hybrid-r',
  min: 0,
  default: 0,
  inForm: true,
  help: 'rank of a plain full-width LoRA trained beside the blocks (PEFT hybrid_r; 0 = none; with GoRA and GeLoRA: when the structure is gralora)',
  hint: 'Rank of a plain full-width LoRA trained beside the blocks (PEFT hybrid_r; 0 = none)',
};

const hybridOf = (c: OptionContext) => Number(c.values.hybridRank ?? 0);

export const GRALORA_K: MethodOption = {
  key: 'graloraK',
  kind: 'int',
  label: 'k',
  flag: 'gralora-k',
  min: 1,
  inForm: true,
  help: 'blocks per side (with GoRA and GeLoRA: when the structure is gralora)',
  hint: 'Blocks per side. Empty: 2 up to a total rank of 32, 4 from 64',
  default: (c) => defaultGraloraK(c.rank + hybridOf(c), c.rank),
  defaultText: '2 up to total rank 32, 4 from 64',
};

/** The block options, for the allocating methods: they apply only with the GraLoRA structure. */
export function graloraBlockOptions(method: string): MethodOption[] {
  const appliesTo = (c: OptionContext) => usesGraloraBlocks(c, method);
  return [
    { ...GRALORA_K, appliesTo },
    { ...HYBRID_RANK, appliesTo },
  ];
}

export const GRALORA_METHOD: MethodDescriptor<'gralora'> = {
  id: 'gralora',
  label: 'GraLoRA',
  choiceLabel: 'GraLoRA (k×k blocks)',
  note: 'Splits each weight into k×k blocks with rank r/k each: the same parameters as LoRA r, up to k·r rank.',
  peftType: 'GRALORA',
  recipe: { structure: 'gralora', allocation: 'uniform', init: 'lora' },
  allocatesRanks: false,
  usualLr: 1e-3,
  options: [GRALORA_K, HYBRID_RANK],
  scaleRule: (r, a, c) => {
    const h = hybridOf(c);
    return { formula: h ? 'α/(r+h)' : 'α/r', value: graloraScale(a, r, h), perModule: false };
  },
  validate(rank, c, options) {
    const k = Number(c.values.graloraK);
    if (!Number.isInteger(k) || k < 1 || rank % k === 0) return [];
    const kOption = options.find((o) => o.key === 'graloraK')!;
    return [
      {
        key: 'graloraK',
        message: (w) =>
          `${w.name(RANK_OPTION, rank)} must be divisible by ${w.short(kOption, k)}: each of the k x k blocks gets rank r/k`,
      },
    ];
  },
};
