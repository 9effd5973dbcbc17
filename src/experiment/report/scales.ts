/** Axis scales, extents and ticks for the SVG charts. Pure numbers in, pixel positions and tick lists out. */

export type Scale = (value: number) => number;

export interface Tick {
  value: number;
  label: string;
}

/** Maps [d0, d1] linearly onto [r0, r1]; a zero-width domain maps everything to the middle of the range. */
export function linearScale([d0, d1]: readonly [number, number], [r0, r1]: readonly [number, number]): Scale {
  const span = d1 - d0;
  if (!(Math.abs(span) > 0)) return () => (r0 + r1) / 2;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

/** Maps [d0, d1] onto [r0, r1] linearly in log10 (both ends positive): equal ratios get equal distances. */
export function logScale([d0, d1]: readonly [number, number], range: readonly [number, number]): Scale {
  const inLogs = linearScale([Math.log10(d0), Math.log10(d1)], range);
  return (v) => inLogs(Math.log10(v));
}

/**
 * The finite values' [min, max], widened by `margin` of the span on each side; when every value is equal the range
 * is padded around it (5% of its size, at least 0.05), so a flat line still gets an axis. Null without values.
 */
export function paddedExtent(values: readonly number[], margin = 0.06): [number, number] | null {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return null;
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi - lo <= 1e-12 * Math.max(1, Math.abs(hi))) {
    const pad = Math.max(Math.abs(hi) * 0.05, 0.05);
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * margin;
  lo -= pad;
  hi += pad;
  return [lo, hi];
}

/** The same in log10 for positive values: a single value gets half a decade on each side. */
export function paddedLogExtent(values: readonly number[], margin = 0.08): [number, number] | null {
  const logs = values.filter((v) => Number.isFinite(v) && v > 0).map(Math.log10);
  if (logs.length === 0) return null;
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  const pad = hi > lo ? (hi - lo) * margin : 0.5;
  return [10 ** (lo - pad), 10 ** (hi + pad)];
}

/** About `count` ticks at 1, 2 or 5 times a power of ten inside [lo, hi], labelled with just enough decimals. */
export function linearTicks([lo, hi]: readonly [number, number], count = 5): Tick[] {
  if (!(hi > lo)) return Number.isFinite(lo) ? [{ value: lo, label: trimNumber(lo, 4) }] : [];
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const ticks: Tick[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) {
    const value = i * step;
    ticks.push({ value, label: trimNumber(value, decimals) });
  }
  return ticks;
}

/**
 * Ticks for a log axis: the powers of ten inside [lo, hi]; on a domain of about a decade or less, 2x and 5x
 * multiples, then plain round values, so at least two ticks show.
 */
export function logTicks([lo, hi]: readonly [number, number], format: (v: number) => string): Tick[] {
  if (!(lo > 0 && hi >= lo)) return [];
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi));
  const within = (mults: number[]) => {
    const values: number[] = [];
    for (let e = first; e <= last; e++) {
      for (const m of mults) {
        const v = m * 10 ** e;
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) values.push(Number(v.toPrecision(12)));
      }
    }
    return values;
  };
  let values = within([1]);
  if (values.length < 2) values = within([1, 2, 5]);
  // A narrow domain (a fraction of a decade) gets evenly spaced round values: on so little of a log axis they look
  // evenly spaced too.
  if (values.length < 2) values = linearTicks([lo, hi], 4).map((t) => t.value);
  return values.map((value) => ({ value, label: format(value) }));
}

/** A number with at most `decimals` decimals and no trailing zeros ("-0" written as "0"). */
function trimNumber(value: number, decimals: number): string {
  const text = value.toFixed(decimals);
  const trimmed = text.includes('.') ? text.replace(/\.?0+$/, '') : text;
  return trimmed === '-0' ? '0' : trimmed;
}
