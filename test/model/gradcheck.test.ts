/**
 * Whole-model finite-difference gradient checks: for every trainable tensor, the directional derivative
 * of the loss along a direction v (half the analytic gradient's direction, half random) measured by central
 * differences must equal <g, v>. One check per tensor, so a wrong gradient anywhere fails its own tensor.
 */
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { Trainable } from '../../src/adapters/types';
import { allLinearTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec, TINY_CONFIGS } from '../helpers/tiny-models';

const EPS = 3e-3;

async function checkGradients(family: keyof typeof TINY_CONFIGS, mode: 'lora' | 'full'): Promise<void> {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  const rng = new Rng(2);
  let adapters;
  if (mode === 'lora') {
    const layers = createLoraLayers(gpu, spec, { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 }, 3);
    // B = 0 at init would make every dA vanish: give B random values so both gradients are exercised.
    for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
    adapters = new Map(layers);
  }
  const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 5, train: mode === 'full' ? 'full' : 'adapters', adapters });
  const batch = randomBatch(spec, 2, 5, 4);
  graph.setBatch(batch);
  graph.backwardList!.run();
  const grads = new Map<Trainable, Float32Array>();
  for (const t of graph.trainables) grads.set(t, await gpu.read(t.grad));
  gpu.checkErrors('backward');

  const loss = async () => {
    graph.forwardList.run();
    const [sum] = await gpu.read(graph.lossSum);
    return sum / batch.supervised;
  };
  const failures: string[] = [];
  for (const t of graph.trainables) {
    const g = grads.get(t)!;
    const p0 = await gpu.read(t.param);
    const gNorm = Math.hypot(...g);
    const v = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) v[i] = (gNorm > 0 ? g[i] / gNorm : 0) + rng.normal() / Math.sqrt(g.length);
    let analytic = 0;
    for (let i = 0; i < g.length; i++) analytic += g[i] * v[i];
    gpu.upload(t.param, p0.map((p, i) => p + EPS * v[i]));
    const up = await loss();
    gpu.upload(t.param, p0.map((p, i) => p - EPS * v[i]));
    const down = await loss();
    gpu.upload(t.param, p0);
    const numeric = (up - down) / (2 * EPS);
    const err = Math.abs(numeric - analytic);
    if (err > 2e-3 + 2e-2 * Math.abs(numeric)) failures.push(`${t.name}: analytic ${analytic.toExponential(4)}, numeric ${numeric.toExponential(4)}`);
  }
  expect(failures, failures.join('\n')).toEqual([]);
  // The check must have had something to check.
  expect([...grads.values()].some((g) => g.some((x) => Math.abs(x) > 1e-4))).toBe(true);
}

describe('whole-model gradient check (finite differences)', () => {
  for (const family of ['llama', 'gpt2', 'qwen2', 'qwen3'] as const) {
    it(`${family}: LoRA on every linear layer`, () => checkGradients(family, 'lora'));
  }
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: full fine-tuning`, () => checkGradients(family, 'full'));
  }
});
