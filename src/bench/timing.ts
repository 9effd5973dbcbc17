/** Timing helpers shared by the bench sections. */

export interface TimingOptions {
  /** Wall time one timed trial should take; repetitions per trial are chosen to reach it. */
  targetMs: number;
  /** Timed trials; the median is reported. */
  trials: number;
  /** Upper bound on repetitions per trial. */
  maxReps: number;
  /** Stop adding trials once a measurement has taken this long (at least one trial always runs). */
  budgetMs: number;
}

/** On a CPU renderer a 1024³ product takes seconds: fewer trials keep the default bench within minutes. */
export const SOFTWARE_TIMING: TimingOptions = { targetMs: 300, trials: 3, maxReps: 50, budgetMs: 4_000 };
export const HARDWARE_TIMING: TimingOptions = { targetMs: 200, trials: 7, maxReps: 2000, budgetMs: 10_000 };

/**
 * What the bench measures by default on a software (CPU) or hardware adapter: matmul timing, and the training
 * shape and steps of the training sections. The CLI's options and the studio's panel start from these.
 */
export function benchDefaults(software: boolean) {
  return {
    timing: software ? SOFTWARE_TIMING : HARDWARE_TIMING,
    batch: software ? 4 : 16,
    seq: software ? 64 : 256,
    steps: software ? 2 : 20,
    warmupSteps: software ? 1 : 2,
  };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export async function timeMs(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

export interface Measurement {
  /** Median milliseconds per repetition. */
  msPerRep: number;
  reps: number;
  trials: number;
}

/**
 * Measures several implementations of the same work. Each `run(reps)` does reps repetitions and resolves
 * when the GPU has finished them; the caller has already warmed each up with run(1) (pipeline compilation,
 * first touch of memory). Per implementation, a single repetition sizes its trials (and counts as its
 * first trial when one repetition already fills a trial). Trials then alternate between the implementations, so a
 * change in machine load (other processes on a CPU renderer) hits all of them alike.
 */
export async function measureInterleaved(
  runs: ((reps: number) => Promise<void>)[],
  o: TimingOptions,
): Promise<Measurement[]> {
  const reps: number[] = [];
  const perRep: number[][] = runs.map(() => []);
  for (const [i, run] of runs.entries()) {
    const single = await timeMs(() => run(1));
    reps[i] = Math.max(1, Math.min(o.maxReps, Math.round(o.targetMs / Math.max(single, 1e-3))));
    if (reps[i] === 1) perRep[i].push(single);
    else await run(reps[i]); // a new repetition count may record a new command list: warm it too
  }
  const start = performance.now();
  const budget = o.budgetMs * runs.length;
  for (let round = 0; round < o.trials; round++) {
    for (const [i, run] of runs.entries()) {
      if (perRep[i].length >= o.trials || (perRep[i].length > 0 && performance.now() - start > budget)) continue;
      perRep[i].push((await timeMs(() => run(reps[i]))) / reps[i]);
    }
  }
  return perRep.map((xs, i) => ({ msPerRep: median(xs), reps: reps[i], trials: xs.length }));
}
