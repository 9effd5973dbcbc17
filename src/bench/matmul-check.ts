/**
 * What counts as a correct matmul result, and the best correct throughput of a set. Pure (no GPU, no kernels),
 * so the studio's page can judge the rows the worker sends without bundling the bench's matmul module.
 */

/** Relative error above which a result is marked wrong (f32 accumulation over K <= 4096 stays far below). */
export const MAX_REL_ERROR = 1e-3;

type Judged = { gflops: number; maxRelError: number; error?: string };

/** A measured product whose spot check failed: fast but wrong, so it must not win. */
export function isWrong(r: Judged): boolean {
  return !r.error && !(r.maxRelError <= MAX_REL_ERROR);
}

/** The best correct GFLOP/s among results (the peak MFU is measured against), or null when none is correct. */
export function peakGflops(results: Judged[]): number | null {
  const good = results.filter((r) => !r.error && !isWrong(r)).map((r) => r.gflops);
  return good.length ? Math.max(...good) : null;
}
