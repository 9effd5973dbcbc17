/**
 * LoRA-GA's builder (OWN_METHOD_BUILDERS): the mean gradient of every target weight over N training batches (GoRA's
 * GradientAccumulator, PEFT's preprocess_loraga), its randomized SVD with the products on the GPU (the gradients are
 * never read back), A and B by the direction and scale rules (init.ts), and the layers that train against
 * W − s·B₀·A₀ (pissa/layer.ts).
 */
import type { OwnMethodBuilder } from '../../engine/methods';
import { Rng } from '../../util/random';
import { GradientAccumulator } from '../gora/gradients';
import { loraScale } from '../lora/config';
import { weightOperator } from '../pissa/init';
import { gpuOperator } from '../pissa/weight-operator';
import { type ResidualInit, residualMethodState } from '../pissa/state';
import { loragaFactors } from './init';
import { loragaConfigOf } from './method';

export const buildLoraga: OwnMethodBuilder = async (gpu, weights, c) => {
  const o = c.options;
  const cfg = loragaConfigOf(o);
  const scale = loraScale(o.rank, o.alpha, false);
  for (const info of c.targets) {
    if (2 * o.rank > Math.min(info.in, info.out))
      throw new Error(
        `LoRA-GA: 2r (${2 * o.rank}) is larger than ${info.path}'s ${info.out}x${info.in} weight allows (it splits the top 2r singular vectors between A and B)`,
      );
  }
  const phase = 'LoRA-GA: accumulating gradients';
  const rng = new Rng(o.seed);
  const inits = new Map<string, ResidualInit>();
  const mark = gpu.mark();
  try {
    const acc = new GradientAccumulator(gpu, weights, c.targets, c.shape);
    for (let t = 0; t < cfg.batches; t++) {
      acc.add(c.nextBatch());
      await gpu.sync();
      gpu.checkErrors('LoRA-GA gradient accumulation');
      c.onProgress?.({ phase, done: t + 1, total: cfg.batches });
    }
    await acc.finish();
    const q = (info: (typeof c.targets)[number]) => Math.min(4 * o.rank, info.in, info.out);
    for (const [i, info] of c.targets.entries()) {
      c.onProgress?.({ phase: 'LoRA-GA: SVD of the gradients', done: i, total: c.targets.length });
      const grad = { tensor: acc.probes.get(info.path)!.grad, m: info.out, n: info.in, transposed: false };
      const f = await loragaFactors(gpuOperator(gpu, grad, q(info), `${info.path}.grad`), o.rank, cfg, scale, rng, () =>
        weightOperator(gpu, weights, info, o.rank),
      );
      if (!f.A.every(Number.isFinite) || !f.B.every(Number.isFinite))
        throw new Error(
          `LoRA-GA: the accumulated gradient of ${info.path} is not finite (the model diverges on these batches)`,
        );
      inits.set(info.path, { A: f.A, B: f.B, singularValues: f.capturedSingularValues });
    }
  } finally {
    await gpu.freeSince(mark);
  }
  return residualMethodState(gpu, c, inits, {
    method: 'loraga',
    scale,
    svd: 'niter_4',
    rawInitName: null,
    warnings: [],
  });
};
