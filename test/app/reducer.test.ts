/**
 * The studio's reducer: worker events -> state, in node (no worker, IndexedDB or DOM): run status, buffered
 * steps and their flush, the end of a run, its data and warnings, checkpoints handed to persistence, errors.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createReducer, createStepBuffer } from '../../src/app/reducer';
import type { RunRecord } from '../../src/app/run-record';
import type { MethodAnalysis } from '../../src/engine/methods';
import type {
  AdapterSnapshot,
  DataFit,
  GenerationResult,
  RunCheckpointData,
  RunSummary,
} from '../../src/worker/protocol';
import { point, progress, record, studioStore } from './fixtures';

const T0 = 1_700_000_000_000;

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(records: RunRecord[] = [record('a', { status: 'queued', stage: 'Waiting for the GPU' })]) {
  const store = studioStore(records);
  const steps = createStepBuffer(store.setState);
  const deps = { steps, keepCheckpoint: vi.fn(), saveAdapter: vi.fn(async () => {}), download: vi.fn() };
  const { applyEvent } = createReducer(store.getState, store.setState, deps);
  const renders = vi.fn();
  store.subscribe(renders);
  return { store, deps, applyEvent, renders, run: (id = 'a') => store.getState().runs[id] };
}

function summary(patch: Partial<RunSummary> = {}): RunSummary {
  return {
    steps: 40,
    stopReason: 'done',
    message: null,
    initialValLoss: null,
    finalValLoss: 3.5,
    trainableParams: 1000,
    elapsedMs: 4000,
    tokensPerSecond: 100,
    tokens: 4000,
    trainExamples: 100,
    validationExamples: 10,
    peakGpuBytes: 1 << 20,
    ...patch,
  } as RunSummary;
}

const adapter = { format: 'gralora' } as AdapterSnapshot;

describe('runStatus', () => {
  test('preparing starts the clock and takes the stage; training without a stage keeps it; messages clear', () => {
    const { applyEvent, run } = setup([
      record('a', { status: 'queued', stage: 'Waiting for the GPU', message: 'old' }),
    ]);
    applyEvent({ type: 'runStatus', id: 'a', status: 'preparing', stage: 'Compiling kernels' });
    expect(run()).toMatchObject({
      status: 'preparing',
      stage: 'Compiling kernels',
      message: null,
      startedAt: T0,
      finishedAt: null,
    });
    vi.setSystemTime(T0 + 5000);
    applyEvent({ type: 'runStatus', id: 'a', status: 'training' });
    expect(run()).toMatchObject({ status: 'training', stage: 'Compiling kernels', startedAt: T0, finishedAt: null });
    applyEvent({ type: 'runStatus', id: 'a', status: 'training', stage: 'Training', message: 'a warning' });
    expect(run()).toMatchObject({ stage: 'Training', message: 'a warning' });
  });

  test('queued before preparing has no start time; a status for a removed run changes nothing', () => {
    const { applyEvent, run, store } = setup([record('a', { status: 'draft' })]);
    applyEvent({ type: 'runStatus', id: 'a', status: 'queued' });
    expect(run()).toMatchObject({ status: 'queued', stage: null, startedAt: null });
    const runs = store.getState().runs;
    applyEvent({ type: 'runStatus', id: 'gone', status: 'training' });
    expect(store.getState().runs).toBe(runs);
  });

  test('failed keeps the checkpoint and the message it had; cancelled drops the checkpoint', () => {
    const checkpoint = { step: 20, bytes: 100, kept: true };
    const { applyEvent, run } = setup([
      record('a', { status: 'training', stage: 'Training', message: 'Device lost', startedAt: T0 - 10, checkpoint }),
      record('b', { status: 'training', stage: 'Training', message: 'kept', startedAt: T0 - 10, checkpoint }),
    ]);
    vi.setSystemTime(T0 + 1000);
    applyEvent({ type: 'runStatus', id: 'a', status: 'failed' });
    expect(run('a')).toMatchObject({
      status: 'failed',
      stage: null,
      message: 'Device lost',
      startedAt: T0 - 10,
      finishedAt: T0 + 1000,
      checkpoint,
    });
    applyEvent({ type: 'runStatus', id: 'b', status: 'cancelled' });
    expect(run('b')).toMatchObject({
      status: 'cancelled',
      stage: null,
      message: 'kept',
      finishedAt: T0 + 1000,
      checkpoint: null,
    });
  });
});

describe('runStep buffering', () => {
  test('steps reach the state together, 120 ms after the first, with the latest progress and its stage', () => {
    const { applyEvent, run, renders } = setup();
    for (let i = 0; i < 3; i++)
      applyEvent({
        type: 'runStep',
        id: 'a',
        point: point(i),
        progress: progress(i, i < 2 ? 'Warming up' : 'Training'),
      });
    expect(run().points).toEqual([]);
    expect(renders).not.toHaveBeenCalled();
    vi.advanceTimersByTime(119);
    expect(run().points).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(renders).toHaveBeenCalledTimes(1);
    expect(run().points.map((p) => p.step)).toEqual([0, 1, 2]);
    expect(run().progress).toEqual(progress(2, 'Training'));
    expect(run().stage).toBe('Training');
    // Nothing queued: no further render.
    vi.advanceTimersByTime(1000);
    expect(renders).toHaveBeenCalledTimes(1);
  });

  test("steps of several runs flush in one update; a removed run's steps are dropped", () => {
    const { applyEvent, run, renders, store } = setup([
      record('a', { status: 'training' }),
      record('b', { status: 'training' }),
    ]);
    applyEvent({ type: 'runStep', id: 'a', point: point(0), progress: progress(0) });
    applyEvent({ type: 'runStep', id: 'b', point: point(0), progress: progress(0) });
    applyEvent({ type: 'runStep', id: 'gone', point: point(0), progress: progress(0) });
    vi.advanceTimersByTime(120);
    expect(renders).toHaveBeenCalledTimes(1);
    expect(run('a').points).toHaveLength(1);
    expect(run('b').points).toHaveLength(1);
    expect(store.getState().runs.gone).toBeUndefined();
  });

  test('an evaluation flushes the queued steps first and cancels the queued flush', () => {
    const { applyEvent, run, renders } = setup([record('a', { status: 'training' })]);
    applyEvent({ type: 'runStep', id: 'a', point: point(9), progress: progress(9) });
    applyEvent({ type: 'runEval', id: 'a', point: { step: 10, tokens: 2560, loss: 4 } });
    expect(run().points.map((p) => p.step)).toEqual([9]);
    expect(run().evals).toEqual([{ step: 10, tokens: 2560, loss: 4 }]);
    expect(renders).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(1000);
    expect(renders).toHaveBeenCalledTimes(2);
  });

  test('a checkpoint goes to persistence as it arrives (it flushes the steps itself)', () => {
    const { applyEvent, deps } = setup();
    const checkpoint = { step: 10, tokens: 2560, elapsedMs: 100, state: [] } as RunCheckpointData;
    applyEvent({ type: 'runCheckpoint', id: 'a', checkpoint });
    expect(deps.keepCheckpoint).toHaveBeenCalledWith('a', checkpoint);
  });
});

describe('runDone', () => {
  test('flushes the steps, saves the adapter, drops the checkpoint, keeps the step-0 validation loss', () => {
    const { applyEvent, run, deps } = setup([
      record('a', {
        status: 'training',
        stage: 'Training',
        startedAt: T0 - 100,
        prepare: { phase: 'x', done: 1, total: 1 },
        evals: [{ step: 0, tokens: 0, loss: 5.5 }],
        checkpoint: { step: 20, bytes: 10, kept: true },
      }),
    ]);
    applyEvent({ type: 'runStep', id: 'a', point: point(39), progress: progress(39) });
    vi.setSystemTime(T0 + 50);
    applyEvent({ type: 'runDone', id: 'a', status: 'done', summary: summary(), adapter, exportable: true });
    expect(deps.saveAdapter).toHaveBeenCalledWith('a', 'lora', adapter);
    expect(run()).toMatchObject({
      status: 'done',
      stage: null,
      message: null,
      finishedAt: T0 + 50,
      prepare: null,
      checkpoint: null,
      weights: 'adapter',
      adapterFormat: 'gralora',
    });
    expect(run().points.map((p) => p.step)).toEqual([39]);
    expect(run().summary).toEqual(summary({ initialValLoss: 5.5 }));
  });

  test('a full fine-tune stays on the GPU for the session; an unexportable run has no weights', () => {
    const { applyEvent, run, deps } = setup([record('a', { status: 'training' }), record('b', { status: 'training' })]);
    applyEvent({
      type: 'runDone',
      id: 'a',
      status: 'done',
      summary: summary({ initialValLoss: 6 }),
      adapter: null,
      exportable: true,
    });
    applyEvent({
      type: 'runDone',
      id: 'b',
      status: 'failed',
      summary: summary({ message: 'Loss is NaN', stopReason: 'non-finite' }),
      adapter: null,
      exportable: false,
    });
    expect(deps.saveAdapter).not.toHaveBeenCalled();
    expect(run('a')).toMatchObject({ weights: 'session', adapterFormat: null, summary: { initialValLoss: 6 } });
    expect(run('b')).toMatchObject({
      status: 'failed',
      message: 'Loss is NaN',
      weights: null,
      summary: { initialValLoss: null },
    });
  });
});

describe('runData, runWarning, runPrepare', () => {
  test('data replaces, warnings accumulate, preparation reports its phase', () => {
    const { applyEvent, run } = setup();
    const data: DataFit = { seq: 64, truncation: 'keep-answer', examples: 90, truncated: 3, dropped: 1, problem: null };
    applyEvent({ type: 'runData', id: 'a', data });
    expect(run().data).toEqual(data);
    applyEvent({ type: 'runWarning', id: 'a', message: 'The validation split has 2 examples.' });
    applyEvent({ type: 'runWarning', id: 'a', message: 'Step 3 had no supervised token.' });
    expect(run().warnings).toEqual(['The validation split has 2 examples.', 'Step 3 had no supervised token.']);
    applyEvent({ type: 'runPrepare', id: 'a', phase: 'Gradients', done: 2, total: 8 });
    expect(run().prepare).toEqual({ phase: 'Gradients', done: 2, total: 8 });
  });
});

describe('errors and other events', () => {
  test('a run error fails the run; one without a run, or an export error, is a toast', () => {
    const { applyEvent, run, store } = setup();
    applyEvent({ type: 'error', scope: 'run', id: 'a', message: 'Out of memory' });
    expect(run()).toMatchObject({ status: 'failed', message: 'Out of memory' });
    applyEvent({ type: 'error', scope: 'run', message: 'No run' });
    store.setState({ exporting: { a: true } });
    applyEvent({ type: 'error', scope: 'export', id: 'a', message: 'zip' });
    expect(store.getState().exporting).toEqual({ a: false });
    expect(store.toast.mock.calls).toEqual([
      ['error', 'No run'],
      ['error', 'Export failed: zip'],
    ]);
  });

  test('an export is downloaded; generations of another request are ignored', () => {
    const { applyEvent, store, deps } = setup();
    const bytes = new Uint8Array([1, 2]);
    store.setState({ exporting: { a: true } });
    applyEvent({ type: 'export', id: 'a', fileName: 'a.zip', bytes });
    expect(deps.download).toHaveBeenCalledWith('a.zip', bytes);
    expect(store.getState().exporting).toEqual({ a: false });
    store.setState((s) => ({ playground: { ...s.playground, requestId: 'r1' } }));
    const result: GenerationResult = { source: 'base', text: 'hi', tokens: 1, ms: 5, done: true };
    applyEvent({ type: 'generation', requestId: 'r0', result });
    expect(store.getState().playground.results).toEqual({});
    applyEvent({ type: 'generation', requestId: 'r1', result });
    expect(store.getState().playground.results).toEqual({ base: result });
    applyEvent({ type: 'generationDone', requestId: 'r1' });
    expect(store.getState().playground.requestId).toBeNull();
  });
});

describe('method snapshots', () => {
  const adaloraAnalysis = (): MethodAnalysis => ({
    method: 'lora',
    structure: 'adalora',
    allocation: 'adalora',
    init: 'adalora',
    modules: [],
    trainableParameters: 0,
    loraEquivalentParameters: 0,
    preparationMs: 0,
    warnings: [],
  });
  test('the reducer folds runSnapshot into the run, and a resumed run’s new analysis keeps the old snapshots', () => {
    const store = studioStore([record('a', { status: 'training', analysis: adaloraAnalysis() })]);
    const deps = {
      steps: createStepBuffer(store.setState),
      keepCheckpoint: vi.fn(),
      saveAdapter: vi.fn(async () => {}),
      download: vi.fn(),
    };
    const { applyEvent } = createReducer(store.getState, store.setState, deps);
    applyEvent({ type: 'runSnapshot', id: 'a', snapshot: { step: 5, ranks: [5, 4] } });
    applyEvent({ type: 'runSnapshot', id: 'a', snapshot: { step: 10, ranks: [4, 3] } });
    expect(store.getState().runs.a.analysis!.timeline!.map((s) => s.step)).toEqual([5, 10]);
    applyEvent({ type: 'runAnalysis', id: 'a', analysis: adaloraAnalysis() });
    applyEvent({ type: 'runSnapshot', id: 'a', snapshot: { step: 15, ranks: [3, 3] } });
    expect(store.getState().runs.a.analysis!.timeline!.map((s) => s.step)).toEqual([5, 10, 15]);
  });
});
