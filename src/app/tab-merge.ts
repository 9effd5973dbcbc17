/**
 * Merging records that several tabs change, field by field: a tab writes only the fields it changed since it last
 * knew the stored record, onto the stored record as it is now (so another tab's change to other fields is not
 * lost), and a tab that hears of another's write keeps its own unsaved changes on top of what it reads back.
 * Pure: persist.ts and persistence.ts do the reading and writing.
 */
import type { RunRecord } from './run-record';

export type Fields<T> = readonly (keyof T)[];

/** The top-level fields whose values differ (by identity: the store replaces what it changes). */
export function changedFields<T extends object>(before: T, after: T): (keyof T)[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)] as (keyof T)[]);
  return [...keys].filter((k) => before[k] !== after[k]);
}

export function unionFields<T>(a: Fields<T>, b: Fields<T>): (keyof T)[] {
  return [...new Set([...a, ...b])];
}

/** `stored` with `fields` taken from `mine`. */
export function mergedRecord<T extends object>(stored: T, mine: T, fields: Fields<T>): T {
  const merged = { ...stored };
  for (const k of fields) merged[k] = mine[k];
  return merged;
}

/** What this tab sees live and never reads back: its own progress, preparation phase and unparsed draft fields. */
const LIVE: Fields<RunRecord> = ['progress', 'prepare', 'invalidFields'];

/**
 * A run record another tab wrote (`stored`, read back from IndexedDB) as this tab shows it: `local` is this tab's
 * record and `base` the record as this tab last knew it stored. Returns the new base (the stored record in this
 * tab's terms) and the record to show: the base plus this tab's changes since `base`, which its next save writes.
 */
export function remoteRun(
  stored: RunRecord,
  local: RunRecord | undefined,
  base: RunRecord | undefined,
): { base: RunRecord; shown: RunRecord } {
  if (!local) {
    // A full fine-tune's weights stay on the GPU of the tab that trained it.
    const shown = stored.weights === 'session' ? { ...stored, weights: null } : stored;
    return { base: shown, shown };
  }
  const theirs = mergedRecord(stored, local, LIVE);
  if (local.weights === 'session' || stored.weights === 'session') theirs.weights = local.weights;
  // Never known stored here: all of this tab's record is its own.
  const mine = changedFields(base ?? theirs, local);
  const shown = mine.length ? mergedRecord(theirs, local, mine) : theirs;
  return { base: theirs, shown };
}
