/** Experiments for the store's experiment modules (record, reducer, persistence, actions), without a GPU or a DOM. */
import { newExperimentRecord, type ExperimentRecord } from '../../src/app/experiment-record';
import { planRuns } from '../../src/experiment/plan';
import { parseExperiment } from '../../src/experiment/schema';
import type { Experiment, ExperimentRunResult } from '../../src/experiment/types';
import type { ExperimentPlanInfo } from '../../src/worker/protocol';

/** LoRA rank 8 (the baseline) and a GraLoRA whose rank is matched, 2 rates x 2 seeds: 8 runs. */
export function experiment(patch: Record<string, unknown> = {}): Experiment {
  return parseExperiment(
    {
      name: 'tiny',
      model: 'stories260K',
      data: 'tinyshakespeare.txt',
      methods: [
        { name: 'lora', method: 'lora', rank: 8 },
        { name: 'gralora', method: 'gralora' },
      ],
      lrs: [1e-3, 3e-3],
      seeds: [0, 1],
      ...patch,
    },
    'studio',
  );
}

export function experimentRecord(id = 'x', patch: Partial<ExperimentRecord> = {}): ExperimentRecord {
  return { ...newExperimentRecord(id, experiment(), 'shared'), ...patch };
}

/** The plan the worker would send for `e` (ranks as given: the tests do not match budgets). */
export function plan(e: Experiment = experiment()): ExperimentPlanInfo {
  return {
    runs: planRuns(e).map((p) => ({
      key: p.key,
      name: p.config.name,
      method: p.config.method,
      lr: p.lr,
      seed: p.seed,
    })),
    splitSizes: { train: 80, validation: 10, test: 10 },
    budget: {
      referenceParams: 1000,
      rows: e.methods.map((m) => ({ name: m.name, params: 1000, kind: 'exact', ratio: 1, flagged: false })),
    },
    experiment: e,
  };
}

export function runResult(
  name: string,
  lr: number,
  seed: number,
  patch: Partial<ExperimentRunResult> = {},
): ExperimentRunResult {
  return {
    name,
    method: name === 'lora' ? 'lora' : 'gralora',
    lr,
    seed,
    status: 'done',
    trainableParams: 1000,
    valLoss: 3 + lr * 100 + seed * 0.01,
    testLoss: 3.1 + lr * 100 + seed * 0.01,
    valTokens: 500,
    testTokens: 500,
    adapter: `runs/${name}/lr${lr}/seed${seed}`,
    elapsedMs: 10_000,
    tokensPerSecond: 1000,
    curve: [
      { step: 0, loss: 5 },
      { step: 1, loss: 4 },
    ],
    valCurve: [],
    batchHash: `hash${seed}`,
    ranks: { 'model.layers.0.self_attn.q_proj': 8 },
    ...patch,
  };
}
