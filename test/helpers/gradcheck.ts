/**
 * Whole-model finite-difference gradient check: for every trainable tensor, the directional derivative of the
 * loss along a direction v (half the analytic gradient's direction, half random) measured by central
 * differences must equal <g, v>. One check per tensor, so a wrong gradient anywhere fails its own tensor.
 */
import { expect } from 'vitest';
import type { LinearAdapter, Trainable } from '../../src/adapters/types';
import type { Gpu } from '../../src/gpu/gpu';
import { TransformerGraph, type AttentionKind, type Recompute } from '../../src/model/transformer';
import type { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { randomBatch } from './tiny-models';

const EPS = 3e-3;

export async function checkModelGradients(
  gpu: Gpu, weights: ModelWeights, opts: { mode: 'adapters' | 'full'; adapters?: Map<string, LinearAdapter>; seed?: number; recompute?: Recompute; logitsChunkRows?: number; attention?: AttentionKind },
): Promise<void> {
  const rng = new Rng(opts.seed ?? 2);
  const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 5, train: opts.mode, adapters: opts.adapters, recompute: opts.recompute, logitsChunkRows: opts.logitsChunkRows, attention: opts.attention });
  const batch = randomBatch(weights.spec, 2, 5, 4);
  graph.setBatch(batch);
  graph.backwardList!.run();
  const grads = new Map<Trainable, Float32Array>();
  for (const t of graph.trainables) grads.set(t, await gpu.read(t.grad));
  gpu.checkErrors('backward');
  expect(graph.trainables.length).toBeGreaterThan(0);

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
