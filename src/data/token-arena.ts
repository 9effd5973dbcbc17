/**
 * Where a dataset's tokens live: blocks of Int32Array, with each example a pair of views into them. A plain number[]
 * costs 8 bytes a token in Node (4 in Chrome) plus the slack of growing it; a 200 MB file is tens of millions of
 * tokens, for ids and labels both. Here a token costs 4 bytes, and the pieces a sequence length cuts share them.
 */
import type { Example, TokenIds } from './types';

/**
 * Blocks grow with the data, a quarter of what is stored so far, from 64 Ki tokens to 4 Mi (16 MB): a small file gets
 * a small arena, and the unused end of the last block stays under a quarter of the whole.
 */
const FIRST_BLOCK_TOKENS = 1 << 16;
const MAX_BLOCK_TOKENS = 1 << 22;

export class TokenArena {
  private ids = new Int32Array(0);
  private labels = new Int32Array(0);
  private used = 0;
  /** Tokens held, for the memory figures. */
  tokens = 0;

  /** The example copied into the arena: views that stay valid as long as the arena's examples are referenced. */
  store(ex: Example): Example {
    const n = ex.inputIds.length;
    if (this.used + n > this.ids.length) {
      const size = Math.max(n, Math.min(MAX_BLOCK_TOKENS, Math.max(FIRST_BLOCK_TOKENS, this.tokens >> 2)));
      this.ids = new Int32Array(size);
      this.labels = new Int32Array(size);
      this.used = 0;
    }
    const start = this.used;
    this.ids.set(ex.inputIds, start);
    this.labels.set(ex.labels, start);
    this.used += n;
    this.tokens += n;
    return { inputIds: this.ids.subarray(start, start + n), labels: this.labels.subarray(start, start + n) };
  }
}

/** ids[start, end): a view of an arena's ids (no copy), or a slice of a plain array. */
export function sliceIds(ids: TokenIds, start: number, end: number): TokenIds {
  return ids instanceof Int32Array ? ids.subarray(start, end) : ids.slice(start, end);
}
