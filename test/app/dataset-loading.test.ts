/**
 * A dataset file loading, in the studio's state: progress events keep the first rows' preview a large file sends
 * once, the final preview or an error ends the loading, and runs and experiments wait for it (the message names
 * the file and how far it is).
 */
import { describe, expect, test, vi } from 'vitest';
import { datasetLoadingProblem, describeDatasetLoading, type DatasetLoading } from '../../src/app/dataset-loading';
import { createExperimentActions } from '../../src/app/experiment-actions';
import { createReducer, createStepBuffer } from '../../src/app/reducer';
import type { DatasetPreview, WorkerEvent } from '../../src/worker/protocol';
import { useStudio } from '../../src/app/store';
import { record, studioStore } from './fixtures';

const MB = 2 ** 20;

function preview(name: string, patch: Partial<DatasetPreview> = {}): DatasetPreview {
  return {
    name,
    bytes: 4 * MB,
    digest: `digest of ${name}`,
    demo: false,
    format: 'alpaca',
    columns: { instruction: 'instruction', input: 'input', output: 'output' },
    rows: 2000,
    examples: 0,
    tokens: 0,
    supervisedTokens: 0,
    skipped: 0,
    fit: null,
    assistantTurns: 0,
    emptyTurns: 0,
    warnings: [],
    samples: [],
    histogram: [],
    tokenized: false,
    fields: ['instruction', 'input', 'output'],
    override: { format: null, columns: {} },
    unmatched: null,
    ...patch,
  };
}

/** The Reading event that carries a large file's first rows. */
function firstRowsOf(name: string): WorkerEvent {
  return { type: 'datasetProgress', name, stage: 'Reading', done: 1, total: 4, preview: preview(name) };
}

function setup(current: DatasetPreview | null = null) {
  const store = studioStore([]);
  store.setState((s) => ({ dataset: { ...s.dataset, preview: current } }));
  const deps = {
    steps: createStepBuffer(store.setState),
    keepCheckpoint: vi.fn(),
    saveAdapter: vi.fn(async () => {}),
    download: vi.fn(),
  };
  const { applyEvent } = createReducer(store.getState, store.setState, deps);
  return { store, applyEvent, loading: () => store.getState().dataset.loading };
}

describe('dataset progress in the state', () => {
  test('the first rows preview is kept across later progress events of the same file, with their amounts', () => {
    const { applyEvent, loading } = setup();
    const early = preview('big.jsonl');
    applyEvent({ type: 'datasetProgress', name: 'big.jsonl', stage: 'Reading' });
    expect(loading()).toEqual({ name: 'big.jsonl', stage: 'Reading' });
    applyEvent({
      type: 'datasetProgress',
      name: 'big.jsonl',
      stage: 'Reading',
      done: MB,
      total: 4 * MB,
      preview: early,
    });
    applyEvent({ type: 'datasetProgress', name: 'big.jsonl', stage: 'Reading', done: 2 * MB, total: 4 * MB });
    expect(loading()).toEqual({ name: 'big.jsonl', stage: 'Reading', done: 2 * MB, total: 4 * MB, preview: early });
    applyEvent({ type: 'datasetProgress', name: 'big.jsonl', stage: 'Tokenizing', done: MB, total: 4 * MB });
    expect(loading()).toEqual({ name: 'big.jsonl', stage: 'Tokenizing', done: MB, total: 4 * MB, preview: early });
  });

  test("another file's progress does not inherit the preview; a file chosen again starts without one", () => {
    const { applyEvent, loading, store } = setup();
    applyEvent({
      type: 'datasetProgress',
      name: 'a.jsonl',
      stage: 'Reading',
      done: 1,
      total: 4,
      preview: preview('a.jsonl'),
    });
    applyEvent({ type: 'datasetProgress', name: 'b.jsonl', stage: 'Reading', done: 1, total: 4 });
    expect(loading()?.preview).toBeUndefined();
    applyEvent({
      type: 'datasetProgress',
      name: 'b.jsonl',
      stage: 'Reading',
      done: 1,
      total: 4,
      preview: preview('b.jsonl'),
    });
    // What store.loadDatasetFile sets when a file is chosen: a fresh loading, so a same-named file's old rows go.
    store.setState((s) => ({ dataset: { ...s.dataset, loading: { name: 'b.jsonl', stage: 'Reading' } } }));
    applyEvent({ type: 'datasetProgress', name: 'b.jsonl', stage: 'Reading', done: 2, total: 4 });
    expect(loading()?.preview).toBeUndefined();
  });

  test("the file's final preview ends the loading and becomes the dataset in use", () => {
    const { applyEvent, loading, store } = setup(preview('old.txt', { format: 'text' }));
    applyEvent(firstRowsOf('big.jsonl'));
    const final = preview('big.jsonl', { rows: 20_000 });
    applyEvent({ type: 'dataset', preview: final });
    expect(loading()).toBeNull();
    expect(store.getState().dataset.preview).toBe(final);
  });

  test('an error ends the loading and keeps the dataset in use', () => {
    const old = preview('old.txt', { format: 'text' });
    const { applyEvent, loading, store } = setup(old);
    applyEvent(firstRowsOf('big.jsonl'));
    applyEvent({ type: 'error', scope: 'dataset', message: 'big.jsonl: line 3 is not JSON' });
    expect(loading()).toBeNull();
    expect(store.getState().dataset).toMatchObject({ preview: old, error: 'big.jsonl: line 3 is not JSON' });
  });

  test('the dataset in use refreshed (another length) or re-tokenized while a new file loads leaves that loading', () => {
    const old = preview('old.txt', { format: 'text' });
    const { applyEvent, loading, store } = setup(old);
    const early = preview('big.jsonl');
    applyEvent({ type: 'datasetProgress', name: 'big.jsonl', stage: 'Reading', done: 1, total: 4, preview: early });
    applyEvent({ type: 'datasetProgress', name: 'old.txt', stage: 'Tokenizing', done: 1, total: 2 });
    const refreshed = { ...old, fit: null, rows: old.rows };
    applyEvent({ type: 'dataset', preview: refreshed });
    expect(store.getState().dataset.preview).toBe(refreshed);
    expect(loading()).toEqual({ name: 'big.jsonl', stage: 'Reading', done: 1, total: 4, preview: early });
  });
});

describe('waiting for a loading file', () => {
  const tokenizing: DatasetLoading = { name: 'tinystories.jsonl', stage: 'Tokenizing', done: 90 * MB, total: 200 * MB };

  test('the panel line and the Start message name the file, the stage and how far it is', () => {
    expect(describeDatasetLoading(tokenizing)).toBe('Tokenizing tinystories.jsonl — 45% (90.0 MiB of 200.0 MiB)');
    expect(datasetLoadingProblem(tokenizing)).toBe('Wait for tinystories.jsonl to finish loading (Tokenizing 45%).');
    const reading = { name: 'a.csv', stage: 'Reading' };
    expect(describeDatasetLoading(reading)).toBe('Reading a.csv…');
    expect(datasetLoadingProblem(reading)).toBe('Wait for a.csv to finish loading.');
    expect(datasetLoadingProblem(null)).toBeNull();
    // Never "100%" while the file is not done.
    expect(datasetLoadingProblem({ ...tokenizing, done: 200 * MB - 1 })).toContain('(Tokenizing 99%)');
  });

  test('a run does not start while a file loads (the previous dataset is still the one in use)', () => {
    const draft = record('a', { status: 'draft' });
    useStudio.setState({
      model: { card: { key: 'k', name: 'stories260K' } as never, ready: true, loading: null, error: null, gpuBytes: 0 },
      dataset: { preview: preview('old.txt', { format: 'text', tokenized: true }), loading: tokenizing, error: null },
      runs: { a: draft },
      order: ['a'],
    });
    useStudio.getState().startRun('a');
    expect(useStudio.getState().runs.a).toMatchObject({
      status: 'draft',
      message: 'Wait for tinystories.jsonl to finish loading (Tokenizing 45%).',
    });
  });

  test('an experiment does not start while a file loads (the previous dataset is still the one in use)', () => {
    const store = studioStore([]);
    store.setState({
      model: {
        card: { key: 'k', name: 'stories260K', demo: true } as never,
        ready: true,
        loading: null,
        error: null,
        gpuBytes: 0,
      },
      dataset: { preview: preview('old.txt', { format: 'text', tokenized: true }), loading: tokenizing, error: null },
    });
    const send = vi.fn();
    const actions = createExperimentActions(store.getState, store.setState, {
      send,
      download: vi.fn(),
      confirmModelSwitch: () => true,
      rememberDemo: vi.fn(),
      when: vi.fn(),
    });
    const id = actions.newExperiment();
    actions.startExperiment(id);
    expect(store.getState().experiments[id]).toMatchObject({
      status: 'draft',
      message: 'Wait for tinystories.jsonl to finish loading (Tokenizing 45%).',
    });
    expect(send).not.toHaveBeenCalled();
  });
});
