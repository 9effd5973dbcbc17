/** Model FLOPs of a training step and utilization against a measured peak (pure: the studio's panel uses it too). */
import type { ModelSpec } from '../model/config';
import { allLinears } from '../model/layout';

/**
 * FLOPs per token of a training step: forward 2·(Σ linear in·out + LM head) plus attention 4·L·T·H·hd
 * (scores and weighted values over T positions); backward twice the forward for full fine-tuning (activation and
 * weight gradients), once for adapters (activation gradients only: frozen weights get none). Adapter GEMMs
 * (r ≪ in, out) are left out, so every method is measured against the same work.
 */
export function modelFlopsPerToken(spec: ModelSpec, seq: number, full: boolean): number {
  const linear = allLinears(spec).reduce((n, l) => n + l.in * l.out, 0) + spec.vocabSize * spec.hidden;
  const forward = 2 * linear + 4 * spec.layers * seq * spec.heads * spec.headDim;
  return forward * (full ? 3 : 2);
}

/** Achieved model FLOP/s over the matmul peak measured on the same adapter (null without a peak). */
export function modelFlopsUtilization(
  r: { tokensPerSecond: number; flopsPerToken: number },
  peakGflops: number | null,
): number | null {
  return peakGflops ? (r.tokensPerSecond * r.flopsPerToken) / (peakGflops * 1e9) : null;
}
