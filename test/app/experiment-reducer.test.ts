/**
 * Experiment events -> state, in node: the plan, the run training now and its throttled steps, finished runs (with
 * their wall time for the ETA and their adapter saved for export), a resumed run replacing its earlier result, and
 * the three ways an experiment ends.
 */
import { describe, expect, test, vi } from 'vitest';
import { createReducer, createStepBuffer } from '../../src/app/reducer';
import type { ExperimentRecord } from '../../src/app/experiment-record';
import type { AdapterSnapshot } from '../../src/worker/protocol';
import { experimentRecord, plan, runResult } from './experiment-fixtures';
import { studioStore } from './fixtures';

function setup(records: ExperimentRecord[] = [experimentRecord('x', { status: 'queued' })]) {
  const store = studioStore([]);
  store.setState({
    experiments: Object.fromEntries(records.map((r) => [r.id, r])),
    experimentOrder: records.map((r) => r.id),
  });
  let clock = 1000;
  const saveAdapter = vi.fn(async () => {});
  const { applyEvent } = createReducer(store.getState, store.setState, {
    steps: createStepBuffer(store.setState),
    keepCheckpoint: vi.fn(),
    saveAdapter: vi.fn(async () => {}),
    download: vi.fn(),
    experiments: { saveAdapter, now: () => clock },
  });
  return {
    applyEvent,
    saveAdapter,
    tick: (ms: number) => (clock += ms),
    x: (id = 'x') => store.getState().experiments[id],
  };
}

const lora = { key: 'lora|0.001|0', name: 'lora', method: 'lora' as const, lr: 1e-3, seed: 0 };
const adapter = { format: 'lora' } as AdapterSnapshot;

describe('experiment events', () => {
  test('status, plan, a run with its steps, its result and adapter, then the end', () => {
    const { applyEvent, saveAdapter, tick, x } = setup();
    applyEvent({ type: 'experimentStatus', id: 'x', status: 'running', stage: 'Tokenizing' });
    expect(x()).toMatchObject({ status: 'running', stage: 'Tokenizing', startedAt: 1000 });
    applyEvent({ type: 'experimentPlan', id: 'x', plan: plan() });
    expect(x().plan?.runs).toHaveLength(8);

    tick(500);
    applyEvent({ type: 'experimentRunStart', id: 'x', run: lora, index: 0, total: 8 });
    expect(x()).toMatchObject({ stage: null, current: { run: lora, index: 0, startedAt: 1500, step: null } });
    const step = { key: lora.key, step: 3, steps: 10, loss: 4.2, phase: null, elapsedMs: 30 };
    applyEvent({ type: 'experimentStep', id: 'x', info: step });
    expect(x().current?.step).toEqual(step);
    // A step of another run (a late report) does not touch the current one.
    applyEvent({ type: 'experimentStep', id: 'x', info: { ...step, key: 'gralora|0.001|0', step: 9 } });
    expect(x().current?.step).toEqual(step);

    tick(20_000);
    const result = runResult('lora', 1e-3, 0);
    applyEvent({ type: 'experimentRunDone', id: 'x', key: lora.key, result, adapter });
    expect(x()).toMatchObject({ results: [result], runMs: [20_000], adapters: [lora.key], current: null });
    expect(saveAdapter).toHaveBeenCalledWith('x', lora.key, 'lora', adapter);

    const final = { runs: [result], summary: [], best: [] } as never;
    tick(1);
    applyEvent({ type: 'experimentDone', id: 'x', results: final });
    expect(x()).toMatchObject({ status: 'done', final, results: [result], current: null, finishedAt: 21_501 });
  });

  test('a failed run keeps its error and no adapter; a run finished again replaces its earlier result', () => {
    const { applyEvent, saveAdapter, x } = setup([
      experimentRecord('x', { status: 'running', results: [runResult('lora', 1e-3, 0, { status: 'failed' })] }),
    ]);
    applyEvent({ type: 'experimentRunStart', id: 'x', run: lora, index: 0, total: 8 });
    const failed = runResult('lora', 1e-3, 0, {
      status: 'failed',
      error: 'out of memory',
      valLoss: null,
      testLoss: null,
    });
    applyEvent({ type: 'experimentRunDone', id: 'x', key: lora.key, result: failed, adapter: null });
    expect(x().results).toEqual([failed]);
    expect(x().adapters).toEqual([]);
    expect(saveAdapter).not.toHaveBeenCalled();
  });

  test('stopped and failed end with their message and keep the finished runs', () => {
    const { applyEvent, x } = setup([
      experimentRecord('x', { status: 'running', results: [runResult('lora', 1e-3, 0)] }),
      experimentRecord('y', { status: 'running' }),
    ]);
    applyEvent({ type: 'experimentStopped', id: 'x', message: 'Stopped.' });
    expect(x()).toMatchObject({ status: 'stopped', message: 'Stopped.', current: null });
    expect(x().results).toHaveLength(1);
    applyEvent({ type: 'experimentFailed', id: 'y', message: 'The GPU was lost.' });
    expect(x('y')).toMatchObject({ status: 'failed', message: 'The GPU was lost.' });
  });

  test('events for an experiment removed meanwhile change nothing and save no adapter', () => {
    const { applyEvent, saveAdapter, x } = setup([]);
    applyEvent({ type: 'experimentRunDone', id: 'x', key: lora.key, result: runResult('lora', 1e-3, 0), adapter });
    expect(x()).toBeUndefined();
    expect(saveAdapter).not.toHaveBeenCalled();
  });
});
