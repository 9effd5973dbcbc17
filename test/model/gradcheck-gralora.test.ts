/** Whole-model finite-difference gradient checks through GraLoRA layers, with and without the hybrid LoRA part. */
import { describe, it } from 'vitest';
import { createGraloraLayers } from '../../src/adapters/gralora/model';
import { allLinearTargets } from '../../src/model/layout';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { checkModelGradients } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

async function check(family: 'llama' | 'gpt2', k: number, hybridRank: number): Promise<void> {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  const cfg = { rank: 4, k, hybridRank, alpha: 8, targets: allLinearTargets(spec), lrRatioB: 1 };
  const { layers, warnings } = createGraloraLayers(gpu, spec, cfg, 3);
  if (warnings.length) throw new Error(`unexpected k fallback: ${warnings.join('; ')}`);
  // GB = 0 (and B_g = 0) at init would make every A gradient vanish: give them random values.
  const rng = new Rng(2);
  for (const l of layers.values()) {
    gpu.upload(l.GB, rng.normals(l.GB.size, 0.3));
    if (l.hybrid) gpu.upload(l.hybrid.B, rng.normals(l.hybrid.B.size, 0.3));
  }
  await checkModelGradients(gpu, weights, { mode: 'adapters', adapters: new Map(layers) });
}

describe('whole-model gradient check through GraLoRA (finite differences)', () => {
  it('llama: k 2 on every linear layer', () => check('llama', 2, 0));
  it('llama: k 2 with hybrid rank 2', () => check('llama', 2, 2));
  it('gpt2: k 4 on every linear layer (fused c_attn blocks)', () => check('gpt2', 4, 0));
  it('gpt2: k 2 with hybrid rank 1', () => check('gpt2', 2, 1));
});
