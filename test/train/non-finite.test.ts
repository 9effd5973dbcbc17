/**
 * A diverging run stops with a message (worded for where it appears) and keeps the adapter of the last good
 * step; a batch with no supervised token is skipped, never a 0/0 loss.
 */
import { describe, expect, it } from 'vitest';
import type { Example } from '../../src/data/index';
import { trainRun, type TrainRunOptions } from '../../src/engine/train-run';
import { STUDIO_WORDING } from '../../src/engine/wording';
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
    const tokenizer = tinyTokenizer(spec.vocabSize);
    // Adam moves each weight by about lr per step: lr = 1e30 overflows activations within a few steps.
    const result = await trainRun(gpu, weights, tokenizer, examples, { ...OPTIONS, lr: 1e30 });
    expect(result.stopReason).toBe('non-finite');
    expect(result.message).toMatch(
      /training stopped and the adapter from the last good step is kept\. Try a lower --lr or --max-grad-norm 1\.$/,
    );
    for (const adapter of result.state.adapters.values()) {
      for (const t of adapter.trainables) expect((await gpu.read(t.param)).every(Number.isFinite)).toBe(true);
    }
    // The studio's wording names its own field, not a CLI flag.
    const studio = await trainRun(gpu, weights, tokenizer, examples, {
      ...OPTIONS,
      lr: 1e30,
      steps: 6,
      wording: STUDIO_WORDING,
    });
    expect(studio.message).toMatch(/Try a lower Learning rate\.$/);
    expect(studio.message).not.toMatch(/--/);
  });

  it('skips a batch without a supervised token (no update, counted) instead of dividing 0 by 0', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 2));
    const ids = Array.from({ length: 9 }, (_, t) => (t * 5 + 1) % spec.vocabSize);
    const supervised: Example = { inputIds: ids, labels: ids };
    const promptOnly: Example = { inputIds: ids, labels: ids.map(() => -100) };
    const skipped: number[] = [];
    const steps: { step: number; loss: number }[] = [];
    // Batch 1, no shuffle effect on the count: one of the two examples per epoch has nothing to learn.
    const result = await trainRun(
      gpu,
      weights,
      tinyTokenizer(spec.vocabSize),
      [supervised, promptOnly],
      { ...OPTIONS, batch: 1, steps: 6, lr: 1e-2 },
      {
        onSkip: (step) => skipped.push(step),
        onStep: (m) => steps.push({ step: m.step, loss: m.loss }),
      },
    );
    expect(result.stopReason).toBe('done');
    expect(result.steps).toBe(6);
    expect(result.skippedBatches).toBe(3);
    expect(skipped).toHaveLength(3);
    expect(steps).toHaveLength(3);
    expect(steps.every((s) => Number.isFinite(s.loss))).toBe(true);
    expect([...skipped, ...steps.map((s) => s.step)].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

const OPTIONS: TrainRunOptions = {
  method: 'lora',
  rank: 2,
  alpha: 4,
  targets: ['all-linear'],
  seed: 0,
  steps: 20,
  batch: 2,
  seq: 8,
  lr: 1e-3,
  warmupSteps: 0,
  weightDecay: 0,
  maxGradNorm: 0,
  minLrRatio: 1,
  validationFraction: 0,
  evalEvery: 0,
  packing: false,
};

function tinyTokenizer(vocabSize: number) {
  return {
    vocabSize,
    bosId: null,
    eosId: null,
    padId: 0,
    addBos: false,
    encode: () => [],
    decode: () => '',
    tokenToId: () => null,
    chatTemplate: null,
  };
}
