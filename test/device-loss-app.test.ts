/**
 * A lost GPU device as the page records it (src/app/device-loss.ts through the reducer): a run queued again from
 * its checkpoint keeps its metrics before it and reports the rest again (no step twice, none missing, even with
 * steps still buffered), a restart from step 0 starts its history over, both say so on the card; full fine-tunes
 * lose their session weights; the notice becomes a toast. And the page's test-hook flag.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { resumedAfterLoss, WEIGHTS_LOST, withWeightsLost } from '../src/app/device-loss';
import { testHooksEnabled } from '../src/app/device-loss-hooks';
import { createReducer, createStepBuffer } from '../src/app/reducer';
import type { MethodAnalysis } from '../src/engine/methods';
import { point, progress, record, studioStore } from './app/fixtures';

const evals = (...steps: number[]) => steps.map((step) => ({ step, tokens: step * 10, loss: 4 }));
const points = (n: number) => Array.from({ length: n }, (_, i) => point(i));

describe('resumedAfterLoss', () => {
  test('from a checkpoint: history before it kept, the rest dropped, queued with the reason on the card', () => {
    const r = record('a', {
      status: 'training',
      stage: 'Training',
      points: points(8),
      evals: evals(0, 5),
      progress: progress(7),
      checkpoint: { step: 5, bytes: 100, kept: true },
      analysis: { method: 'lora' } as MethodAnalysis,
      warnings: ['small split'],
    });
    const patch = resumedAfterLoss(r, 5, 'lost after 8 steps');
    expect(patch).toMatchObject({
      status: 'queued',
      stage: 'Waiting for the new GPU device',
      message: null,
      progress: null,
      summary: null,
      warnings: ['small split', 'lost after 8 steps'],
    });
    expect(patch.points!.map((p) => p.step)).toEqual([0, 1, 2, 3, 4]);
    expect(patch.evals!.map((e) => e.step)).toEqual([0]);
    // The method's analysis and the checkpoint stay: the resumed run continues them.
    expect(patch).not.toHaveProperty('analysis');
    expect(patch).not.toHaveProperty('checkpoint');
  });

  test('from step 0: the history, analysis and checkpoint start over', () => {
    const r = record('a', { status: 'training', points: points(3), evals: evals(0), analysis: {} as MethodAnalysis });
    expect(resumedAfterLoss(r, 0, 'restarted')).toMatchObject({
      points: [],
      evals: [],
      analysis: null,
      checkpoint: null,
      warnings: ['restarted'],
    });
  });
});

describe('withWeightsLost', () => {
  test("only the runs whose weights were the session's lose them, and say so", () => {
    const runs = {
      full: record('full', { status: 'done', weights: 'session' }),
      lora: record('lora', { status: 'done', weights: 'adapter' }),
    };
    const next = withWeightsLost(runs, ['full', 'lora', 'gone']);
    expect(next.full).toMatchObject({ weights: null, warnings: [WEIGHTS_LOST] });
    expect(next.lora).toBe(runs.lora);
    expect(withWeightsLost(runs, ['lora'])).toBe(runs);
  });
});

describe('the reducer through a device loss', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup() {
    const store = studioStore([record('a', { status: 'training', stage: 'Training' })]);
    const steps = createStepBuffer(store.setState);
    const deps = { steps, keepCheckpoint: vi.fn(), saveAdapter: vi.fn(async () => {}), download: vi.fn() };
    const { applyEvent } = createReducer(store.getState, store.setState, deps);
    return { store, applyEvent, run: () => store.getState().runs.a };
  }

  test('steps still buffered at the loss are replaced, not duplicated, by the resumed ones', () => {
    const { applyEvent, run } = setup();
    applyEvent({ type: 'runEval', id: 'a', point: { step: 0, tokens: 0, loss: 5 } });
    for (let s = 0; s < 6; s++) applyEvent({ type: 'runStep', id: 'a', point: point(s), progress: progress(s) });
    applyEvent({ type: 'runEval', id: 'a', point: { step: 5, tokens: 0, loss: 5 } });
    // Steps 6 and 7 are still in the buffer when the worker queues the run again from step 5.
    for (let s = 6; s < 8; s++) applyEvent({ type: 'runStep', id: 'a', point: point(s), progress: progress(s) });
    expect(run().points).toHaveLength(6);
    applyEvent({ type: 'runResumed', id: 'a', step: 5, message: 'resumed from step 5' });
    expect(run().points.map((p) => p.step)).toEqual([0, 1, 2, 3, 4]);
    expect(run().status).toBe('queued');
    applyEvent({ type: 'runStatus', id: 'a', status: 'preparing', stage: 'Building the training graph' });
    for (let s = 5; s < 10; s++) applyEvent({ type: 'runStep', id: 'a', point: point(s), progress: progress(s) });
    vi.runAllTimers();
    expect(run().points.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(run().evals.map((e) => e.step)).toEqual([0]);
    expect(run().warnings).toEqual(['resumed from step 5']);
  });

  test('the loss takes full fine-tunes weights; the notice is a toast, an error when runs no longer resume', () => {
    const { applyEvent, store, run } = setup();
    store.setState((s) => ({ runs: { ...s.runs, a: { ...s.runs.a, status: 'done', weights: 'session' } } }));
    applyEvent({ type: 'deviceLost', reason: 'destroyed', weightsLost: ['a'] });
    expect(run()).toMatchObject({ weights: null, warnings: [WEIGHTS_LOST] });
    applyEvent({ type: 'deviceRecovered', message: 'recovered', ms: 100, autoResume: true });
    expect(store.toast).toHaveBeenLastCalledWith('info', 'recovered');
    applyEvent({ type: 'deviceRecovered', message: 'no more', ms: 100, autoResume: false });
    expect(store.toast).toHaveBeenLastCalledWith('error', 'no more');
  });
});

describe('testHooksEnabled', () => {
  test('?test-hooks in the URL or the localStorage flag', () => {
    expect(testHooksEnabled('?test-hooks', null)).toBe(true);
    expect(testHooksEnabled('?x=1&test-hooks=1', null)).toBe(true);
    expect(testHooksEnabled('', '1')).toBe(true);
    expect(testHooksEnabled('', null)).toBe(false);
    expect(testHooksEnabled('?test-hookss', '0')).toBe(false);
  });
});
