/** How the report writes numbers: the same text in the tables, the charts' ticks and the evidence paragraph. */

const DASH = '–';
const THOUSANDS = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Losses in nats to 4 decimals (differences between methods are often in the third); a dash when missing. */
export function formatLoss(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? DASH : x.toFixed(4);
}

/** A loss difference with its sign always written, so "+0.0120" and "-0.0310" read as directions. */
export function formatSigned(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return DASH;
  const text = x.toFixed(4);
  return x > 0 || (x === 0 && !text.startsWith('-')) ? `+${text}` : text;
}

/**
 * A learning rate in plain decimals with at most 6 significant digits: 0.003, 0.0003 (never "3e-4", which reads
 * differently from the grid the user typed in most tools).
 */
export function formatLr(lr: number): string {
  if (!Number.isFinite(lr)) return DASH;
  if (lr === 0) return '0';
  const decimals = Math.min(20, Math.max(0, 5 - Math.floor(Math.log10(Math.abs(lr)))));
  const text = lr.toFixed(decimals);
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** Parameter counts with thousands separators: 1,234,567. */
export function formatParams(n: number): string {
  return Number.isFinite(n) ? THOUSANDS.format(n) : DASH;
}

/** Parameter counts for an axis tick: 950, 12k, 1.5M, 7B. */
export function formatParamsShort(n: number): string {
  if (!Number.isFinite(n)) return DASH;
  const units: [number, string][] = [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, unit] of units) {
    if (Math.abs(n) >= size) return `${Number((n / size).toPrecision(3))}${unit}`;
  }
  return String(Number(n.toPrecision(3)));
}

/** A two-sided p-value as papers write it: "p = 0.02", "p = 0.004", "p < 0.001"; "p n/a" when undefined. */
export function formatPValue(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return 'p n/a';
  if (p < 0.001) return 'p < 0.001';
  return `p = ${p.toFixed(p < 0.01 ? 3 : 2)}`;
}

/** A fraction as a percentage with one decimal. */
export function formatPercent(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? DASH : `${(x * 100).toFixed(1)}%`;
}

/** The budget ratio, e.g. "1.02×". */
export function formatRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : DASH;
}

/** Half the width of a 95% interval (the "±" figure); null when the interval is missing or not finite. */
export function halfWidth(ci: readonly [number, number] | null | undefined): number | null {
  if (!ci || !Number.isFinite(ci[0]) || !Number.isFinite(ci[1])) return null;
  return (ci[1] - ci[0]) / 2;
}
