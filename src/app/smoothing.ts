/** Chart helpers: TensorBoard-style smoothing and thinning of long series. */

/**
 * Exponential moving average with bias correction (so the first points are not dragged toward 0).
 * weight 0 returns the values unchanged; 0.99 is very smooth.
 */
export function smooth(values: number[], weight: number): number[] {
  if (weight <= 0) return values.slice();
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      out.push(v);
      continue;
    }
    acc = acc * weight + (1 - weight) * v;
    n++;
    out.push(acc / (1 - Math.pow(weight, n)));
  }
  return out;
}

/** Keeps at most `max` points, evenly spaced, always including the last one. */
export function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const stride = points.length / max;
  const out: T[] = [];
  for (let i = 0; i < max - 1; i++) out.push(points[Math.floor(i * stride)]);
  out.push(points[points.length - 1]);
  return out;
}
