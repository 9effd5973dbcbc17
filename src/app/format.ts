/** Number and time formatting for the panels (compact, with units people read at a glance). */

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

/** 1234 -> "1.23K", 260032 -> "260K", 494032768 -> "494M". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const units: [number, string][] = [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [size, unit] of units) {
    if (Math.abs(n) >= size) {
      const v = n / size;
      return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)}${unit}`;
    }
  }
  return String(Math.round(n));
}

export function formatInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export function formatLoss(x: number | null | undefined, digits = 3): string {
  return x == null || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export function formatRate(tokensPerSecond: number | null | undefined): string {
  if (tokensPerSecond == null || !Number.isFinite(tokensPerSecond) || tokensPerSecond <= 0) return '–';
  return tokensPerSecond >= 100 ? formatCount(tokensPerSecond) : tokensPerSecond.toFixed(1);
}

/** 0.002 -> "2e-3", 0.0003 -> "3e-4", 0.01 -> "0.01". */
export function formatLr(lr: number): string {
  if (lr >= 0.01) return String(lr);
  const [m, e] = lr.toExponential().split('e');
  return `${Number(Number(m).toFixed(2))}e${e}`;
}
