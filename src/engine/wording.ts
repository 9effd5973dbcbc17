/**
 * The same problem is worded for where it appears: the CLI names its flags, the studio its fields.
 * The engine builds messages from these names instead of hard-coding either.
 */
import type { NoSupervisedTokensError } from '../data/index';

export interface RunWording {
  lr: string;
  seqLen: string;
  truncation: string;
  /** How to turn gradient clipping on, where the surface lets the user turn it off (null: always on). */
  clipAdvice: string | null;
  validation: string;
}

export const CLI_WORDING: RunWording = {
  lr: '--lr',
  seqLen: '--seq-len',
  truncation: '--truncation keep-answer',
  clipAdvice: '--max-grad-norm 1',
  validation: '--val-fraction',
};

/** An experiment file's keys (the CLI's experiment command and anything that reads the file). */
export const EXPERIMENT_FILE_WORDING: RunWording = {
  lr: 'lrs',
  seqLen: 'train.seq_len',
  truncation: 'train.truncation "keep-answer"',
  clipAdvice: 'train.max_grad_norm 1',
  validation: 'split.validation',
};

export const STUDIO_WORDING: RunWording = {
  lr: 'Learning rate',
  seqLen: 'Seq. length',
  truncation: 'Truncation "Keep the answer"',
  clipAdvice: null,
  validation: 'Val. examples',
};

export function nonFiniteAdvice(w: RunWording): string {
  return w.clipAdvice ? `Try a lower ${w.lr} or ${w.clipAdvice}.` : `Try a lower ${w.lr}.`;
}

/** Why a dataset has nothing left to learn at this sequence length, and what to change. */
export function noSupervisedMessage(e: NoSupervisedTokensError, w: RunWording, maxPositions: number): string {
  const fits = e.shortestPrompt + 1;
  const advice = [
    e.truncation === 'right' ? `use ${w.truncation}, which cuts the prompt instead of the answer` : null,
    fits <= maxPositions && fits > e.seqLen ? `raise ${w.seqLen} to at least ${fits}` : null,
    'use shorter prompts',
  ].filter((a): a is string => a !== null);
  const limit =
    fits > maxPositions ? ` The model reads at most ${maxPositions} tokens, so no length keeps both whole.` : '';
  return `${e.message} Nothing would be trained.${limit} To train on it, ${advice.slice(0, -1).join(', ')}${advice.length > 1 ? ' or ' : ''}${advice.at(-1)}.`;
}
