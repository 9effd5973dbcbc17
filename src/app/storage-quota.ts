/**
 * Writes the browser's storage refused for lack of room (QuotaExceededError, raised by a request or as the reason a
 * transaction aborted), worded for the studio: what was not saved, how much this site uses of what it may use
 * (navigator.storage.estimate()), what was kept anyway, and how to make room.
 */
import { formatBytes } from './format';

/** Names browsers give a full-storage failure (Firefox's older one included). */
const QUOTA_NAMES = ['QuotaExceededError', 'NS_ERROR_DOM_QUOTA_REACHED'];

/** Whether `err` (or the transaction error it wraps) says the storage is full. */
export function isQuotaError(err: unknown): boolean {
  const name = (x: unknown) => (typeof x === 'object' && x !== null ? (x as { name?: unknown }).name : undefined);
  const inner = typeof err === 'object' && err !== null ? (err as { cause?: unknown; error?: unknown }) : {};
  return [err, inner.cause, inner.error].some((x) => QUOTA_NAMES.includes(name(x) as string));
}

/** Bytes this origin stores, and may store, as the browser estimates them. */
export interface StorageUse {
  usage: number;
  quota: number;
}

/** navigator.storage.estimate(), or null where the browser cannot say. */
export async function storageUse(): Promise<StorageUse | null> {
  try {
    const estimate = await globalThis.navigator?.storage?.estimate?.();
    if (!estimate || estimate.usage === undefined || estimate.quota === undefined) return null;
    return { usage: estimate.usage, quota: estimate.quota };
  } catch {
    return null;
  }
}

/** "… did not fit in this browser's storage (…): <kept> To make room, …". */
export function quotaText(what: string, use: StorageUse | null, kept: string): string {
  const numbers = use
    ? ` (this site uses ${formatBytes(use.usage)} of the ${formatBytes(use.quota)} the browser allows it)`
    : '';
  return (
    `${what} did not fit in this browser's storage${numbers}. ${kept} ` +
    'To make room, delete the checkpoints of stopped runs under Storage at the bottom of the page, or remove runs ' +
    'you no longer need.'
  );
}

/**
 * The message for a failed write: `quotaText` when the storage is full, else `other(message)`. `estimate` is
 * navigator.storage.estimate() in the studio, a fake in tests.
 */
export async function storageErrorText(
  err: unknown,
  quota: { what: string; kept: string },
  other: (message: string) => string,
  estimate: () => Promise<StorageUse | null> = storageUse,
): Promise<string> {
  if (!isQuotaError(err)) return other(err instanceof Error ? err.message : String(err));
  return quotaText(quota.what, await estimate(), quota.kept);
}
