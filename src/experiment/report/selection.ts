/**
 * What the report reads out of the results: the method entry behind a summary, the runs behind its figures (done
 * runs at its chosen rate; failed runs are never plotted) and the mean-and-band training curve over seeds.
 */
import { meanCi95 } from '../stats';
import type { ExperimentMethod, ExperimentResults, ExperimentRunResult, MethodSummary } from '../types';

/** The experiment's configuration of that name (undefined for a name the file does not list). */
export function methodEntry(results: ExperimentResults, name: string): ExperimentMethod | undefined {
  return results.experiment.methods.find((m) => m.name === name);
}

/** Equal up to float noise: rates travel through JSON and folder names, so compare them relatively. */
export function sameLr(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
}

/** The finished runs of a summary's configuration at its chosen rate, lowest seed first. */
export function chosenRuns(results: ExperimentResults, summary: MethodSummary): ExperimentRunResult[] {
  return results.runs
    .filter((r) => r.name === summary.name && r.status === 'done' && sameLr(r.lr, summary.bestLr))
    .sort((a, b) => a.seed - b.seed);
}

/** The one run whose adapter stands for the configuration (the heatmaps): chosen rate, lowest seed. */
export function representativeRun(results: ExperimentResults, summary: MethodSummary): ExperimentRunResult | undefined {
  return chosenRuns(results, summary)[0];
}

export function failedRuns(results: ExperimentResults): ExperimentRunResult[] {
  return results.runs.filter((r) => r.status === 'failed');
}

export interface CurvePoint {
  step: number;
  mean: number;
  lo: number;
  hi: number;
  n: number;
}

/**
 * The mean training loss over runs per step with its 95% interval. Skipped steps (null) and non-finite losses are
 * left out, so a step's mean is over the runs that have it. Past `maxPoints` steps, consecutive steps are pooled:
 * each run's losses are averaged over the pool first, then the interval is taken over runs, so the band still
 * measures the spread between seeds rather than the step-to-step noise.
 */
export function meanLossCurve(runs: readonly ExperimentRunResult[], maxPoints = 400): CurvePoint[] {
  const steps = [...new Set(runs.flatMap((r) => r.curve.filter((p) => isLoss(p.loss)).map((p) => p.step)))].sort(
    (a, b) => a - b,
  );
  if (steps.length === 0) return [];
  const poolSize = Math.max(1, Math.ceil(steps.length / maxPoints));
  const poolOf = new Map(steps.map((step, i) => [step, Math.floor(i / poolSize)]));
  const pools = Math.ceil(steps.length / poolSize);
  // Per pool: each run's sum and count of losses.
  const sums = runs.map(() => new Float64Array(pools));
  const counts = runs.map(() => new Uint32Array(pools));
  runs.forEach((run, r) => {
    for (const point of run.curve) {
      if (!isLoss(point.loss)) continue;
      const pool = poolOf.get(point.step)!;
      sums[r][pool] += point.loss;
      counts[r][pool] += 1;
    }
  });
  const points: CurvePoint[] = [];
  for (let pool = 0; pool < pools; pool++) {
    const poolSteps = steps.slice(pool * poolSize, (pool + 1) * poolSize);
    const perRun = runs.flatMap((_, r) => (counts[r][pool] > 0 ? [sums[r][pool] / counts[r][pool]] : []));
    const ci = meanCi95(perRun);
    const step = poolSteps.reduce((a, b) => a + b, 0) / poolSteps.length;
    points.push({ step, mean: ci.mean, lo: ci.lo, hi: ci.hi, n: ci.n });
  }
  return points;
}

function isLoss(x: number | null): x is number {
  return x !== null && Number.isFinite(x);
}
