/**
 * A run's metrics as files: CSV (one row per step, papaparse's unparse) and JSON (the steps and the evaluations as
 * recorded), for one run or several. Column and key names follow the CLI's JSON lines (step, loss, lr, grad_norm,
 * tokens_per_s, val_loss), so a studio run and a CLI run read the same. Pure: downloading is run-download.ts's job.
 */
import Papa from 'papaparse';
import type { EvalPoint, StepPoint } from '../worker/protocol';
import { slug } from '../worker/snippets';
import { runConfigSettings } from './run-config-json';
import type { RunRecord } from './run-record';

/** One step of a run: its training metrics, and the validation loss when an evaluation was made at that step. */
export interface MetricRow {
  step: number;
  /** Supervised tokens seen so far. */
  tokens: number;
  /** null: the step only has an evaluation (the one after the last step). */
  loss: number | null;
  lr: number | null;
  gradNorm: number | null;
  tokensPerSecond: number | null;
  elapsedMs: number | null;
  valLoss: number | null;
  /** Gradient norm per transformer block, before clipping (empty when not recorded). */
  layerGradNorms: number[];
}

/** The fixed CSV columns; `layer_grad_norm_<i>` columns follow, one per transformer block. */
export const METRICS_CSV_COLUMNS = [
  'run_id',
  'run',
  'step',
  'tokens',
  'loss',
  'lr',
  'grad_norm',
  'tokens_per_s',
  'elapsed_ms',
  'val_loss',
] as const;

/**
 * The run's steps and evaluations merged by step, in step order. An evaluation at step s measures the adapter
 * after s updates, the weights step s's training loss is computed with, so the two share a row.
 */
export function metricRows(run: Pick<RunRecord, 'points' | 'evals'>): MetricRow[] {
  const rows = new Map<number, MetricRow>();
  for (const p of run.points) rows.set(p.step, stepRow(p));
  for (const e of run.evals) rows.set(e.step, { ...(rows.get(e.step) ?? evalOnlyRow(e)), valLoss: e.loss });
  return [...rows.values()].sort((a, b) => a.step - b.step);
}

function stepRow(p: StepPoint): MetricRow {
  return {
    step: p.step,
    tokens: p.tokens,
    loss: p.loss,
    lr: p.lr,
    gradNorm: p.gradNorm,
    tokensPerSecond: p.tokensPerSecond,
    elapsedMs: p.elapsedMs,
    valLoss: null,
    layerGradNorms: p.layerGradNorms ?? [],
  };
}

function evalOnlyRow(e: EvalPoint): MetricRow {
  return {
    step: e.step,
    tokens: e.tokens,
    loss: null,
    lr: null,
    gradNorm: null,
    tokensPerSecond: null,
    elapsedMs: null,
    valLoss: null,
    layerGradNorms: [],
  };
}

/** RFC 4180 CSV (CRLF lines, a header row) of the runs' metrics, one row per run and step; empty cells: no value. */
export function metricsCsv(runs: readonly RunRecord[]): string {
  const perRun = runs.map((r) => ({ run: r, rows: metricRows(r) }));
  const blocks = Math.max(0, ...perRun.flatMap(({ rows }) => rows.map((row) => row.layerGradNorms.length)));
  const layerColumns = Array.from({ length: blocks }, (_, i) => `layer_grad_norm_${i}`);
  const data = perRun.flatMap(({ run, rows }) =>
    rows.map((row) => [
      run.config.id,
      run.config.name,
      row.step,
      row.tokens,
      cell(row.loss),
      cell(row.lr),
      cell(row.gradNorm),
      cell(row.tokensPerSecond),
      cell(row.elapsedMs),
      cell(row.valLoss),
      ...layerColumns.map((_, i) => cell(row.layerGradNorms[i] ?? null)),
    ]),
  );
  return Papa.unparse({ fields: [...METRICS_CSV_COLUMNS, ...layerColumns], data }, { newline: '\r\n' });
}

/** A number as a CSV cell: as JavaScript prints it (full precision), empty for no value. */
const cell = (v: number | null) => (v === null ? '' : String(v));

/** The metrics JSON's format name and version, so a reader can tell what it holds. */
export const METRICS_JSON_FORMAT = 'lora-studio-metrics';
export const METRICS_JSON_VERSION = 1;

/**
 * The runs' metrics as JSON: each run's settings, where it trained, its summary, and every step and evaluation.
 * JSON has no NaN or Infinity: a non-finite loss (the step that stopped a run) is written as null.
 */
export function metricsJson(runs: readonly RunRecord[]): string {
  const doc = {
    format: METRICS_JSON_FORMAT,
    version: METRICS_JSON_VERSION,
    runs: runs.map((r) => ({
      id: r.config.id,
      name: r.config.name,
      status: r.status,
      model: r.modelName,
      dataset: r.datasetName,
      tags: r.tags,
      notes: r.notes,
      settings: runConfigSettings(r.config),
      summary: r.summary,
      steps: r.points.map((p) => ({
        step: p.step,
        loss: p.loss,
        lr: p.lr,
        grad_norm: p.gradNorm,
        tokens_per_s: p.tokensPerSecond,
        tokens: p.tokens,
        elapsed_ms: p.elapsedMs,
        ...(p.layerGradNorms ? { layer_grad_norms: p.layerGradNorms } : {}),
      })),
      evals: r.evals.map((e) => ({ step: e.step, tokens: e.tokens, val_loss: e.loss })),
    })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Runs with something to export: at least one step or evaluation. */
export function hasMetrics(r: Pick<RunRecord, 'points' | 'evals'>): boolean {
  return r.points.length > 0 || r.evals.length > 0;
}

/** "lora-all-linear-r-8-metrics.csv" for one run; "lora-studio-metrics.json" for several. */
export function metricsFileName(runs: readonly RunRecord[], ext: 'csv' | 'json'): string {
  return runs.length === 1 ? `${slug(runs[0].config.name)}-metrics.${ext}` : `lora-studio-metrics.${ext}`;
}

/**
 * The run list's menu item for the metrics of the runs it shows (its view and filters, so archived runs only in
 * the Archived view): "Export metrics of the 3 shown runs (CSV)". Shown runs without metrics (drafts) are left
 * out, and the words say so.
 */
export function shownMetricsLabel(withMetrics: number, shown: number, format: 'CSV' | 'JSON'): string {
  if (withMetrics === 0) return `Export metrics (${format}): no shown run has any yet`;
  const runs =
    withMetrics === 1 ? (shown === 1 ? 'the shown run' : 'the 1 shown run') : `the ${withMetrics} shown runs`;
  return `Export metrics of ${runs}${withMetrics < shown ? ' with metrics' : ''} (${format})`;
}
