/** Run configuration checks shared by the form (main thread) and the worker; pure. */
import { GELORA_DEFAULTS, MAX_SAMPLES as GELORA_MAX_SAMPLES } from '../adapters/gelora/config';
import { GORA_DEFAULTS } from '../adapters/gora/config';
import { defaultGraloraK } from '../adapters/gralora/config';
import type { MethodId, ModelCard, RunConfig } from './protocol';

export type RankConfig = Pick<RunConfig, 'method' | 'rank' | 'extras'>;

/** GoRA and GeLoRA choose a rank per module under the budget of a uniform rank-r LoRA. */
export function allocatesRanks(method: MethodId): boolean {
  return method === 'gora' || method === 'gelora';
}

/** The adapter structure: GraLoRA's blocks, or dense B·A (GoRA and GeLoRA may use either). */
export function structureOf(c: RankConfig): 'dense' | 'gralora' | 'full' {
  if (c.method === 'full') return 'full';
  if (c.method === 'gralora') return 'gralora';
  if (allocatesRanks(c.method) && c.extras?.structure === 'gralora') return 'gralora';
  return 'dense';
}

export function hybridRankOf(c: RankConfig): number {
  return structureOf(c) === 'gralora' ? c.extras?.hybridRank ?? 0 : 0;
}

/** k as the engine picks it when none is given: 2 up to total rank 32, 4 from 64. */
export function defaultKOf(c: RankConfig): number {
  return defaultGraloraK(c.rank + hybridRankOf(c), c.rank);
}

export function graloraKOf(c: RankConfig): number {
  return c.extras?.graloraK ?? defaultKOf(c);
}

const int = (v: number, min: number) => Number.isInteger(v) && v >= min;

/** The checks trainRun would make, phrased for the form instead of the CLI. */
export function configProblem(c: RunConfig, card: ModelCard): string | null {
  if (!int(c.steps, 1)) return 'Steps must be a whole number of at least 1.';
  if (!int(c.batch, 1)) return 'Batch must be a whole number of at least 1.';
  if (!int(c.seq, 2)) return 'Sequence length must be a whole number of at least 2.';
  if (c.seq > card.maxPositions) return `Sequence length ${c.seq} is longer than this model's context (${card.maxPositions} tokens).`;
  if (!(c.lr > 0)) return 'The learning rate must be positive.';
  if (!int(c.warmupSteps, 0)) return 'Warmup must be a whole number of steps (0 for none).';
  if (!int(c.valExamples, 0)) return 'Validation examples must be a whole number (0 for none).';
  if (!int(c.evalEvery, 0)) return 'Evaluate-every must be a whole number of steps (0 = start and end only).';
  if (c.method === 'full') return null;
  if (!int(c.rank, 1)) return `${allocatesRanks(c.method) ? 'r_ref (the budget rank)' : 'Rank'} must be a whole number of at least 1.`;
  if (!(c.alpha > 0)) return 'Alpha must be positive.';
  return goraProblem(c) ?? geloraProblem(c) ?? graloraProblem(c);
}

function goraProblem(c: RunConfig): string | null {
  if (c.method !== 'gora') return null;
  const x = c.extras ?? {};
  const rMin = x.rankMin ?? GORA_DEFAULTS.rankMin;
  const rMax = x.rankMax ?? GORA_DEFAULTS.rankMax;
  if (!int(rMin, 1)) return `GoRA r_min must be a whole number of at least 1 (got ${rMin}).`;
  if (!int(rMax, 1)) return `GoRA r_max must be a whole number of at least 1 (got ${rMax}).`;
  if (rMin > rMax) return `GoRA r_min (${rMin}) is larger than r_max (${rMax}): no rank fits both bounds.`;
  const n = x.goraSteps ?? GORA_DEFAULTS.steps;
  if (!int(n, 1)) return `GoRA N (gradient batches) must be a whole number of at least 1 (got ${n}).`;
  const gamma = x.goraGamma ?? GORA_DEFAULTS.gamma;
  if (!(gamma >= 0) || !Number.isFinite(gamma)) return `GoRA γ must be a number of at least 0 (got ${gamma}); 0 starts B at zero, like LoRA.`;
  return null;
}

function geloraProblem(c: RunConfig): string | null {
  if (c.method !== 'gelora') return null;
  const x = c.extras ?? {};
  const samples = x.geloraSamples ?? GELORA_DEFAULTS.samples;
  if (!int(samples, 3) || samples > GELORA_MAX_SAMPLES) {
    return `GeLoRA samples must be a whole number from 3 to ${GELORA_MAX_SAMPLES} (got ${samples}): TwoNN needs two neighbours per point, and the ${GELORA_MAX_SAMPLES}² distance matrix is the most one GPU buffer holds.`;
  }
  const rMax = x.rankMax ?? GELORA_DEFAULTS.rankMax;
  if (!int(rMax, 1)) return `GeLoRA r_max must be a whole number of at least 1 (got ${rMax}).`;
  return null;
}

function graloraProblem(c: RunConfig): string | null {
  if (structureOf(c) !== 'gralora') return null;
  const h = hybridRankOf(c);
  if (!Number.isInteger(h) || h < 0) return `The hybrid rank must be a whole number of at least 0 (got ${h}).`;
  const k = graloraKOf(c);
  if (!int(k, 1)) return `GraLoRA k must be a whole number of at least 1 (got ${k}).`;
  // Allocating methods round their ranks to multiples of k themselves; a uniform rank must divide up front.
  if (c.method === 'gralora' && c.rank % k !== 0) {
    return `GraLoRA rank ${c.rank} is not divisible by k = ${k}: each of the ${k}×${k} blocks gets rank r/k. Use a multiple of ${k}, or a k that divides ${c.rank}.`;
  }
  return null;
}
