/** The experiment's grid as a queue of runs, and the default learning-rate grid of a method. */
import { methodDescriptor, type MethodId } from '../adapters/registry';
import type { Experiment, ExperimentMethod } from './types';

export interface PlannedRun {
  /** "<name>|<lr>|<seed>": identifies the run across a reload. */
  key: string;
  config: ExperimentMethod;
  lr: number;
  seed: number;
  /** The run's adapter folder, relative to the experiment's output: runs/<name>/lr<lr>/seed<seed>. */
  adapter: string;
}

/** Two significant digits: grid points read as 0.00033, not 0.000333333. */
function twoDigits(x: number): number {
  return Number(x.toPrecision(2));
}

/**
 * Log-spaced rates around the method's usual one (or `centre`), a factor of 3 apart: 3 points give
 * usual/3, usual, 3·usual. A tuned rate is most of the difference between LoRA variants, so every method gets its own.
 */
export function defaultLrGrid(method: MethodId, centre?: number, points = 3): number[] {
  const mid = centre ?? methodDescriptor(method).usualLr;
  return Array.from({ length: points }, (_, i) => twoDigits(mid * 3 ** (i - (points - 1) / 2)));
}

export function runKey(name: string, lr: number, seed: number): string {
  return `${name}|${lr}|${seed}`;
}

/** The folder name of a rate: JavaScript's own number text (0.003 -> "lr0.003", 1e-7 -> "lr1e-7"). */
export function runFolder(name: string, lr: number, seed: number): string {
  return `runs/${name}/lr${String(lr)}/seed${seed}`;
}

/**
 * Every run, seed by seed: the first seed of every configuration and rate comes before the second seed of any,
 * so a stopped experiment already compares every configuration on the seeds it finished.
 */
export function planRuns(e: Experiment): PlannedRun[] {
  const seeds = [...new Set(e.methods.flatMap((m) => m.seeds ?? e.seeds))].sort((a, b) => a - b);
  const runs: PlannedRun[] = [];
  for (const seed of seeds)
    for (const config of e.methods) {
      if (!(config.seeds ?? e.seeds).includes(seed)) continue;
      for (const lr of config.lrs ?? e.lrs)
        runs.push({ key: runKey(config.name, lr, seed), config, lr, seed, adapter: runFolder(config.name, lr, seed) });
    }
  return runs;
}
