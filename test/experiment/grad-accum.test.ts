/** train.grad_accum in the experiment file: parsed and checked, written back, carried into every run and the scripts. */
import { describe, expect, it } from 'vitest';
import { experimentPeftPython } from '../../src/experiment/peft-python';
import { planRuns } from '../../src/experiment/plan';
import { setupItems } from '../../src/experiment/report/setup';
import { runOptions } from '../../src/experiment/runner';
import { experimentToJson, parseExperiment, type ExperimentError } from '../../src/experiment/schema';
import type { ExperimentResults } from '../../src/experiment/types';
import { CLI_WORDING } from '../../src/engine/wording';

const FILE = {
  model: 'path/to/model',
  data: 'path/to/data.jsonl',
  train: { steps: 6, batch: 2, grad_accum: 4, seq_len: 32 },
  methods: [{ name: 'lora-r4', method: 'lora', rank: 4 }],
  lrs: [0.001],
  seeds: [0],
};

function problemsOf(json: unknown): string[] {
  try {
    parseExperiment(json, 'cli');
  } catch (e) {
    return (e as ExperimentError).problems;
  }
  return [];
}

describe('train.grad_accum', () => {
  it('defaults to 1, is read and written back as grad_accum, and reaches every run', () => {
    const { grad_accum: _, ...noAccum } = FILE.train;
    expect(parseExperiment({ ...FILE, train: noAccum }, 'cli').train.gradAccum).toBe(1);
    const e = parseExperiment(FILE, 'cli');
    expect(e.train).toMatchObject({ batch: 2, gradAccum: 4 });
    const json = experimentToJson(e) as { train: Record<string, unknown> };
    expect(json.train).toMatchObject({ batch: 2, grad_accum: 4 });
    expect(parseExperiment(JSON.parse(JSON.stringify(json)), 'cli').train).toEqual(e.train);
    const data = { train: [], validation: [], test: [], format: 'text' as const, seq: 32 };
    const o = runOptions(e, planRuns(e)[0], data, CLI_WORDING);
    expect(o).toMatchObject({ batch: 2, gradAccum: 4, steps: 6 });
  });

  it('must be an integer >= 1, named by its key', () => {
    for (const bad of [0, -1, 1.5, '2']) {
      expect(problemsOf({ ...FILE, train: { ...FILE.train, grad_accum: bad } })).toEqual([
        `train.grad_accum must be an integer >= 1 (got ${JSON.stringify(bad)})`,
      ]);
    }
  });

  it('the report states the effective batch; experiment_peft.py takes grad_accum micro-batches per step', () => {
    const e = parseExperiment(FILE, 'cli');
    const results = { experiment: e, splitSizes: { train: 10, validation: 2, test: 2 }, baseline: 'lora-r4' };
    const training = setupItems(results as unknown as ExperimentResults).find((i) => i.label.startsWith('Training'));
    expect(training?.value).toContain('batch 2 x 4 micro-batches (effective batch 8)');
    const one = parseExperiment({ ...FILE, train: { ...FILE.train, grad_accum: 1 } }, 'cli');
    const plain = setupItems({ ...results, experiment: one } as unknown as ExperimentResults);
    expect(plain.find((i) => i.label.startsWith('Training'))?.value).toContain('batch 2,');
    const script = experimentPeftPython({
      experimentName: 'x',
      command: 'run',
      targets: { gpt2: { default: [], all_linear: [] }, llama: { default: [], all_linear: [] } },
      referenceParams: 1,
      budgetTolerance: 0.05,
      minPeft: { lora: '0.1', gralora: '0.1', adalora: '0.1' },
      goraInitNote: '',
    });
    // Files written before the key existed train one micro-batch per step; each micro-batch is fingerprinted in turn.
    expect(script).toContain('self.grad_accum = int(t.get("grad_accum") or 1)');
    expect(script).toMatch(
      /for _ in range\(self\.grad_accum\):\n\s+micro = stream\.next\(\)\n\s+fingerprint = fold_hash/,
    );
  });
});
