/** The dataset layer's entry point: a dropped file -> tokenized examples, with a report. */
import { DETECTION_ROWS, detectFormat, type FormatSpec } from './detect';
import { readRecordBatches, type StreamOptions } from './readers';
import { sliceIds, TokenArena } from './token-arena';
import { RecordTokenizer, type PromptJoin } from './tokenize';
import { DEFAULT_TRUNCATION, promptLength, supervisedTargets, truncateExample, type Truncation } from './truncation';
import type { ColumnMap, DatasetFile, DatasetFormat, Example, RawRecord, TextTokenizer } from './types';

export type { Batch, BatchShape, BatchStreamOptions, PackOptions } from './batches';
export { BatchStream, packBatches, padBatches, splitTrainValidation, truncate } from './batches';
export type { FormatSpec } from './detect';
export { DETECTION_ROWS, detectFormat, keepDetectionSample } from './detect';
export type { ReadProgress, ReadSummary } from './readers';
export { readRecordBatches, readRecords, SUPPORTED_EXTENSIONS } from './readers';
export type { PromptJoin } from './tokenize';
export { alpacaPrompt, PROMPT_JOINS, RecordTokenizer, tokenizeRecords } from './tokenize';
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

/** How far a streamed tokenization has got. */
export interface TokenizeProgress {
  bytesRead: number;
  totalBytes: number;
  /** Records read and examples made so far. */
  rows: number;
  examples: number;
}

export interface TokenizeOptions extends Pick<LoadOptions, 'format' | 'columns' | 'promptJoin'>, StreamOptions {
  /** Called after each batch (about a megabyte of text). */
  onProgress?: (progress: TokenizeProgress) => void;
}

/** A file's examples, whole (documents not split, nothing truncated): what every sequence length is fitted from. */
export interface TokenizedDataset {
  file: string;
  examples: Example[];
  format: DatasetFormat;
  columns: ColumnMap;
  warnings: string[];
  rows: number;
  skipped: number;
  assistantTurns: number;
  emptyTurns: number;
  unusedFields: string[];
}

/** Loads and fits a file in one go. Async because reading is. Errors name the file. */
export async function loadDataset(
  file: DatasetFile,
  tokenizer: TextTokenizer,
  opts: LoadOptions & TokenizeOptions = {},
): Promise<LoadedDataset> {
  return fitDataset(await tokenizeDataset(file, tokenizer, opts), tokenizer, opts);
}

/**
 * Reads and tokenizes the file a batch at a time: only the current batch's records are in memory, never the file.
 * The format is detected from the first rows, as for a file read whole.
 */
export async function tokenizeDataset(
  file: DatasetFile,
  tokenizer: TextTokenizer,
  opts: TokenizeOptions = {},
): Promise<TokenizedDataset> {
  const named = namedAfter(file.name);
  let spec: FormatSpec | null = null;
  let recordTokenizer: RecordTokenizer | null = null;
  let waiting: RawRecord[] = [];
  let rows = 0;
  const read = await readRecordBatches(
    file,
    async (records, progress) => {
      rows += records.length;
      if (!recordTokenizer) {
        waiting = waiting.length === 0 ? records : waiting.concat(records);
        if (waiting.length === 0 || (waiting.length < DETECTION_ROWS && !progress.done)) {
          opts.onProgress?.({ bytesRead: progress.bytesRead, totalBytes: progress.totalBytes, rows, examples: 0 });
          return;
        }
        const detected = named(() => detectFormat(waiting, opts));
        recordTokenizer = named(
          () => new RecordTokenizer(detected, tokenizer, { promptJoin: opts.promptJoin, arena: new TokenArena() }),
        );
        spec = detected;
        records = waiting;
        waiting = [];
      }
      const batch = recordTokenizer;
      named(() => batch.add(records));
      opts.onProgress?.({
        bytesRead: progress.bytesRead,
        totalBytes: progress.totalBytes,
        rows,
        examples: batch.exampleCount,
      });
      // Lets the studio's worker answer messages between batches of a long file.
      if (!progress.done) await new Promise((resolve) => setTimeout(resolve, 0));
    },
    opts,
  );
  if (!spec || !recordTokenizer) throw new Error(`${file.name}: no records found (the file is empty)`);
  const tokenized = (recordTokenizer as RecordTokenizer).finish();
  return {
    file: file.name,
    examples: tokenized.examples,
    format: (spec as FormatSpec).format,
    columns: (spec as FormatSpec).columns,
    warnings: [...read.warnings, ...tokenized.warnings.map((w) => `${file.name}: ${w}`)],
    rows: read.rows,
    skipped: read.malformed + tokenized.skipped,
    assistantTurns: tokenized.assistantTurns,
    emptyTurns: tokenized.emptyTurns,
    unusedFields: tokenized.unusedFields,
  };
}

/**
 * The examples at a sequence length (seqLen absent: whole). Plain-text documents are split into consecutive
 * pieces, supervised examples truncated; examples that already fit are shared with `whole`, not copied.
 */
export function fitDataset(
  whole: TokenizedDataset,
  tokenizer: TextTokenizer,
  opts: Pick<LoadOptions, 'seqLen' | 'truncation'> = {},
): LoadedDataset {
  const name = whole.file;
  const warnings = [...whole.warnings];
  let examples = whole.examples;
  let truncated = 0;
  let dropped = 0;
  if (opts.seqLen !== undefined) {
    const seqLen = opts.seqLen;
    if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`seqLen must be an integer >= 2, got ${seqLen}`);
    const long = examples.filter((ex) => ex.inputIds.length > seqLen).length;
    if (whole.format === 'text') {
      examples = examples.flatMap((ex) => splitDocument(ex, seqLen));
      if (long > 0) warnings.push(`${name}: split ${long} document(s) longer than ${seqLen} tokens into pieces`);
    } else {
      const mode = opts.truncation ?? DEFAULT_TRUNCATION;
      const arena = new TokenArena();
      const cut = examples.map((ex) => truncateExample(ex, seqLen, mode, tokenizer.bosId, arena));
      truncated = long;
      if (long > 0) warnings.push(`${name}: truncated ${long} example(s) longer than ${seqLen} tokens (${mode})`);
      // An example whose answer was cut off teaches nothing, and a batch of them would divide 0 by 0.
      examples = cut.filter((ex) => supervisedTargets(ex) > 0);
      dropped = cut.length - examples.length;
      if (dropped > 0 && examples.length > 0) {
        warnings.push(
          `${name}: dropped ${dropped} example(s) with no supervised token left after truncation to ${seqLen} tokens`,
        );
      }
      if (examples.length === 0) throw new NoSupervisedTokensError(name, cut.length, seqLen, mode, whole.examples);
    }
  }
  if (examples.length === 0) {
    throw new Error(`${name}: no usable examples (${warnings.join(' ') || 'every row was skipped'})`);
  }
  let tokens = 0;
  for (const ex of examples) tokens += ex.inputIds.length;
  return {
    examples,
    format: whole.format,
    columns: whole.columns,
    warnings,
    stats: {
      rows: whole.rows,
      skipped: whole.skipped,
      truncated,
      dropped,
      tokens,
      assistantTurns: whole.assistantTurns,
      emptyTurns: whole.emptyTurns,
    },
    unusedFields: whole.unusedFields,
  };
}

/** Runs a step, starting its error message with the file name. */
function namedAfter(name: string) {
  return <T>(step: () => T): T => {
    try {
      return step();
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(message.startsWith(name) ? message : `${name}: ${message}`, { cause: err });
    }
  };
}

/** Consecutive pieces of at most seqLen tokens; a last piece of one token teaches nothing and is dropped. */
function splitDocument(ex: Example, seqLen: number): Example[] {
  const pieces: Example[] = [];
  if (ex.inputIds.length <= seqLen) return [ex];
  for (let start = 0; start < ex.inputIds.length; start += seqLen) {
    const inputIds = sliceIds(ex.inputIds, start, start + seqLen);
    if (inputIds.length < 2 && start > 0) break;
    pieces.push({ inputIds, labels: sliceIds(ex.labels, start, start + seqLen) });
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
