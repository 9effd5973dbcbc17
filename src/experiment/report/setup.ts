/** The experiment's setup as label/value text pairs and per-configuration rows, for both renderers. */
import type { ExperimentResults } from '../types';
import { optionsAsFileKeys } from '../schema';
import { formatLr, formatParams } from './format';

export interface SetupItem {
  label: string;
  value: string;
}

function lrList(lrs: readonly number[]): string {
  return lrs.map(formatLr).join(', ');
}

function percent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))}%`;
}

export function setupItems(results: ExperimentResults): SetupItem[] {
  const { experiment: e, splitSizes } = results;
  const t = e.train;
  const train = [
    `${t.steps} steps`,
    t.gradAccum > 1
      ? `batch ${t.batch} x ${t.gradAccum} micro-batches (effective batch ${t.batch * t.gradAccum})`
      : `batch ${t.batch}`,
    `seq len ${t.seqLen ?? 'default (128 or the model maximum)'}`,
    `warmup ${t.warmup}`,
    `weight decay ${t.weightDecay}`,
    `max grad norm ${t.maxGradNorm}`,
    `min lr ratio ${t.minLrRatio}`,
    `lr ratio B ${t.lrRatioB}`,
    `truncation ${t.truncation}`,
    `prompt join ${JSON.stringify(t.promptJoin)}`,
    `packing ${t.packing}`,
    `recompute ${t.recompute}`,
    `validation curve ${t.evalEvery === 0 ? 'off (final validation loss only)' : `every ${t.evalEvery} steps`}`,
  ];
  return [
    { label: 'Model', value: e.model },
    { label: 'Data', value: e.data },
    {
      label: 'Split',
      value: `validation ${percent(e.split.validation)}, test ${percent(e.split.test)}, split seed ${e.split.seed}`,
    },
    {
      label: 'Split sizes',
      value: `${formatParams(splitSizes.train)} train, ${formatParams(splitSizes.validation)} validation, ${formatParams(splitSizes.test)} test examples`,
    },
    { label: 'Training (every run)', value: train.join(', ') },
    { label: 'Seeds', value: e.seeds.join(', ') },
    { label: 'Learning rates', value: lrList(e.lrs) },
    { label: 'Baseline', value: results.baseline },
    {
      label: 'Reference budget',
      value: `LoRA rank ${e.referenceRank}: ${formatParams(results.referenceParams)} trainable parameters`,
    },
    {
      label: 'Exact match',
      value: e.exactMatch > 0 ? `greedy answers on at most ${e.exactMatch} test examples` : 'off',
    },
  ];
}

export interface ConfigRow {
  name: string;
  method: string;
  rank: string;
  alpha: string;
  targets: string;
  options: string;
  lrs: string;
  seeds: string;
}

export const CONFIG_HEADERS: Record<keyof ConfigRow, string> = {
  name: 'Configuration',
  method: 'Method',
  rank: 'Rank',
  alpha: 'Alpha',
  targets: 'Targets',
  options: 'Options',
  lrs: 'Learning rates',
  seeds: 'Seeds',
};

export function configRows(results: ExperimentResults): ConfigRow[] {
  const e = results.experiment;
  return e.methods.map((m) => ({
    name: m.name,
    method: m.method,
    rank: m.rankMatched ? `${m.rank} (budget-matched)` : String(m.rank),
    alpha: String(m.alpha),
    targets: m.targets.length ? m.targets.join(', ') : 'family default',
    options: Object.keys(optionsAsFileKeys(m)).length ? JSON.stringify(optionsAsFileKeys(m)) : 'none',
    // Parsing copies the shared grids into every configuration: "own" only where they differ.
    lrs: m.lrs && m.lrs.join() !== e.lrs.join() ? `${lrList(m.lrs)} (own grid)` : 'shared',
    seeds: m.seeds && m.seeds.join() !== e.seeds.join() ? `${m.seeds.join(', ')} (own seeds)` : 'shared',
  }));
}
