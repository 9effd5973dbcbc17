/** The experiment's three-way split: a function of the split seed alone, the same for every run. */
import { Rng } from '../util/random';
import type { ExperimentSplit } from './types';

export interface ThreeWaySplit<T> {
  train: T[];
  validation: T[];
  test: T[];
}

/**
 * A seeded shuffle picks round(n·validation) validation items, then round(n·test) test items (at least one each);
 * the rest train. Every part keeps the file's order. Too few items for three non-empty parts is an error.
 */
export function splitExperiment<T>(items: T[], split: ExperimentSplit): ThreeWaySplit<T> {
  const n = items.length;
  const validation = Math.max(1, Math.round(n * split.validation));
  const test = Math.max(1, Math.round(n * split.test));
  if (n - validation - test < 1)
    throw new Error(
      `${n} examples are too few for a train, a validation and a test split (${validation} validation and ${test} test examples would leave none to train on)`,
    );
  const order = new Rng(split.seed).shuffle([...Array(n).keys()]);
  const part = new Uint8Array(n); // 0 train, 1 validation, 2 test
  order.slice(0, validation).forEach((i) => (part[i] = 1));
  order.slice(validation, validation + test).forEach((i) => (part[i] = 2));
  return {
    train: items.filter((_, i) => part[i] === 0),
    validation: items.filter((_, i) => part[i] === 1),
    test: items.filter((_, i) => part[i] === 2),
  };
}
