/**
 * Experiment records as pure decisions: the definition file the worker and the CLI read (matched ranks left to
 * match, options of other methods left out), the ETA over the whole experiment, what a resume keeps, what must be
 * loaded before it can continue, the live summary, and what a reload makes of an experiment that was running.
 */
import { describe, expect, test } from 'vitest';
import {
  definitionJson,
  experimentEta,
  experimentResumeProblem,
  interruptedExperiment,
  liveResults,
  resumeDone,
  runCount,
  storedExperiment,
} from '../../src/app/experiment-record';
import { formatChoice } from '../../src/app/checkpoints';
import { parseExperiment } from '../../src/experiment/schema';
import type { DatasetPreview, ModelCard } from '../../src/worker/protocol';
import { experiment, experimentRecord, plan, runResult } from './experiment-fixtures';

describe('definitionJson', () => {
  test('a rank to match is left out, so the worker matches it to the loaded model; a given rank stays', () => {
    const e = experiment({ reference_rank: 4 });
    const json = definitionJson(e) as { methods: Record<string, unknown>[] };
    expect(json.methods[0]).toMatchObject({ name: 'lora', rank: 8 });
    expect(json.methods[1]).not.toHaveProperty('rank');
    const back = parseExperiment(json, 'studio');
    expect(back.methods.map((m) => [m.name, m.rankMatched])).toEqual([
      ['lora', false],
      ['gralora', true],
    ]);
    // Round trip: the same grid and settings.
    expect(back.methods.map((m) => m.lrs)).toEqual(e.methods.map((m) => m.lrs));
    expect(back.seeds).toEqual(e.seeds);
    expect(back.split).toEqual(e.split);
    expect(back.train).toEqual(e.train);
    expect(back.baseline).toBe('lora');
  });

  test('options a configuration remembers from another method are left out (they would be refused as not applying)', () => {
    const e = experiment();
    e.methods[0] = { ...e.methods[0], options: { graloraK: 2, goraSteps: 8 } };
    e.methods[1] = { ...e.methods[1], options: { graloraK: 2, goraSteps: 8 } };
    const json = definitionJson(e) as { methods: Record<string, unknown>[] };
    expect(json.methods[0]).not.toHaveProperty('gralora_k');
    expect(json.methods[0]).not.toHaveProperty('gora_steps');
    expect(json.methods[1]).toHaveProperty('gralora_k', 2);
    expect(json.methods[1]).not.toHaveProperty('gora_steps');
    expect(() => parseExperiment(json, 'studio')).not.toThrow();
  });
});

test('runCount: configurations x rates x seeds, each with its own grid', () => {
  expect(runCount(experiment())).toBe(8);
  const e = experiment();
  e.methods[1] = { ...e.methods[1], lrs: [1e-3, 2e-3, 3e-3], seeds: [0, 1, 2] };
  expect(runCount(e)).toBe(2 * 2 + 3 * 3);
});

describe('experimentEta', () => {
  const T = 1_000_000;
  const current = (key: string, startedAt: number, step: number | null = null) => ({
    run: { key, name: 'lora', method: 'lora' as const, lr: 1e-3, seed: 0 },
    index: 0,
    total: 8,
    startedAt,
    step: step === null ? null : { key, step, steps: 100, loss: 3, phase: null, elapsedMs: 0 },
  });

  test('mean wall time of finished runs x runs left, less what the current run has taken', () => {
    const r = experimentRecord('x', {
      plan: plan(),
      results: [runResult('lora', 1e-3, 0), runResult('lora', 3e-3, 0)],
      runMs: [20_000, 40_000],
      current: current('gralora|0.001|0', T - 10_000),
    });
    // 6 runs left at 30 s each, the current one 10 s in.
    expect(experimentEta(r, T)).toBe(5 * 30_000 + 20_000);
  });

  test('a current run past the mean counts as about to finish (never a negative ETA)', () => {
    const r = experimentRecord('x', {
      plan: plan(),
      results: [runResult('lora', 1e-3, 0)],
      runMs: [30_000],
      current: current('lora|0.003|0', T - 90_000),
    });
    expect(experimentEta(r, T)).toBe(6 * 30_000);
  });

  test('after a reload (no wall times) the results’ own times; before any run, the current pace; else unknown', () => {
    const resumed = experimentRecord('x', {
      plan: plan(),
      results: [runResult('lora', 1e-3, 0, { elapsedMs: 12_000 }), runResult('lora', 3e-3, 0, { status: 'failed' })],
      runMs: [],
    });
    // Failed runs do not say how long a run takes; 6 left.
    expect(experimentEta(resumed, T)).toBe(6 * 12_000);
    const first = experimentRecord('x', { plan: plan(), current: current('lora|0.001|0', T - 5_000, 25) });
    // A quarter of the steps in 5 s: 20 s a run, 15 s left of this one and 7 more.
    expect(experimentEta(first, T)).toBe(7 * 20_000 + 15_000);
    expect(experimentEta(experimentRecord('x', { plan: plan() }), T)).toBeNull();
    expect(experimentEta(experimentRecord('x', { plan: plan(), current: current('lora|0.001|0', T) }), T)).toBeNull();
  });

  test('every planned run finished: 0', () => {
    const results = plan().runs.map((p) => runResult(p.name, p.lr, p.seed));
    expect(experimentEta(experimentRecord('x', { plan: plan(), results, runMs: [1] }), T)).toBe(0);
  });
});

describe('resume', () => {
  test('keeps the successful runs of the plan, one per run; failed runs get another try', () => {
    const r = experimentRecord('x', {
      plan: plan(),
      results: [
        runResult('lora', 1e-3, 0, { valLoss: 9 }),
        runResult('lora', 1e-3, 0, { valLoss: 4 }),
        runResult('gralora', 3e-3, 1, { status: 'failed', error: 'the loss became non-finite' }),
        runResult('removed', 1e-3, 0),
      ],
    });
    const done = resumeDone(r);
    expect(done.map((x) => [x.name, x.lr, x.seed, x.valLoss])).toEqual([['lora', 1e-3, 0, 4]]);
  });

  test('needs the model and the very dataset (name, contents, format) it ran on, and says which to load', () => {
    const card = { key: 'k1', name: 'stories260K' } as ModelCard;
    const preview = {
      name: 'tinyshakespeare.txt',
      digest: 'd1',
      format: 'text',
      columns: {},
      override: { format: null, columns: {} },
    } as unknown as DatasetPreview;
    const r = experimentRecord('x', {
      status: 'interrupted',
      startedAt: 1,
      modelKey: 'k1',
      modelName: 'stories260K',
      datasetName: 'tinyshakespeare.txt',
      datasetDigest: 'd1',
      datasetFormat: formatChoice(preview),
    });
    expect(experimentResumeProblem(r, null, null)).toBe('Load stories260K to resume this experiment.');
    expect(experimentResumeProblem(r, { ...card, key: 'k2', name: 'gpt2' }, preview)).toBe(
      'This experiment ran on stories260K; load it to resume (gpt2 is loaded).',
    );
    expect(experimentResumeProblem(r, card, null)).toBe('Load tinyshakespeare.txt to resume this experiment.');
    expect(experimentResumeProblem(r, card, { ...preview, name: 'other.txt' })).toContain('load it to resume');
    expect(experimentResumeProblem(r, card, { ...preview, digest: 'd2' })).toContain('is not the file');
    expect(experimentResumeProblem(r, card, { ...preview, format: 'alpaca' })).toContain('another format');
    expect(experimentResumeProblem(r, card, preview)).toBeNull();
  });

  test('a reload turns a running experiment into an interrupted one that keeps its finished runs', () => {
    const running = experimentRecord('x', {
      status: 'running',
      startedAt: 1,
      stage: 'Training',
      plan: plan(),
      results: [runResult('lora', 1e-3, 0), runResult('lora', 3e-3, 0)],
      current: {
        run: { key: 'gralora|0.001|0', name: 'gralora', method: 'gralora', lr: 1e-3, seed: 0 },
        index: 2,
        total: 8,
        startedAt: 5,
        step: null,
      },
    });
    const after = interruptedExperiment(storedExperiment(running));
    expect(after).toMatchObject({ status: 'interrupted', stage: null, current: null });
    expect(after.message).toContain('2 finished runs kept');
    expect(after.results).toHaveLength(2);
    const done = experimentRecord('y', { status: 'done' });
    expect(interruptedExperiment(done)).toBe(done);
  });
});

describe('liveResults', () => {
  test('summarizes the finished runs before the end; the final results once there', () => {
    expect(liveResults(experimentRecord('x', { plan: plan() }))).toBeNull();
    const results = [runResult('lora', 1e-3, 0), runResult('lora', 3e-3, 0), runResult('gralora', 1e-3, 0)];
    const live = liveResults(experimentRecord('x', { plan: plan(), results }))!;
    expect(live.summary.map((s) => [s.name, s.bestLr, s.nSeeds])).toEqual([
      ['lora', 1e-3, 1],
      ['gralora', 1e-3, 1],
    ]);
    expect(live.splitSizes).toEqual({ train: 80, validation: 10, test: 10 });
    const final = { ...live, best: ['lora'] };
    expect(liveResults(experimentRecord('x', { plan: plan(), results, final }))).toBe(final);
  });
});
