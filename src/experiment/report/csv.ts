/** Every run of the experiment as one CSV row (failed runs too, with their error), for pandas, R or a spreadsheet. */
import Papa from 'papaparse';
import { optionsAsFileKeys } from '../schema';
import type { ExperimentResults, ExperimentRunResult } from '../types';
import { methodEntry } from './selection';

export const RUNS_CSV_COLUMNS = [
  'name',
  'method',
  'rank',
  'alpha',
  'targets',
  'options',
  'lr',
  'seed',
  'status',
  'error',
  'trainable_params',
  'val_loss',
  'test_loss',
  'val_tokens',
  'test_tokens',
  'exact_match',
  'elapsed_s',
  'tokens_per_s',
  'adapter',
] as const;

type Cell = string | number | null;

/** Numbers keep full precision; missing values are empty cells (never "NaN"). */
function numberCell(x: number | null | undefined): Cell {
  return x === null || x === undefined || !Number.isFinite(x) ? null : x;
}

function rowOf(results: ExperimentResults, run: ExperimentRunResult): Cell[] {
  const entry = methodEntry(results, run.name);
  return [
    run.name,
    run.method,
    numberCell(entry?.rank),
    numberCell(entry?.alpha),
    // As the CLI's --targets takes them; empty means the family's default.
    entry ? entry.targets.join(',') : null,
    entry ? JSON.stringify(optionsAsFileKeys(entry)) : null,
    numberCell(run.lr),
    numberCell(run.seed),
    run.status,
    run.error ?? null,
    numberCell(run.trainableParams),
    numberCell(run.valLoss),
    numberCell(run.testLoss),
    numberCell(run.valTokens),
    numberCell(run.testTokens),
    numberCell(run.exactMatch),
    numberCell(run.elapsedMs / 1000),
    numberCell(run.tokensPerSecond),
    run.adapter,
  ];
}

/** RFC 4180 CSV (CRLF lines; fields with commas, quotes or newlines quoted, quotes doubled) with a header row. */
export function runsCsv(results: ExperimentResults): string {
  return Papa.unparse(
    { fields: [...RUNS_CSV_COLUMNS], data: results.runs.map((run) => rowOf(results, run)) },
    { newline: '\r\n' },
  );
}
