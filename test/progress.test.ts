/**
 * A run card's progress (app/progress.ts, RunProgress.tsx): the phase text consistent with the status, step and
 * validation times measured from the steps, the queue's ETA over every queued run with its validation passes, and
 * the supervised tokens a run trains on (padding and prompts excluded).
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it, vi } from 'vitest';
import {
  evalMs,
  evalsAhead,
  isPackedFormat,
  queueEta,
  remainingMs,
  runPhase,
  stepMs,
  trainTokens,
  validationBatches,
} from '../src/app/progress';
import type { RunRecord } from '../src/app/run-record';
import type { DataFit, StepPoint } from '../src/worker/protocol';
import { config, progress, record } from './app/fixtures';

const state: Record<string, unknown> = {};
vi.mock('../src/app/store', () => ({ useStudio: (select: (s: unknown) => unknown) => select(state) }));

/** Steps 0..n-1, `ms` apart; `extra` adds time before a step (an evaluation sat before it). */
function steps(n: number, ms: number, extra: Record<number, number> = {}): StepPoint[] {
  let t = 0;
  return Array.from({ length: n }, (_, step) => {
    t += ms + (extra[step] ?? 0);
    return { step, loss: 1, lr: 1e-3, gradNorm: 1, tokensPerSecond: 1, tokens: step, elapsedMs: t };
  });
}

function training(id: string, done: number, patch: Partial<RunRecord> = {}): RunRecord {
  return record(id, {
    status: 'training',
    stage: 'Training',
    modelKey: 'm',
    points: steps(done, 100),
    progress: { stage: 'Training', step: done, steps: 40, etaMs: 0, gpuBytes: 0 },
    ...patch,
  });
}

const fit = (patch: Partial<DataFit> = {}): DataFit => ({
  seq: 64,
  truncation: 'keep-answer',
  examples: 100,
  truncated: 0,
  dropped: 0,
  tokens: 4000,
  supervisedTokens: 1000,
  problem: null,
  ...patch,
});

describe('the phase text matches the status', () => {
  it('queued: waiting; preparing: the method phase or the stage', () => {
    expect(runPhase(record('a', { status: 'queued' }))).toEqual({ kind: 'waiting', text: 'Waiting for the GPU' });
    expect(runPhase(record('a', { status: 'preparing', stage: 'Tokenizing tiny.txt' }))).toEqual({
      kind: 'preparing',
      text: 'Tokenizing tiny.txt',
    });
    const prepare = { phase: 'Building the training graph and compiling kernels', done: 0, total: 1 };
    expect(runPhase(record('a', { status: 'preparing', stage: 'x', prepare }))?.text).toBe(prepare.phase);
  });

  it("training: the stage the worker sends with the status (never the preparation's), else the step's", () => {
    const phase = 'Building the training graph and compiling kernels';
    const run = record('a', { status: 'training', stage: 'Training', prepare: { phase, done: 0, total: 1 } });
    expect(runPhase(run)).toEqual({ kind: 'training', text: 'Training' });
    expect(runPhase({ ...run, stage: null, progress: progress(3, 'Measuring the final validation loss') })).toEqual({
      kind: 'training',
      text: 'Measuring the final validation loss',
    });
    expect(runPhase({ ...run, stage: 'Stopping after the current step…' })?.text).toBe(
      'Stopping after the current step…',
    );
  });

  it('finished runs have no phase', () => {
    expect(runPhase(record('a', { status: 'done' }))).toBeNull();
  });
});

describe('timing from the steps', () => {
  it('a step: the median gap, evaluations and checkpoints left out', () => {
    expect(stepMs(record('a', { points: steps(1, 100) }))).toBeNull();
    expect(stepMs(record('a', { points: steps(12, 100, { 6: 900 }) }))).toBe(100);
  });

  it('a validation pass: measured where one sat between two steps', () => {
    const run = record('a', { points: steps(12, 100, { 11: 500 }), evals: [{ step: 10, tokens: 0, loss: 1 }] });
    expect(evalMs(run, 100)).toBe(500);
  });

  it('else estimated: a forward pass (a third of a step) per validation batch', () => {
    const c = config('a', { valExamples: 10, batch: 4 });
    expect(validationBatches(c, null)).toBe(3);
    // Half the data at most is held out: 4 examples -> 2 held out -> 1 batch.
    expect(validationBatches(c, fit({ examples: 4 }))).toBe(1);
    expect(evalMs(record('a', { config: c }), 300)).toBe(300);
  });

  it('evaluations ahead: the periodic ones after the steps done, the final one, the starting one for a new run', () => {
    const c = config('a', { steps: 40, evalEvery: 10, valExamples: 10 });
    expect(evalsAhead(c, 0, true)).toBe(5); // start, 10, 20, 30, final
    expect(evalsAhead(c, 25, false)).toBe(2); // 30, final
    expect(evalsAhead(c, 40, false)).toBe(1); // the final pass only
    expect(evalsAhead({ ...c, valExamples: 0 }, 0, true)).toBe(0);
  });
});

describe("the queue's ETA", () => {
  it('the run on the GPU: its steps left and its validation passes, the final one included', () => {
    const run = training('a', 30);
    // 10 steps of 100 ms; the evaluation after step 30 and the final one: 3 batches of 4 at a third of a step each.
    expect(remainingMs(run, null)).toBe(10 * 100 + 2 * 100);
    // On its last step only the final validation is left.
    expect(remainingMs(training('a', 40, { points: steps(40, 100) }), null)).toBe(100);
  });

  it('queued runs follow at the pace measured on the same model, with every validation pass', () => {
    const runs = {
      a: training('a', 30),
      b: record('b', { status: 'queued', modelKey: 'm', config: config('b', { batch: 8 }) }),
      c: record('c', { status: 'queued', modelKey: 'm' }),
    };
    const eta = queueEta(runs, ['a', 'b', 'c']);
    const a = 10 * 100 + 2 * 100;
    // b: twice the positions per step (batch 8): 40 steps of 200 ms; 5 passes of 2 batches at 200/3 ms each.
    const b = 40 * 200 + (5 * (2 * 200)) / 3;
    const c = 40 * 100 + 5 * 100;
    expect(eta.entries.get('a')).toEqual({ id: 'a', remainingMs: a, startsInMs: 0 });
    expect(eta.entries.get('b')?.startsInMs).toBe(a);
    expect(eta.entries.get('b')?.remainingMs).toBeCloseTo(b);
    expect(eta.entries.get('c')?.startsInMs).toBeCloseTo(a + b);
    expect(eta.totalMs).toBeCloseTo(a + b + c);
  });

  it('a resumed run in the queue has the steps after its checkpoint left, without the starting evaluation', () => {
    const runs = {
      a: training('a', 30),
      b: record('b', { status: 'queued', modelKey: 'm', checkpoint: { step: 20, bytes: 1, kept: true } }),
    };
    // Steps 20..39 and the evaluations after steps 20 and 30, then the final one.
    expect(queueEta(runs, ['a', 'b']).entries.get('b')?.remainingMs).toBe(20 * 100 + 3 * 100);
  });

  it('no pace on that model yet: unknown, and so is everything after it', () => {
    const runs = {
      a: record('a', { status: 'preparing', modelKey: 'other' }),
      b: record('b', { status: 'queued', modelKey: 'm' }),
    };
    const eta = queueEta(runs, ['a', 'b']);
    expect(eta.entries.get('a')?.remainingMs).toBeNull();
    expect(eta.entries.get('b')?.startsInMs).toBeNull();
    expect(eta.totalMs).toBeNull();
  });

  it('an experiment holding the GPU delays every queued run by what is left of it', () => {
    const runs = {
      done: record('done', { status: 'done', modelKey: 'm', points: steps(5, 50) }),
      q: record('q', { status: 'queued', modelKey: 'm' }),
    };
    expect(queueEta(runs, ['done', 'q'], 60_000).entries.get('q')?.startsInMs).toBe(60_000);
    expect(queueEta(runs, ['done', 'q'], null).totalMs).toBeNull();
    // A run training now means no experiment is: the queue starts with it.
    expect(queueEta({ a: training('a', 30) }, ['a'], 60_000).entries.get('a')?.startsInMs).toBe(0);
  });

  it('a finished run on the same model gives the pace when nothing trains yet', () => {
    const runs = {
      done: record('done', { status: 'done', modelKey: 'm', points: steps(5, 50) }),
      q: record('q', { status: 'queued', modelKey: 'm' }),
    };
    expect(queueEta(runs, ['done', 'q']).totalMs).toBe(40 * 50 + 5 * 50);
  });
});

describe('supervised tokens to train on', () => {
  const c = config('a', { steps: 10, batch: 4, seq: 64 });

  it('padded rows: one example each, its supervised tokens', () => {
    // 40 rows x 10 supervised tokens per example (1000 over 100 examples).
    expect(trainTokens(c, fit(), false)).toEqual({ positions: 40 * 64, supervised: 400 });
  });

  it('packed rows (plain text): full rows at the supervised share of the tokens', () => {
    expect(trainTokens(c, fit(), true)).toEqual({ positions: 2560, supervised: 640 });
  });

  it('unknown when the dataset was measured at another length or truncation, or before the count existed', () => {
    expect(trainTokens(c, fit({ seq: 128 }), false).supervised).toBeNull();
    expect(trainTokens(c, fit({ truncation: 'right' }), false).supervised).toBeNull();
    expect(trainTokens(c, fit({ supervisedTokens: undefined }), false).supervised).toBeNull();
    expect(trainTokens(c, fit({ problem: 'nothing left' }), false).supervised).toBeNull();
    expect(trainTokens(c, null, false)).toEqual({ positions: 2560, supervised: null });
  });

  it('the run records which format it read: plain text is packed', () => {
    expect(isPackedFormat(JSON.stringify({ format: 'text', columns: {} }))).toBe(true);
    expect(isPackedFormat(JSON.stringify({ format: 'alpaca' }))).toBe(false);
    expect(isPackedFormat(null)).toBe(false);
    expect(isPackedFormat('{')).toBe(false);
  });
});

describe('the run card', () => {
  it('a training run shows its ETA and the queue after it; a queued run when it starts', async () => {
    const { RunProgressView } = await import('../src/app/components/RunProgress');
    const a = training('a', 30);
    const b = record('b', { status: 'queued', modelKey: 'm' });
    Object.assign(state, { runs: { a, b }, order: ['a', 'b'] });
    const html = renderToStaticMarkup(createElement(RunProgressView, { run: a }));
    expect(html).toContain('30/40');
    expect(html).toContain('ETA 1s');
    expect(html).toContain('queue 6s');
    const queued = renderToStaticMarkup(createElement(RunProgressView, { run: b }));
    expect(queued).toContain('Waiting for the GPU');
    expect(queued).toContain('starts in ≈ 1s');
  });

  it('the budget line counts supervised tokens', async () => {
    const { TrainTokensText } = await import('../src/app/components/RunProgress');
    const draft = record('d', { config: config('d', { steps: 10, batch: 4, seq: 64 }) });
    Object.assign(state, { runs: { d: draft }, dataset: { preview: { format: 'alpaca', fit: fit() } } });
    expect(renderToStaticMarkup(createElement(TrainTokensText, { config: draft.config }))).toContain(
      '≈ 400 supervised tokens to train on',
    );
    Object.assign(state, { dataset: { preview: null } });
    expect(renderToStaticMarkup(createElement(TrainTokensText, { config: draft.config }))).toContain(
      '2,560 token positions to train on',
    );
    // A finished run says what it counted.
    const done = record('f', { status: 'done', summary: { tokens: 1234 } as RunRecord['summary'] });
    Object.assign(state, { runs: { f: done } });
    expect(renderToStaticMarkup(createElement(TrainTokensText, { config: done.config }))).toContain(
      '1,234 supervised tokens trained on',
    );
  });
});
