/** The dataset layer's entry point: a dropped file -> tokenized examples, with a report. */
import { detectFormat } from './detect';
import { readRecords } from './readers';
import { tokenizeRecords, type PromptJoin } from './tokenize';
import { DEFAULT_TRUNCATION, promptLength, supervisedTargets, truncateExample, type Truncation } from './truncation';
import type { ColumnMap, DatasetFile, DatasetFormat, Example, TextTokenizer } from './types';

export type { Batch, BatchShape, BatchStreamOptions, PackOptions } from './batches';
export { BatchStream, packBatches, padBatches, splitTrainValidation, truncate } from './batches';
export type { FormatSpec } from './detect';
export { detectFormat } from './detect';
export { readRecords, SUPPORTED_EXTENSIONS } from './readers';
export type { PromptJoin } from './tokenize';
export { alpacaPrompt, PROMPT_JOINS, tokenizeRecords } from './tokenize';
export type { Truncation } from './truncation';
export { DEFAULT_TRUNCATION, TRUNCATIONS, inferSeqlen, supervisedTargets, truncateExample } from './truncation';
export * from './types';

export interface LoadOptions {
  format?: DatasetFormat;
  columns?: ColumnMap;
  /**
   * Longest example kept. Supervised formats are truncated to it; plain-text documents are split
   * into consecutive pieces instead, so no text is thrown away.
   */
  seqLen?: number;
  /** How supervised examples longer than seqLen are cut (see truncation.ts); default 'keep-answer'. */
  truncation?: Truncation;
  /** What goes between a prompt and its completion (prompt_completion format); default nothing, as TRL. */
  promptJoin?: PromptJoin;
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
    /** Examples left with no supervised token after truncation, and so not returned. */
    dropped: number;
    /** Tokens in the returned examples. */
    tokens: number;
    /** Chat: assistant turns, and those that rendered empty and are not trained on. */
    assistantTurns: number;
    emptyTurns: number;
  };
  /** Record fields that no role reads (warned about). */
  unusedFields: string[];
}

/** Async because Parquet decoding is. Errors name the file. */
export async function loadDataset(
  file: DatasetFile,
  tokenizer: TextTokenizer,
  opts: LoadOptions = {},
): Promise<LoadedDataset> {
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
  const tokenized = named(() => tokenizeRecords(read.records, spec, tokenizer, { promptJoin: opts.promptJoin }));
  const warnings = [...read.warnings, ...tokenized.warnings.map((w) => `${file.name}: ${w}`)];

  let examples = tokenized.examples;
  let truncated = 0;
  let dropped = 0;
  if (opts.seqLen !== undefined) {
    const seqLen = opts.seqLen;
    if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`seqLen must be an integer >= 2, got ${seqLen}`);
    const long = examples.filter((ex) => ex.inputIds.length > seqLen).length;
    if (spec.format === 'text') {
      examples = examples.flatMap((ex) => splitDocument(ex, seqLen));
      if (long > 0) warnings.push(`${file.name}: split ${long} document(s) longer than ${seqLen} tokens into pieces`);
    } else {
      const mode = opts.truncation ?? DEFAULT_TRUNCATION;
      const cut = examples.map((ex) => truncateExample(ex, seqLen, mode, tokenizer.bosId));
      truncated = long;
      if (long > 0) warnings.push(`${file.name}: truncated ${long} example(s) longer than ${seqLen} tokens (${mode})`);
      // An example whose answer was cut off teaches nothing, and a batch of them would divide 0 by 0.
      examples = cut.filter((ex) => supervisedTargets(ex) > 0);
      dropped = cut.length - examples.length;
      if (dropped > 0 && examples.length > 0) {
        warnings.push(
          `${file.name}: dropped ${dropped} example(s) with no supervised token left after truncation to ${seqLen} tokens`,
        );
      }
      if (examples.length === 0)
        throw new NoSupervisedTokensError(file.name, cut.length, seqLen, mode, tokenized.examples);
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
    stats: {
      rows: read.records.length,
      skipped: read.malformed + tokenized.skipped,
      truncated,
      dropped,
      tokens,
      assistantTurns: tokenized.assistantTurns,
      emptyTurns: tokenized.emptyTurns,
    },
    unusedFields: tokenized.unusedFields,
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

/**
 * Every example lost its supervised tokens to truncation. The caller words the advice for where it appears
 * (CLI flags or the studio's fields): `shortestPrompt` is the fewest tokens before any example's first
 * supervised one, so a length of shortestPrompt + 1 keeps at least one target under a plain right cut.
 */
export class NoSupervisedTokensError extends Error {
  readonly shortestPrompt: number;
  constructor(
    readonly file: string,
    readonly examples: number,
    readonly seqLen: number,
    readonly truncation: Truncation,
    whole: Example[],
  ) {
    const shortestPrompt = whole.reduce((m, ex) => Math.min(m, promptLength(ex)), Infinity);
    super(
      `${file}: none of its ${examples} examples keeps a supervised token at ${seqLen} tokens (truncation "${truncation}"): ` +
        `the shortest prompt alone is ${shortestPrompt} tokens.`,
    );
    this.shortestPrompt = shortestPrompt;
  }
}
