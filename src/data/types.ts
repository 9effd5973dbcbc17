/** Types shared by the dataset layer (readers -> detect -> tokenize -> batches). */

/** The tokenizer as the dataset layer sees it (implemented in src/tokenizer/tokenizer.ts). */
export type { TextTokenizer } from '../tokenizer/tokenizer';

/** A dropped file, from the browser (File.arrayBuffer()) or Node (fs.readFileSync). */
export interface DatasetFile {
  name: string;
  bytes: Uint8Array;
}

/** One raw row as read from the file: column name -> value (strings, numbers, lists, objects). */
export type RawRecord = Record<string, unknown>;

/** A tokenized training example. labels[i] is the label of inputIds[i] (-100 = not supervised). */
export interface Example {
  inputIds: number[];
  labels: number[];
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
