/**
 * Fitting a supervised example into a sequence length without losing its answer.
 *
 *  - 'keep-answer' (default): the budget is split between the prompt (every token before the first
 *    supervised one) and the answer (the rest) as LLaMA-Factory's `infer_seqlen` does
 *    (src/llamafactory/data/processor/processor_utils.py): an answer shorter than half the budget is kept
 *    whole; else a prompt shorter than half is kept whole and the answer gets the rest; else both are cut in
 *    proportion to their lengths. Unlike LLaMA-Factory, the prompt is cut from the LEFT (its end, next to
 *    the answer, is what the answer depends on), keeping a leading BOS; the answer is cut from the right.
 *  - 'right': a plain cut at the sequence length (TRL's SFTTrainer `truncation_mode="keep_start"`).
 */
import { sliceIds, type TokenArena } from './token-arena';
import { IGNORE_INDEX, type Example, type TokenIds } from './types';

export type Truncation = 'keep-answer' | 'right';
export const TRUNCATIONS: readonly Truncation[] = ['keep-answer', 'right'];
export const DEFAULT_TRUNCATION: Truncation = 'keep-answer';

/** LLaMA-Factory's infer_seqlen: how many prompt (source) and answer (target) tokens fit in `cutoff`. */
export function inferSeqlen(sourceLen: number, targetLen: number, cutoff: number): { source: number; target: number } {
  let maxTarget: number;
  if (targetLen * 2 < cutoff) maxTarget = cutoff;
  else if (sourceLen * 2 < cutoff) maxTarget = cutoff - sourceLen;
  else maxTarget = Math.floor(cutoff * (targetLen / (sourceLen + targetLen)));
  const target = Math.min(maxTarget, targetLen);
  const source = Math.min(Math.max(cutoff - target, 0), sourceLen);
  return { source, target };
}

/** Index of the first supervised label (the prompt's length), or the example's length when there is none. */
export function promptLength(ex: Example): number {
  const i = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
  return i < 0 ? ex.labels.length : i;
}

/** Positions the loss is computed on: labels[0] is never a target (nothing predicts the first token). */
export function supervisedTargets(ex: Example): number {
  let n = 0;
  for (let i = 1; i < ex.labels.length; i++) if (ex.labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/**
 * `arena`: where a keep-answer cut (prompt end + answer, a new sequence) is stored. A million small Int32Arrays
 * cost far more than their tokens (each its own buffer); a dataset's cuts share one arena instead.
 */
export function truncateExample(
  ex: Example,
  seqLen: number,
  mode: Truncation,
  bosId: number | null = null,
  arena?: TokenArena,
): Example {
  const n = ex.inputIds.length;
  if (n <= seqLen) return ex;
  const p = promptLength(ex);
  if (mode === 'right' || p === 0 || p >= n) return slice(ex, 0, seqLen);
  // A leading BOS stays: the model was trained to see it first.
  const keepBos = bosId !== null && p > 1 && ex.inputIds[0] === bosId && ex.labels[0] === IGNORE_INDEX ? 1 : 0;
  const { source, target } = inferSeqlen(p - keepBos, n - p, seqLen - keepBos);
  const parts = [slice(ex, 0, keepBos), slice(ex, p - source, p), slice(ex, p, p + target)];
  const cut = { inputIds: joinIds(parts.map((e) => e.inputIds)), labels: joinIds(parts.map((e) => e.labels)) };
  return arena ? arena.store(cut) : cut;
}

/** The pieces end to end: an Int32Array when they are (a stored dataset's cut examples stay 4 bytes a token). */
function joinIds(parts: TokenIds[]): TokenIds {
  if (!parts.some((p) => p instanceof Int32Array)) return (parts as number[][]).flat();
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function slice(ex: Example, start: number, end: number): Example {
  return { inputIds: sliceIds(ex.inputIds, start, end), labels: sliceIds(ex.labels, start, end) };
}
