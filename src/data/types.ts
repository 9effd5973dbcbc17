/** Types shared by the dataset layer (readers -> detect -> tokenize -> batches). */

/** The tokenizer as the dataset layer sees it (implemented in src/tokenizer/tokenizer.ts). */
export type { TextTokenizer } from '../tokenizer/tokenizer';

/** A dataset file: bytes in memory, or a browser File or file on disk streamed in chunks (dataset-file.ts). */
export type { BytesFile, DatasetFile, StreamedFile } from './dataset-file';

/** One raw row as read from the file: column name -> value (strings, numbers, lists, objects). */
export type RawRecord = Record<string, unknown>;

/**
 * Token ids: plain arrays, or views into a dataset's token arena (token-arena.ts), which stores a large file's tokens
 * in 4 bytes each and lets pieces and truncations share them. Read-only either way: nothing mutates an example.
 */
export type TokenIds = number[] | Int32Array;

/** A tokenized training example. labels[i] is the label of inputIds[i] (-100 = not supervised). */
export interface Example {
  inputIds: TokenIds;
  labels: TokenIds;
}

/** Hugging Face's ignore index: positions with this label contribute nothing to the loss. */
export const IGNORE_INDEX = -100;

export type DatasetFormat = 'text' | 'prompt_completion' | 'alpaca' | 'chat' | 'tokens';

/**
 * Which record field plays each role. Keys by format:
 *  text: text; prompt_completion: prompt, completion; alpaca: instruction, input, output;
 *  chat: messages; tokens: input_ids, labels.
 */
export type ColumnMap = Partial<Record<ColumnRole, string>>;

export type ColumnRole =
  | 'text'
  | 'prompt'
  | 'completion'
  | 'instruction'
  | 'input'
  | 'output'
  | 'messages'
  | 'input_ids'
  | 'labels';
