/** The dataset layer's entry point: a dropped file -> tokenized examples, with a report. */
import { truncate } from './batches';
import { detectFormat } from './detect';
import { readRecords } from './readers';
import { tokenizeRecords } from './tokenize';
import type { ColumnMap, DatasetFile, DatasetFormat, Example, TextTokenizer } from './types';

export type { Batch, BatchShape, BatchStreamOptions, PackOptions } from './batches';
export { BatchStream, packBatches, padBatches, splitTrainValidation, truncate } from './batches';
export type { FormatSpec } from './detect';
export { detectFormat } from './detect';
export { readRecords, SUPPORTED_EXTENSIONS } from './readers';
export { alpacaPrompt, tokenizeRecords } from './tokenize';
export * from './types';

export interface LoadOptions {
  format?: DatasetFormat;
  columns?: ColumnMap;
  /**
   * Longest example kept. Supervised formats are truncated to it; plain-text documents are split
   * into consecutive pieces instead, so no text is thrown away.
   */
  seqLen?: number;
}

export interface LoadedDataset {
  examples: Example[];
  format: DatasetFormat;
  /** Resolved role -> field mapping (what detection chose, or the user's override). */
  columns: ColumnMap;
  warnings: string[];
  stats: {
    /** Records read from the file. */
    rows: number;
    /** Rows that gave no example: unparseable lines plus skipped records. */
    skipped: number;
    /** Examples cut to seqLen. */
    truncated: number;
    /** Tokens in the returned examples. */
    tokens: number;
  };
}

/** Async because Parquet decoding is. Errors name the file. */
export async function loadDataset(file: DatasetFile, tokenizer: TextTokenizer, opts: LoadOptions = {}): Promise<LoadedDataset> {
  const read = await readRecords(file);
  if (read.records.length === 0) throw new Error(`${file.name}: no records found (the file is empty)`);
  const named = <T>(step: () => T): T => {
    try {
      return step();
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(message.startsWith(file.name) ? message : `${file.name}: ${message}`, { cause: err });
    }
  };
  const spec = named(() => detectFormat(read.records, opts));
  const tokenized = named(() => tokenizeRecords(read.records, spec, tokenizer));
  const warnings = [...read.warnings, ...tokenized.warnings.map((w) => `${file.name}: ${w}`)];

  let examples = tokenized.examples;
  let truncated = 0;
  if (opts.seqLen !== undefined) {
    const seqLen = opts.seqLen;
    if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`seqLen must be an integer >= 2, got ${seqLen}`);
    const long = examples.filter((ex) => ex.inputIds.length > seqLen).length;
    if (spec.format === 'text') {
      examples = examples.flatMap((ex) => splitDocument(ex, seqLen));
      if (long > 0) warnings.push(`${file.name}: split ${long} document(s) longer than ${seqLen} tokens into pieces`);
    } else {
      examples = examples.map((ex) => truncate(ex, seqLen));
      truncated = long;
      if (long > 0) warnings.push(`${file.name}: truncated ${long} example(s) longer than ${seqLen} tokens`);
    }
  }
  if (examples.length === 0) {
    throw new Error(`${file.name}: no usable examples (${warnings.join(' ') || 'every row was skipped'})`);
  }
  const tokens = examples.reduce((sum, ex) => sum + ex.inputIds.length, 0);
  return {
    examples,
    format: spec.format,
    columns: spec.columns,
    warnings,
    stats: { rows: read.records.length, skipped: read.malformed + tokenized.skipped, truncated, tokens },
  };
}

/** Consecutive pieces of at most seqLen tokens; a last piece of one token teaches nothing and is dropped. */
function splitDocument(ex: Example, seqLen: number): Example[] {
  const pieces: Example[] = [];
  for (let start = 0; start < ex.inputIds.length; start += seqLen) {
    const inputIds = ex.inputIds.slice(start, start + seqLen);
    if (inputIds.length < 2 && start > 0) break;
    pieces.push({ inputIds, labels: ex.labels.slice(start, start + seqLen) });
  }
  return pieces;
}
