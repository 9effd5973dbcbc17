/**
 * Budget matching: every configuration's trainable parameters against a reference LoRA (the experiment's reference
 * rank on the baseline's targets), computed from the model's shapes alone. Configurations whose rank is not given
 * get the rank that comes closest; any outside ±5% is flagged.
 */
import { methodDescriptor, plannedModuleParameters, resolveMethodOptions } from '../adapters/registry';
import type { OptionValues } from '../adapters/options';
import { resolveTargets } from '../engine/methods';
import type { ModelSpec } from '../model/config';
import { selectTargets } from '../model/layout';
import type { Experiment, ExperimentMethod } from './types';

/** How far from the reference a configuration may be and still count as the same budget. */
export const BUDGET_TOLERANCE = 0.05;

/** Σ (in + out) over a configuration's target matrices: a rank-1 LoRA's parameters. */
function rankOneParameters(spec: ModelSpec, targets: string[]): number {
  return selectTargets(spec, resolveTargets(spec, targets)).reduce((n, m) => n + m.in + m.out, 0);
}

function graloraShape(m: ExperimentMethod, rank: number): { k: number; hybrid: number } {
  const { values } = resolveMethodOptions(m.method, rank, m.options as OptionValues);
  return { k: Number(values.graloraK ?? 1), hybrid: Number(values.hybridRank ?? 0) };
}

function usesBlocks(m: ExperimentMethod): boolean {
  return m.method === 'gralora' || m.options.structure === 'gralora';
}

/**
 * Trainable parameters before training (the registry's plannedModuleParameters): exact for LoRA, rsLoRA, GraLoRA
 * ((r + h)(in + out), whatever k) and the methods that keep their rank; the budget for the methods that allocate
 * ranks under it (GoRA, GeLoRA, AdaLoRA: their exact count comes with the run).
 */
export function plannedParameters(spec: ModelSpec, m: ExperimentMethod): { params: number; kind: 'exact' | 'budget' } {
  const modules = selectTargets(spec, resolveTargets(spec, m.targets));
  const params = plannedModuleParameters(m.method, m.rank, m.options as OptionValues, modules);
  return { params, kind: methodDescriptor(m.method).allocatesRanks ? 'budget' : 'exact' };
}

/** The reference: a LoRA of the reference rank on the baseline's targets. */
export function referenceParameters(spec: ModelSpec, e: Experiment): number {
  const baseline = e.methods.find((m) => m.name === e.baseline);
  return e.referenceRank * rankOneParameters(spec, baseline?.targets ?? []);
}

/** The rank whose parameter count is closest to `target` (a multiple of GraLoRA's k, net of its hybrid part). */
function matchedRank(spec: ModelSpec, m: ExperimentMethod, target: number): number {
  const perRank = rankOneParameters(spec, m.targets);
  const ideal = target / perRank;
  if (!usesBlocks(m)) return Math.max(1, Math.round(ideal));
  const { k, hybrid } = graloraShape(m, Math.max(1, Math.round(ideal)));
  return Math.max(k, Math.round((ideal - hybrid) / k) * k);
}

/** The experiment with every rank-to-match configuration given the rank closest to the reference budget. */
export function matchBudget(spec: ModelSpec, e: Experiment): Experiment {
  const reference = referenceParameters(spec, e);
  return {
    ...e,
    methods: e.methods.map((m) => (m.rankMatched ? { ...m, rank: matchedRank(spec, m, reference) } : m)),
  };
}

export interface BudgetRow {
  name: string;
  params: number;
  kind: 'exact' | 'budget';
  /** params / the reference's. */
  ratio: number;
  flagged: boolean;
}

export function withinBudget(ratio: number): boolean {
  return Math.abs(ratio - 1) <= BUDGET_TOLERANCE + 1e-12;
}

/** Each configuration's planned count against the reference, flagged outside ±5%. */
export function budgetTable(spec: ModelSpec, e: Experiment): { referenceParams: number; rows: BudgetRow[] } {
  const referenceParams = referenceParameters(spec, e);
  const rows = e.methods.map((m) => {
    const { params, kind } = plannedParameters(spec, m);
    const ratio = params / referenceParams;
    return { name: m.name, params, kind, ratio, flagged: !withinBudget(ratio) };
  });
  return { referenceParams, rows };
}
