/** Shared look of the benchmark tables. */

/** An error message wraps inside its cell instead of widening the table. */
export const WRAP_CELL = { whiteSpace: 'normal', maxWidth: 260, overflowWrap: 'anywhere' } as const;
