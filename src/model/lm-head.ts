/**
 * How many rows of logits a training graph computes at a time. A 150k-token vocabulary costs 0.6 MB of logits per
 * row, so a batch of long rows would otherwise hold gigabytes; the graph runs the LM head and the loss chunk by
 * chunk over one buffer instead. Pure (the studio's memory estimate uses it too).
 */

/** Largest logits buffer a graph allocates by default. */
export const LOGITS_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows per LM-head chunk: the requested number, else all rows when their logits fit LOGITS_CHUNK_BYTES. */
export function logitsChunkRows(rows: number, vocab: number, requested?: number): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1)
      throw new Error(`logitsChunkRows must be a positive integer, got ${requested}`);
    return Math.min(requested, rows);
  }
  return Math.max(1, Math.min(rows, Math.floor(LOGITS_CHUNK_BYTES / (vocab * 4))));
}
