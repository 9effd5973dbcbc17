/**
 * Run configuration checks shared by the form (main thread) and the worker; pure. The method's own options are
 * checked by the method registry and worded with the form's field names.
 */
import type { AdapterStructure, Structure } from '../adapters/options';
import { formMessages, methodDescriptor, methodProblems, resolveMethodOptions } from '../adapters/registry';
import type { MethodId, ModelCard, RunConfig } from './protocol';

export type RankConfig = Pick<RunConfig, 'method' | 'rank' | 'extras'>;

/** GoRA and GeLoRA choose a rank per module under the budget of a uniform rank-r LoRA. */
export function allocatesRanks(method: MethodId): boolean {
  return methodDescriptor(method).allocatesRanks;
}

/** The method's options as the run will read them: what the draft holds, else the defaults. */
export function resolvedExtras(c: RankConfig) {
  return resolveMethodOptions(c.method, c.rank, { ...c.extras }).values;
}

/** The adapter structure: GraLoRA's blocks, or dense B·A (GoRA and GeLoRA may use either), DoRA's, AdaLoRA's. */
export function structureOf(c: RankConfig): AdapterStructure | 'full' {
  const recipe = methodDescriptor(c.method).recipe;
  if (!recipe) return 'full';
  return (resolvedExtras(c).structure as Structure | undefined) ?? recipe.structure;
}

export function hybridRankOf(c: RankConfig): number {
  return structureOf(c) === 'gralora' ? Number(resolvedExtras(c).hybridRank ?? 0) : 0;
}

/** k as the engine picks it when none is given: 2 up to total rank 32, 4 from 64. */
export function defaultKOf(c: RankConfig): number {
  return Number(resolveMethodOptions(c.method, c.rank, { ...c.extras, graloraK: undefined }).values.graloraK ?? 1);
}

export function graloraKOf(c: RankConfig): number {
  return Number(resolvedExtras(c).graloraK ?? 1);
}

const int = (v: number, min: number) => Number.isInteger(v) && v >= min;

/** Micro-batches per optimizer step (runs saved before the setting existed: 1). */
export function gradAccumOf(c: Pick<RunConfig, 'gradAccum'>): number {
  return c.gradAccum ?? 1;
}

/** The checks trainRun would make, phrased for the form instead of the CLI. */
export function configProblem(c: RunConfig, card: ModelCard): string | null {
  if (!int(c.steps, 1)) return 'Steps must be a whole number of at least 1.';
  if (!int(c.batch, 1)) return 'Batch must be a whole number of at least 1.';
  if (!int(gradAccumOf(c), 1)) return 'Gradient accumulation must be a whole number of micro-batches (at least 1).';
  if (!int(c.seq, 2)) return 'Sequence length must be a whole number of at least 2.';
  if (c.seq > card.maxPositions)
    return `Sequence length ${c.seq} is longer than this model's context (${card.maxPositions} tokens).`;
  if (!(c.lr > 0)) return 'The learning rate must be positive.';
  if (!int(c.warmupSteps, 0)) return 'Warmup must be a whole number of steps (0 for none).';
  if (!int(c.valExamples, 0)) return 'Validation examples must be a whole number (0 for none).';
  if (!int(c.evalEvery, 0)) return 'Evaluate-every must be a whole number of steps (0 = start and end only).';
  if (c.method === 'full') return null;
  if (!int(c.rank, 1))
    return `${allocatesRanks(c.method) ? 'r_ref (the budget rank)' : 'Rank'} must be a whole number of at least 1.`;
  if (!(c.alpha > 0)) return 'Alpha must be positive.';
  const problems = methodProblems(c.method, { rank: c.rank, alpha: c.alpha, given: { ...c.extras } });
  return problems.length ? formMessages(c.method, problems)[0] : null;
}
