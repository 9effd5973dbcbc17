/**
 * Every training method, registered once. The CLI's flags and help (src/cli/method-flags.ts), the studio's method
 * form and its validation (src/app/components/MethodOptions.tsx, src/worker/validate.ts), the budget and scale
 * texts and the engine's checks (src/engine/methods.ts) all read these descriptors. To add a method, add a folder
 * with a method.ts descriptor and list it here (docs/ARCHITECTURE.md, "How to add a method").
 */
import { ADALORA_METHOD, type AdaloraOptionValues } from './adalora/method';
import { DORA_METHOD } from './dora/method';
import { FULL_METHOD } from './full/method';
import { GELORA_METHOD, type GeloraOptionValues } from './gelora/method';
import { GORA_METHOD, type GoraOptionValues } from './gora/method';
import { GRALORA_METHOD, type GraloraOptionValues } from './gralora/method';
import { LORA_METHOD, RSLORA_METHOD } from './lora/method';
import { LORAGA_METHOD, type LoragaOptionValues } from './loraga/method';
import { PISSA_METHOD, type PissaOptionValues } from './pissa/method';
import {
  checkOption,
  CLI_OPTION_WORDING,
  formOptionWording,
  optionValue,
  RANK_OPTION,
  type MethodDescriptor,
  type MethodOption,
  type OptionContext,
  type OptionName,
  type OptionProblem,
  type OptionValues,
  type Wording,
} from './options';

export const METHOD_REGISTRY = [
  LORA_METHOD,
  RSLORA_METHOD,
  GORA_METHOD,
  GRALORA_METHOD,
  GELORA_METHOD,
  // The baselines the papers compare against.
  DORA_METHOD,
  PISSA_METHOD,
  LORAGA_METHOD,
  ADALORA_METHOD,
  FULL_METHOD,
] as const;

/** Every method's own options as a run holds them, by key: each folder declares its part beside its descriptor. */
export type MethodOptionValues = GoraOptionValues &
  GeloraOptionValues &
  GraloraOptionValues &
  PissaOptionValues &
  LoragaOptionValues &
  AdaloraOptionValues;

export type MethodId = (typeof METHOD_REGISTRY)[number]['id'];
export const METHOD_IDS: readonly MethodId[] = METHOD_REGISTRY.map((m) => m.id);

export function isMethodId(id: string): id is MethodId {
  return (METHOD_IDS as readonly string[]).includes(id);
}

export function methodDescriptor(id: MethodId): MethodDescriptor<MethodId> {
  return METHOD_REGISTRY.find((m) => m.id === id)!;
}

/**
 * A run's trainable parameters on its target modules, before training: the method's own count per module
 * (MethodDescriptor.moduleParameters), else a LoRA's (r + h)·(in + out), h GraLoRA's hybrid rank where it applies.
 */
export function plannedModuleParameters(
  method: MethodId,
  rank: number,
  given: OptionValues,
  modules: readonly { in: number; out: number }[],
): number {
  const d = methodDescriptor(method);
  const values = resolveMethodOptions(method, rank, given).values;
  // GraLoRA's blocks (and GoRA's or GeLoRA's with that structure) have as many parameters as a LoRA of rank r + h.
  const hybrid = Number(values.hybridRank ?? 0);
  const count = d.moduleParameters ?? ((m: { in: number; out: number }, r: number) => (r + hybrid) * (m.in + m.out));
  return modules.reduce((n, m) => n + count(m, rank, { rank, values }), 0);
}

/** Every option of every method, one per key (methods sharing a key, like r_max, share its flag). */
export function allMethodOptions(): MethodOption[] {
  const byKey = new Map<string, MethodOption>();
  for (const m of METHOD_REGISTRY) for (const o of m.options) if (!byKey.has(o.key)) byKey.set(o.key, o);
  return [...byKey.values()];
}

export interface ResolvedOptions {
  /** The options that apply to this run, in form order. */
  applicable: MethodOption[];
  /** Their values: as given, else their defaults (computed defaults see the other values). */
  values: OptionValues;
}

/** The options a run of `method` reads, with every default applied: the one place defaults are filled in. */
export function resolveMethodOptions(method: MethodId, rank: number, given: OptionValues): ResolvedOptions {
  const d = methodDescriptor(method);
  const values: OptionValues = {};
  // Plain defaults first: computed ones (k from the total rank) read them.
  const ctx: OptionContext = { rank, values };
  for (const o of d.options)
    if (given[o.key] !== undefined || typeof o.default !== 'function')
      values[o.key] = given[o.key] ?? (o.default as never);
  for (const o of d.options) values[o.key] = optionValue(o, ctx);
  const applicable = d.options.filter((o) => !o.appliesTo || o.appliesTo(ctx));
  const out: OptionValues = {};
  for (const o of applicable) out[o.key] = values[o.key];
  return { applicable, values: out };
}

/** A problem with a run's method settings, and the option (or core setting) it is about. */
export interface MethodProblem {
  key: string;
  message(w: Wording): string;
}

const ALPHA_OPTION: OptionName = { flag: 'alpha', label: 'alpha' };
const LR_RATIO_B_OPTION: OptionName = { flag: 'lr-ratio-b', label: 'LoRA+ ratio' };

/**
 * Everything wrong with a method's settings, in order: rank and alpha, options given that do not apply, each
 * option's range or choices, then the method's own checks across options. Empty when the run can start.
 */
export function methodProblems(
  method: MethodId,
  settings: { rank: number; alpha: number; lrRatioB?: number; given: OptionValues },
): MethodProblem[] {
  const d = methodDescriptor(method);
  if (!d.recipe) return [];
  const { rank, alpha, given } = settings;
  const problems: MethodProblem[] = [];
  const rankName: OptionName = d.allocatesRanks ? { ...RANK_OPTION, label: 'r_ref' } : RANK_OPTION;
  if (!Number.isInteger(rank) || rank < 1)
    problems.push({ key: 'rank', message: (w) => `${w.name(rankName)} must be ${w.integer(1)} (got ${rank})` });
  if (!(alpha > 0) || !Number.isFinite(alpha))
    problems.push({ key: 'alpha', message: (w) => `${w.name(ALPHA_OPTION)} must be a positive number (got ${alpha})` });
  const ratio = settings.lrRatioB ?? 1;
  if (!(ratio > 0) || !Number.isFinite(ratio))
    problems.push({
      key: 'lrRatioB',
      message: (w) => `${w.name(LR_RATIO_B_OPTION)} must be a positive number (got ${ratio})`,
    });
  if (problems.length) return problems;

  const { applicable, values } = resolveMethodOptions(method, rank, given);
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || applicable.some((o) => o.key === key)) continue;
    problems.push(notApplicable(d, key));
  }
  const invalid = applicable.map((o) => checkOption(o, values[o.key]!)).filter((p): p is OptionProblem => p !== null);
  problems.push(...invalid);
  if (invalid.length === 0) problems.push(...(d.validate?.(rank, { rank, values }, applicable) ?? []));
  return problems;
}

/** An option given to a method that does not read it (in this configuration). */
function notApplicable(d: MethodDescriptor<MethodId>, key: string): MethodProblem {
  const own = d.options.find((o) => o.key === key);
  const option = own ?? allMethodOptions().find((o) => o.key === key) ?? { flag: key, label: key };
  if (own) {
    return {
      key,
      message: (w) =>
        `${w.name(option)} applies to ${d.label} only with the GraLoRA structure (${w.short(STRUCTURE_NAME, 'gralora')})`,
    };
  }
  const owners = METHOD_REGISTRY.filter((m) => m.options.some((o) => o.key === key)).map((m) => m.label);
  return {
    key,
    message: (w) =>
      `${w.name(option)} is not an option of ${d.label}${owners.length ? ` (it belongs to ${owners.join(', ')})` : ''}`,
  };
}

const STRUCTURE_NAME: OptionName = { flag: 'structure', label: 'Structure' };

/** The problems as the CLI says them: "--rank-min (9) is larger than --rank-max (3)". */
export function cliMessages(problems: MethodProblem[]): string[] {
  return problems.map((p) => p.message(CLI_OPTION_WORDING));
}

/** The problems as the studio says them, naming its fields: "GoRA r_min (20) is larger than r_max (16)." */
export function formMessages(method: string, problems: MethodProblem[]): string[] {
  const w = formOptionWording(isMethodId(method) ? methodDescriptor(method).label : '');
  return problems.map((p) => sentence(p.message(w)));
}

/** The method itself, for the problem of a method the registry does not know. */
const METHOD_NAME: OptionName = { flag: 'method', label: 'method' };

/** A method id the registry does not know, worded like the options' problems. */
export function unknownMethodProblem(method: string): MethodProblem {
  return {
    key: 'method',
    message: (w) => `${w.short(METHOD_NAME)} must be one of ${METHOD_IDS.join(', ')} (got "${method}")`,
  };
}

function sentence(s: string): string {
  const text = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
