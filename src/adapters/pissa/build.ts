/**
 * PiSSA's builder (OWN_METHOD_BUILDERS): the top-r SVD of every target's W (svd.ts; exact by default, in float64 on
 * the host; PEFT's pissa_niter_N from the run's seed, its products on the GPU), A and B from it, and the layers that
 * train against W − s·B₀·A₀.
 */
import type { OwnMethodBuilder } from '../../engine/methods';
import { Rng } from '../../util/random';
import { loraScale } from '../lora/config';
import { pissaInitName, pissaSvd, splitSingularTriplets } from './init';
import { type ResidualInit, residualMethodState } from './state';

export const buildPissa: OwnMethodBuilder = async (gpu, weights, c) => {
  const o = c.options;
  const niter = o.pissaNiter ?? 0;
  const scale = loraScale(o.rank, o.alpha, false);
  for (const info of c.targets) {
    if (o.rank > Math.min(info.in, info.out))
      throw new Error(`PiSSA: rank ${o.rank} is larger than ${info.path}'s ${info.out}x${info.in} weight allows`);
  }
  const rng = new Rng(o.seed);
  const inits = new Map<string, ResidualInit>();
  for (const [i, info] of c.targets.entries()) {
    c.onProgress?.({ phase: 'PiSSA: SVD of the weights', done: i, total: c.targets.length });
    const mark = gpu.mark();
    const svd = await pissaSvd(gpu, weights, info, o.rank, niter, rng).finally(() => gpu.freeSince(mark));
    inits.set(info.path, { ...splitSingularTriplets(svd, scale), singularValues: [...svd.S] });
  }
  c.onProgress?.({ phase: 'PiSSA: SVD of the weights', done: c.targets.length, total: c.targets.length });
  return residualMethodState(gpu, c, inits, {
    method: 'pissa',
    scale,
    svd: niter === 0 ? 'exact' : `niter_${niter}`,
    rawInitName: pissaInitName(niter),
    warnings: [],
  });
};
