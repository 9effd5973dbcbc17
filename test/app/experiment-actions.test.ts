/**
 * The store's experiment actions with a fake worker channel: what Start sends and refuses (in the form's words),
 * importing a definition file (its problems returned, nothing changed), the rate modes, removing an experiment
 * with its adapters, the report's file name, and "Compare fairly" waiting for the demo before it starts.
 */
import { describe, expect, test, vi } from 'vitest';
import { createExperimentActions, lrModeOf, reportFileName, whenState } from '../../src/app/experiment-actions';
import { DEMO_EXPERIMENT } from '../../src/app/experiment-presets';
import { parseExperiment } from '../../src/experiment/schema';
import type { Command } from '../../src/worker/protocol';
import { experiment, experimentRecord } from './experiment-fixtures';
import { studioStore } from './fixtures';

const card = { key: 'k', name: 'stories260K', demo: true, maxPositions: 512 };
const preview = {
  name: 'tinyshakespeare.txt',
  digest: 'd',
  demo: true,
  tokenized: true,
  format: 'text',
  columns: {},
  override: { format: null, columns: {} },
};

function setup(loaded = true) {
  const store = studioStore([]);
  if (loaded)
    store.setState({
      model: { card: card as never, ready: true, loading: null, error: null, gpuBytes: 0 },
      dataset: { preview: preview as never, loading: null, error: null },
    });
  const sent: Command[] = [];
  const waiting: { condition: () => boolean; then: () => void }[] = [];
  const actions = createExperimentActions(store.getState, store.setState, {
    send: (c) => sent.push(c),
    download: vi.fn(),
    confirmModelSwitch: () => true,
    rememberDemo: vi.fn(),
    when: (condition, then) => waiting.push({ condition, then }),
  });
  const x = (id: string) => store.getState().experiments[id];
  const ids = () => store.getState().experimentOrder;
  return { store, sent, waiting, actions, x, ids };
}

describe('start', () => {
  test('sends the definition file and records what it runs on', () => {
    const { actions, sent, x } = setup();
    const id = actions.newExperiment();
    actions.startExperiment(id);
    expect(x(id)).toMatchObject({
      status: 'queued',
      modelKey: 'k',
      modelName: 'stories260K',
      datasetName: 'tinyshakespeare.txt',
      datasetDigest: 'd',
    });
    expect(sent).toHaveLength(1);
    const cmd = sent[0] as Extract<Command, { type: 'startExperiment' }>;
    expect(cmd).toMatchObject({ type: 'startExperiment', id });
    expect(cmd).not.toHaveProperty('done');
    // What the worker parses is the draft, with the loaded files' names.
    const parsed = parseExperiment(cmd.experiment, 'studio');
    expect(parsed.model).toBe('stories260K');
    expect(parsed.data).toBe('tinyshakespeare.txt');
    // The baseline LoRA is the budget; the others are matched to it.
    expect(parsed.methods.map((m) => [m.method, m.rankMatched])).toEqual([
      ['lora', false],
      ['gora', true],
      ['gralora', true],
      ['gelora', true],
    ]);
    expect(parsed.baseline).toBe('lora');
    expect(parsed.train.seqLen).toBe(128);
  });

  test('refuses without a model, with an invalid field, or a bad definition, naming what to fix', () => {
    const bare = setup(false);
    const id0 = bare.actions.newExperiment();
    bare.actions.startExperiment(id0);
    expect(bare.x(id0)).toMatchObject({ status: 'draft', message: 'Load a model first (or press "Try the demo").' });

    const { actions, sent, x } = setup();
    const id = actions.newExperiment();
    actions.setExperimentFieldValidity(id, 'Steps', false);
    actions.startExperiment(id);
    expect(x(id).message).toBe('"Steps" is not a valid number: correct it to start this experiment.');
    actions.setExperimentFieldValidity(id, 'Steps', true);
    actions.updateExperiment(id, (e) => ({ ...e, split: { ...e.split, validation: 0.5, test: 0.5 } }));
    actions.startExperiment(id);
    expect(x(id).status).toBe('draft');
    expect(x(id).message).toContain('split.validation + split.test');
    expect(sent).toEqual([]);
  });

  test('a started experiment is not edited; Stop and Remove reach the worker with its adapters', () => {
    const { actions, sent, x, ids } = setup();
    const id = actions.newExperiment();
    actions.startExperiment(id);
    actions.updateExperiment(id, (e) => ({ ...e, name: 'changed' }));
    expect(x(id).experiment.name).not.toBe('changed');
    actions.cancelExperiment(id);
    expect(sent.at(-1)).toEqual({ type: 'cancelExperiment', id });
    actions.removeExperiment(id);
    expect(ids()).toEqual([]);

    const done = setup();
    done.store.setState({
      experiments: { y: experimentRecord('y', { status: 'done', adapters: ['lora|0.001|0'] }) },
      experimentOrder: ['y'],
    });
    done.actions.removeExperiment('y');
    expect(done.sent).toEqual([{ type: 'deleteRun', id: 'y:lora|0.001|0' }]);
  });
});

describe('import', () => {
  test("a file's problems come back in the form's words and change nothing", () => {
    const { actions, ids } = setup();
    expect(actions.importExperiment('{ not json')).toMatch(/^The file is not valid JSON/);
    const problems = actions.importExperiment(
      JSON.stringify({ model: 'm', data: 'd', methods: [{ method: 'gralora', gralora_k: 3, rank: 8 }], seeds: [] }),
    )!;
    expect(problems).toContain('seeds must be a non-empty list');
    expect(problems).toContain('GraLoRA');
    expect(problems).not.toContain('--');
    expect(ids()).toEqual([]);
  });

  test('a valid file becomes a draft (or replaces one), its rate mode read from the file', () => {
    const { actions, ids, x } = setup();
    const shared = JSON.stringify({
      model: 'm',
      data: 'd',
      methods: [{ method: 'lora', rank: 4 }, { method: 'gora' }],
      lrs: [1e-3, 1e-2],
    });
    expect(actions.importExperiment(shared)).toBeNull();
    const [id] = ids();
    expect(x(id).lrMode).toBe('shared');
    expect(x(id).experiment.methods[1].rankMatched).toBe(true);
    expect(
      actions.importExperiment(JSON.stringify({ model: 'm', data: 'd', methods: [{ method: 'lora' }] }), id),
    ).toBeNull();
    expect(ids()).toEqual([id]);
    expect(x(id).lrMode).toBe('per-config');
  });
});

test('rate modes: shared sets every configuration to one grid', () => {
  const { actions, x } = setup();
  const id = actions.newExperiment();
  expect(lrModeOf(x(id).experiment)).toBe('per-config');
  actions.setExperimentLrMode(id, 'shared');
  const e = x(id).experiment;
  expect(e.lrs.length).toBeGreaterThan(0);
  expect(e.methods.every((m) => m.lrs === e.lrs)).toBe(true);
  expect(lrModeOf(e)).toBe('shared');
  expect(lrModeOf(experiment())).toBe('shared');
});

test('the report is named after the experiment, safe as a file name', () => {
  expect(reportFileName('compare-fairly')).toBe('compare-fairly-report.zip');
  expect(reportFileName('stories260K on tinyshakespeare.txt')).toBe('stories260K-on-tinyshakespeare.txt-report.zip');
  expect(reportFileName(' / ')).toBe('experiment-report.zip');
});

describe('compare fairly', () => {
  test('on the loaded demo: 4 methods at a matched budget x 3 rates x 3 seeds, started at once', () => {
    const { actions, sent, x, ids } = setup();
    actions.compareFairly();
    const [id] = ids();
    expect(x(id).status).toBe('queued');
    const cmd = sent[0] as Extract<Command, { type: 'startExperiment' }>;
    const e = parseExperiment(cmd.experiment, 'studio');
    expect(e.methods.map((m) => [m.method, m.rankMatched])).toEqual([
      ['lora', false],
      ['gora', true],
      ['gralora', true],
      ['gelora', true],
    ]);
    expect(e.methods.every((m) => m.lrs!.length === 3 && m.seeds!.length === 3)).toBe(true);
    expect(e.train).toMatchObject({ steps: DEMO_EXPERIMENT.steps, batch: DEMO_EXPERIMENT.batch, seqLen: 64 });
    expect(e.baseline).toBe('lora');
  });

  test('without the demo: loads it, then starts once model and dataset are ready', () => {
    const { store, actions, sent, waiting, ids } = setup(false);
    actions.compareFairly();
    expect(sent.map((c) => c.type)).toEqual(['loadModel', 'loadDataset']);
    expect(waiting).toHaveLength(1);
    expect(waiting[0].condition()).toBe(false);
    store.setState({
      model: { card: card as never, ready: true, loading: null, error: null, gpuBytes: 0 },
      dataset: { preview: preview as never, loading: null, error: null },
    });
    expect(waiting[0].condition()).toBe(true);
    expect(ids()).toHaveLength(0);
    waiting[0].then();
    expect(ids()).toHaveLength(1);
    expect(sent.at(-1)?.type).toBe('startExperiment');
  });

  test('the demo definition is valid as the CLI reads it', () => {
    const { actions, sent } = setup();
    actions.compareFairly();
    const cmd = sent[0] as Extract<Command, { type: 'startExperiment' }>;
    expect(() => parseExperiment(cmd.experiment, 'cli')).not.toThrow();
  });
});

test('whenState fires once, although what it does changes the state (and notifies it again) before it returns', () => {
  const store = studioStore([]);
  const then = vi.fn(() => store.setState({ toasts: [] }));
  whenState(store, () => store.getState().restored, then);
  store.setState({ toasts: [] });
  expect(then).not.toHaveBeenCalled();
  store.setState({ restored: true });
  store.setState({ toasts: [] });
  expect(then).toHaveBeenCalledTimes(1);
});
