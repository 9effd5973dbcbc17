/** The CLI's two streams: results on stdout (JSON lines other tools parse), human-readable progress on stderr. */
export const log = (msg: string) => process.stderr.write(`${msg}\n`);
export const out = (obj: unknown) => process.stdout.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);

/** Six decimals for the JSON lines (non-finite values pass through). */
export function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 1e6) / 1e6 : x;
}
