/** A diverging run stops with a message and keeps the adapter of the last good step (finite weights). */
import { describe, expect, it } from 'vitest';
import { trainRun } from '../../src/engine/train-run';
import { ModelWeights } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

describe('non-finite loss', () => {
  it('stops the run and keeps finite adapter weights', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('gpt2');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const examples = Array.from({ length: 8 }, (_, i) => {
      const ids = Array.from({ length: 9 }, (_, t) => (i * 7 + t * 3) % spec.vocabSize);
      return { inputIds: ids, labels: ids };
    });
    const tokenizer = { vocabSize: spec.vocabSize, bosId: null, eosId: null, padId: 0, addBos: false, encode: () => [], decode: () => '', tokenToId: () => null, chatTemplate: null };
    // Adam moves each weight by about lr per step: lr = 1e30 overflows activations within a few steps.
    const result = await trainRun(gpu, weights, tokenizer, examples, {
      method: 'lora', rank: 2, alpha: 4, targets: ['all-linear'], seed: 0, steps: 20, batch: 2, seq: 8, lr: 1e30,
      warmupSteps: 0, weightDecay: 0, maxGradNorm: 0, minLrRatio: 1, validationFraction: 0, evalEvery: 0, packing: false,
    });
    expect(result.stopReason).toBe('non-finite');
    expect(result.message).toMatch(/training stopped and the adapter from the last good step is kept/);
    for (const layer of result.state.dense.values()) {
      for (const t of [layer.A, layer.B]) expect((await gpu.read(t)).every(Number.isFinite)).toBe(true);
    }
  });
});
