import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import { budgetTable, matchBudget, plannedParameters } from '../../src/experiment/budget';
import { defaultLrGrid, planRuns } from '../../src/experiment/plan';
import { experimentToJson, type ExperimentError, parseExperiment } from '../../src/experiment/schema';
import { splitExperiment } from '../../src/experiment/split';
import { bestLearningRate, bestOf, summarize } from '../../src/experiment/summary';
import type { ExperimentRunResult } from '../../src/experiment/types';

// The shape other tools write (issue contract): accepted exactly as written.
const CONTRACT = {
  model: 'path/to/model',
  data: 'path/to/data.jsonl',
  split: { validation: 0.15, test: 0.15, seed: 0 },
  train: { steps: 6, batch: 4, seq_len: 64, warmup: 0 },
  methods: [
    { name: 'lora-r4', method: 'lora', rank: 4, alpha: 8, targets: 'all-linear' },
    { name: 'gralora-r4', method: 'gralora', rank: 4, alpha: 8, gralora_k: 2, targets: 'all-linear' },
  ],
  lrs: [0.003, 0.01],
  seeds: [0, 1],
  baseline: 'lora-r4',
};

const spec = parseConfig(JSON.parse(readFileSync('test/fixtures/hf-golden/models/qwen2/config.json', 'utf8')));

describe('experiment file', () => {
  it('accepts the contract shape and fills every default', () => {
    const e = parseExperiment(CONTRACT, 'cli');
    expect(e.methods.map((m) => [m.name, m.method, m.rank, m.alpha, m.targets])).toEqual([
      ['lora-r4', 'lora', 4, 8, ['all-linear']],
      ['gralora-r4', 'gralora', 4, 8, ['all-linear']],
    ]);
    expect(e.methods[1].options).toEqual({ graloraK: 2 });
    expect(e.train).toMatchObject({ steps: 6, batch: 4, seqLen: 64, warmup: 0, truncation: 'keep-answer' });
    expect(e.methods.every((m) => m.lrs!.join() === '0.003,0.01' && m.seeds!.join() === '0,1')).toBe(true);
    expect(e.baseline).toBe('lora-r4');
    expect(e.referenceRank).toBe(4);
    // Written back fully resolved (every option the method reads, defaults included), it parses to the same runs.
    const json = experimentToJson(e) as { methods: Record<string, unknown>[] };
    expect(json.methods[1]).toMatchObject({ gralora_k: 2, hybrid_r: 0, lrs: [0.003, 0.01], seeds: [0, 1] });
    const again = parseExperiment(JSON.parse(JSON.stringify(json)), 'cli');
    expect(again.methods[1].options).toEqual({ graloraK: 2, hybridRank: 0 });
    expect(planRuns(again)).toEqual(
      planRuns(e).map((r) => ({ ...r, config: again.methods.find((m) => m.name === r.config.name) })),
    );
    expect(experimentToJson(again)).toEqual(json);
  });

  it('per-method lrs and seeds override the shared lists', () => {
    const e = parseExperiment(
      { ...CONTRACT, methods: [{ ...CONTRACT.methods[0], lrs: [0.001], seeds: [5] }, CONTRACT.methods[1]] },
      'cli',
    );
    expect(planRuns(e).map((r) => r.key)).toEqual([
      'gralora-r4|0.003|0',
      'gralora-r4|0.01|0',
      'gralora-r4|0.003|1',
      'gralora-r4|0.01|1',
      'lora-r4|0.001|5',
    ]);
    expect(planRuns(e)[0].adapter).toBe('runs/gralora-r4/lr0.003/seed0');
  });

  it('lists every problem at once, naming the key', () => {
    const bad = {
      ...CONTRACT,
      train: { ...CONTRACT.train, stepz: 3, batch: 0 },
      methods: [
        { name: 'a', method: 'lora', rank: 4, gralora_k: 2 },
        { name: 'b', method: 'gralora', rank: 6, gralora_k: 4 },
        { name: 'a', method: 'vera' },
      ],
      lrs: [0.01, -1],
      baseline: 'nope',
    };
    let problems: string[] = [];
    try {
      parseExperiment(bad, 'cli');
    } catch (e) {
      problems = (e as ExperimentError).problems;
    }
    const text = problems.join('\n');
    expect(text).toMatch(/unknown key "train\.stepz"/);
    expect(text).toMatch(/train\.batch must be an integer >= 1/);
    expect(text).toMatch(/lrs\[1\] must be positive/);
    expect(text).toMatch(
      /methods\[2\]\.method must be one of lora, rslora, gora, gralora, gelora, dora, pissa, loraga, adalora, full \(got "vera"\)/,
    );
    expect(text).toMatch(/methods "a": gralora_k is not an option of LoRA \(it belongs to .*GraLoRA/);
    expect(text).toMatch(/methods "b": rank 6 must be divisible by gralora_k 4/);
    expect(text).toMatch(/baseline "nope" is not one of the methods' names/);
    // The studio names its fields, not the file's keys, for method options.
    expect(() =>
      parseExperiment({ ...CONTRACT, methods: [{ name: 'b', method: 'gralora', rank: 6, gralora_k: 4 }] }, 'studio'),
    ).toThrow(/GraLoRA rank 6 must be divisible by k 4/);
    expect(() => parseExperiment({ ...CONTRACT, methods: [{ name: 'f', method: 'full' }] }, 'cli')).toThrow(
      /full fine-tuning has no adapter budget/,
    );
  });

  it('the default rate grid is log-spaced around the method usual rate', () => {
    expect(defaultLrGrid('lora')).toEqual([0.00033, 0.001, 0.003]);
    expect(defaultLrGrid('lora', 2e-4, 5)).toEqual([0.000022, 0.000067, 0.0002, 0.0006, 0.0018]);
  });
});

describe('split', () => {
  it('is a function of the split seed alone, disjoint and complete', () => {
    const items = [...Array(40).keys()];
    const a = splitExperiment(items, { validation: 0.15, test: 0.2, seed: 3 });
    expect([a.train.length, a.validation.length, a.test.length]).toEqual([26, 6, 8]);
    expect([...a.train, ...a.validation, ...a.test].sort((x, y) => x - y)).toEqual(items);
    expect(splitExperiment(items, { validation: 0.15, test: 0.2, seed: 3 })).toEqual(a);
    expect(splitExperiment(items, { validation: 0.15, test: 0.2, seed: 4 }).test).not.toEqual(a.test);
    expect(() => splitExperiment([1, 2], { validation: 0.1, test: 0.1, seed: 0 })).toThrow(/too few/);
  });
});

describe('budget matching', () => {
  it('matches an unranked configuration to the reference LoRA within 5%, and flags what is not', () => {
    const e = parseExperiment(
      {
        ...CONTRACT,
        reference_rank: 8,
        methods: [
          { name: 'lora', method: 'lora', rank: 8, targets: 'all-linear' },
          { name: 'gralora', method: 'gralora', gralora_k: 2, targets: 'all-linear' },
          { name: 'lora-qv', method: 'lora', targets: ['q_proj', 'v_proj'] },
          { name: 'lora-r2', method: 'lora', rank: 2, targets: 'all-linear' },
        ],
        baseline: 'lora',
      },
      'cli',
    );
    const matched = matchBudget(spec, e);
    const table = budgetTable(spec, matched);
    const reference = plannedParameters(spec, matched.methods[0]).params;
    expect(table.referenceParams).toBe(reference);
    const byName = Object.fromEntries(table.rows.map((r) => [r.name, r]));
    expect(byName.gralora.ratio).toBeCloseTo(1, 10);
    // q,v only: a higher rank buys the same budget.
    expect(matched.methods[2].rank).toBeGreaterThan(8);
    expect(Math.abs(byName['lora-qv'].ratio - 1)).toBeLessThanOrEqual(0.05 + 1e-9 + 1 / matched.methods[2].rank);
    expect(byName['lora-r2']).toMatchObject({ flagged: true });
    expect(byName['lora-r2'].ratio).toBeCloseTo(0.25, 10);
  });
});

function run(name: string, lr: number, seed: number, val: number, test: number, params = 1000): ExperimentRunResult {
  return {
    name,
    method: name.startsWith('gralora') ? 'gralora' : 'lora',
    lr,
    seed,
    status: 'done',
    trainableParams: params,
    valLoss: val,
    testLoss: test,
    valTokens: 100,
    testTokens: 100,
    adapter: `runs/${name}/lr${lr}/seed${seed}`,
    elapsedMs: 1,
    tokensPerSecond: 1,
    curve: [],
    valCurve: [],
    batchHash: `h${seed}`,
    ranks: {},
  };
}

describe('selection and statistics', () => {
  const e = parseExperiment(CONTRACT, 'cli');

  it('picks the rate on validation loss only, even when the test split would pick another', () => {
    // At 0.003 the validation loss is lower; at 0.01 the test loss is lower.
    const runs = [0, 1].flatMap((seed) => [
      run('lora-r4', 0.003, seed, 2.0 + seed * 0.01, 2.5),
      run('lora-r4', 0.01, seed, 2.2 + seed * 0.01, 1.5),
    ]);
    expect(bestLearningRate(runs)).toBe(0.003);
    const results = summarize(e, runs, { referenceParams: 1000, splitSizes: { train: 1, validation: 1, test: 1 } });
    expect(results.summary[0]).toMatchObject({ name: 'lora-r4', bestLr: 0.003, testLossMean: 2.5 });
  });

  it('a rate where a seed diverged is not chosen over rates where every seed finished', () => {
    const runs = [
      run('lora-r4', 0.01, 0, 1.0, 1.0),
      { ...run('lora-r4', 0.01, 1, 0, 0), status: 'failed' as const, valLoss: null, testLoss: null },
      run('lora-r4', 0.003, 0, 2, 2),
      run('lora-r4', 0.003, 1, 2, 2),
    ];
    expect(bestLearningRate(runs)).toBe(0.003);
  });

  it('pairs seeds with the baseline at its own best rate, and words only what the interval resolves', () => {
    const loras = [0, 1, 2].flatMap((s) => [
      run('lora-r4', 0.003, s, 2.0, 2.0 + s * 0.1),
      run('lora-r4', 0.01, s, 2.1, 0),
    ]);
    const e3 = parseExperiment({ ...CONTRACT, seeds: [0, 1, 2] }, 'cli');
    const clear = [0, 1, 2].flatMap((s) => [
      run('gralora-r4', 0.01, s, 1.9, 2.0 + s * 0.1 - 0.05 - 0.001 * s),
      run('gralora-r4', 0.003, s, 1.95, 9),
    ]);
    const r = summarize(e3, [...loras, ...clear], {
      referenceParams: 1000,
      splitSizes: { train: 1, validation: 1, test: 1 },
    });
    const g = r.summary.find((s) => s.name === 'gralora-r4')!;
    expect(g.bestLr).toBe(0.01);
    expect(g.vsBaseline!.diffMean).toBeCloseTo(-0.051, 10);
    expect(g.vsBaseline!.diffCi95[1]).toBeLessThan(0);
    expect(g.verdict).toMatch(/^gralora-r4 lower than lora-r4 by 0\.051 ± 0\.002 nats \(p < 0\.001\)$/);
    expect(r.best).toEqual(['gralora-r4']);

    const noisy = [0, 1, 2].map((s) => run('gralora-r4', 0.01, s, 1.9, 2.0 + s * 0.1 + [0.2, -0.25, 0.01][s]));
    const n = summarize(e3, [...loras, ...noisy], {
      referenceParams: 1000,
      splitSizes: { train: 1, validation: 1, test: 1 },
    });
    expect(n.summary.find((s) => s.name === 'gralora-r4')!.verdict).toBe(
      'no difference from lora-r4 resolved with 3 seeds',
    );
    expect(n.best).toEqual([]);
  });

  it('no best badge for a winner outside the budget', () => {
    const base = {
      vsBaseline: null,
      verdict: '',
      lrCurve: [],
      nSeeds: 3,
      valLossMean: 1,
      bestLr: 1,
      method: 'lora' as const,
    };
    const summary = [
      {
        ...base,
        name: 'lora',
        testLossMean: 2,
        testLossCi95: [1.9, 2.1] as [number, number],
        trainableParams: 100,
        budgetRatio: 1,
      },
      {
        ...base,
        name: 'gora',
        method: 'gora' as const,
        testLossMean: 1.5,
        testLossCi95: [1.4, 1.6] as [number, number],
        trainableParams: 84,
        budgetRatio: 0.84,
        vsBaseline: { diffMean: -0.5, diffCi95: [-0.6, -0.4] as [number, number], pValue: 0.001, nPairs: 3 },
      },
    ];
    expect(bestOf(summary, 'lora')).toEqual([]);
    expect(bestOf([summary[0], { ...summary[1], budgetRatio: 1.02 }], 'lora')).toEqual(['gora']);
  });
});
