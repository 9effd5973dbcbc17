/**
 * Metrics files: the CSV (read back with papaparse) has one row per run and step with every StepPoint and
 * EvalPoint field, an evaluation sharing its step's row; the JSON holds the steps, evaluations and settings.
 */
import Papa from 'papaparse';
import { describe, expect, test } from 'vitest';
import {
  hasMetrics,
  METRICS_CSV_COLUMNS,
  metricRows,
  metricsCsv,
  metricsFileName,
  metricsJson,
  shownMetricsLabel,
} from '../src/app/run-metrics-export';
import type { RunRecord } from '../src/app/run-record';
import type { StepPoint } from '../src/worker/protocol';
import { config, record } from './app/fixtures';

const step = (s: number, patch: Partial<StepPoint> = {}): StepPoint => ({
  step: s,
  loss: 5 - s / 4,
  lr: 1e-3 * (s + 1),
  gradNorm: 0.5 + s,
  tokensPerSecond: 1000 + s,
  tokens: 64 * (s + 1),
  elapsedMs: 20 * (s + 1),
  layerGradNorms: [0.1 * (s + 1), 0.2 * (s + 1)],
  ...patch,
});

/** A run of 3 steps evaluated at the start (step 0) and after the last step (step 3). */
const run: RunRecord = record('r1', {
  config: config('r1', { name: 'LoRA q,v r=8, "quoted"' }),
  status: 'done',
  modelName: 'stories260K',
  datasetName: 'tinyshakespeare.txt',
  tags: ['baseline'],
  notes: 'first try',
  points: [step(0), step(1), step(2)],
  evals: [
    { step: 0, tokens: 0, loss: 5.5 },
    { step: 3, tokens: 256, loss: 4.25 },
  ],
});

/** A run without per-block norms, whose last step's loss was not finite. */
const other: RunRecord = record('r2', {
  status: 'failed',
  points: [step(0, { layerGradNorms: undefined }), step(1, { loss: Number.NaN, layerGradNorms: undefined })],
  evals: [],
});

const parsed = (csv: string) => Papa.parse<Record<string, string>>(csv, { header: true, skipEmptyLines: true });

describe('metricRows', () => {
  test('steps and evaluations merged by step, in order; an evaluation after the last step has its own row', () => {
    const rows = metricRows(run);
    expect(rows.map((r) => [r.step, r.loss, r.valLoss])).toEqual([
      [0, 5, 5.5],
      [1, 4.75, null],
      [2, 4.5, null],
      [3, null, 4.25],
    ]);
    expect(rows[3]).toMatchObject({ tokens: 256, lr: null, gradNorm: null, layerGradNorms: [] });
  });
});

describe('metricsCsv', () => {
  test('one run: a header, then every field of every step, numbers at full precision', () => {
    const csv = metricsCsv([run]);
    expect(csv.split('\r\n')[0]).toBe(
      'run_id,run,step,tokens,loss,lr,grad_norm,tokens_per_s,elapsed_ms,val_loss,layer_grad_norm_0,layer_grad_norm_1',
    );
    const { data, errors } = parsed(csv);
    expect(errors).toEqual([]);
    expect(data).toHaveLength(4);
    expect(data[1]).toEqual({
      run_id: 'r1',
      run: 'LoRA q,v r=8, "quoted"',
      step: '1',
      tokens: '128',
      loss: '4.75',
      lr: '0.002',
      grad_norm: '1.5',
      tokens_per_s: '1001',
      elapsed_ms: '40',
      val_loss: '',
      layer_grad_norm_0: '0.2',
      layer_grad_norm_1: '0.4',
    });
    expect(data[0].val_loss).toBe('5.5');
    expect(data[3]).toMatchObject({ step: '3', loss: '', val_loss: '4.25', layer_grad_norm_0: '' });
  });

  test('all runs: one table, the block columns of the run that has most; a non-finite loss reads NaN', () => {
    const { data, meta } = parsed(metricsCsv([run, other]));
    expect(meta.fields).toEqual([...METRICS_CSV_COLUMNS, 'layer_grad_norm_0', 'layer_grad_norm_1']);
    expect(data.map((r) => `${r.run_id}:${r.step}`)).toEqual(['r1:0', 'r1:1', 'r1:2', 'r1:3', 'r2:0', 'r2:1']);
    expect(data[5]).toMatchObject({ loss: 'NaN', layer_grad_norm_0: '', layer_grad_norm_1: '' });
    // Without any per-block norms there are no block columns.
    expect(parsed(metricsCsv([other])).meta.fields).toEqual([...METRICS_CSV_COLUMNS]);
  });
});

describe('metricsJson', () => {
  test('every run with its settings, where it trained, its notes, its steps and evaluations (CLI names)', () => {
    const doc = JSON.parse(metricsJson([run, other]));
    expect(doc).toMatchObject({ format: 'lora-studio-metrics', version: 1 });
    expect(doc.runs).toHaveLength(2);
    expect(doc.runs[0]).toMatchObject({
      id: 'r1',
      name: 'LoRA q,v r=8, "quoted"',
      status: 'done',
      model: 'stories260K',
      dataset: 'tinyshakespeare.txt',
      tags: ['baseline'],
      notes: 'first try',
      settings: { method: 'lora', rank: 8, lr: 2e-4, steps: 40, gradAccum: 1 },
    });
    expect(doc.runs[0].steps[2]).toEqual({
      step: 2,
      loss: 4.5,
      lr: 0.003,
      grad_norm: 2.5,
      tokens_per_s: 1002,
      tokens: 192,
      elapsed_ms: 60,
      layer_grad_norms: [0.30000000000000004, 0.6000000000000001],
    });
    expect(doc.runs[0].evals).toEqual([
      { step: 0, tokens: 0, val_loss: 5.5 },
      { step: 3, tokens: 256, val_loss: 4.25 },
    ]);
    // JSON has no NaN: the non-finite loss is null.
    expect(doc.runs[1].steps[1].loss).toBeNull();
    expect(doc.runs[1].steps[1].layer_grad_norms).toBeUndefined();
  });

  test("file names: the run's for one run, the studio's for several; a draft has nothing to export", () => {
    expect(metricsFileName([run], 'csv')).toBe('lora-q-v-r-8-quoted-metrics.csv');
    expect(metricsFileName([run, other], 'json')).toBe('lora-studio-metrics.json');
    expect(hasMetrics(record('d'))).toBe(false);
    expect(hasMetrics(run)).toBe(true);
  });
});

describe('shownMetricsLabel', () => {
  test('says how many of the shown runs it exports, and that drafts are left out', () => {
    expect(shownMetricsLabel(3, 3, 'CSV')).toBe('Export metrics of the 3 shown runs (CSV)');
    expect(shownMetricsLabel(1, 1, 'JSON')).toBe('Export metrics of the shown run (JSON)');
    expect(shownMetricsLabel(2, 3, 'CSV')).toBe('Export metrics of the 2 shown runs with metrics (CSV)');
    expect(shownMetricsLabel(1, 2, 'CSV')).toBe('Export metrics of the 1 shown run with metrics (CSV)');
    expect(shownMetricsLabel(0, 2, 'JSON')).toBe('Export metrics (JSON): no shown run has any yet');
  });
});
