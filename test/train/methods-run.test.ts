/**
 * Every adapter method on stories260K over tinyshakespeare, at an equal trainable-parameter budget (rank 4
 * on every linear layer, or the same budget allocated differently): each lowers held-out loss, allocates
 * nothing after step 0 and submits at most 10 times per step. docs/METHODS.md reports a longer version
 * of this comparison (scripts/compare-methods.mjs).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Example } from '../../src/data/index';
import { loadModelDir, type LoadedModel } from '../../src/engine/load-model';
import type { MethodOptions } from '../../src/engine/methods';
import { trainRun } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { nodeDir } from '../../src/model/formats/node-source';
import { ModelWeights } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';
import { SHAKESPEARE_RUN, shakespeareExamples } from '../helpers/shakespeare';

const RUNS: [string, Partial<MethodOptions>][] = [
  ['gora', { goraSteps: 4, rankMin: 2, rankMax: 8 }],
  ['gralora', { graloraK: 2 }],
  ['gelora', { geloraSamples: 256 }],
];

describe('adapter methods on stories260K at an equal budget', () => {
  let gpu: Gpu;
  let model: LoadedModel;
  let weights: ModelWeights;
  let examples: Example[];
  beforeAll(async () => {
    gpu = await testGpu();
    model = await loadModelDir(await nodeDir('public/demo/model'));
    weights = await ModelWeights.upload(gpu, model.spec, model.source);
    examples = await shakespeareExamples(model.tokenizer);
  });

  for (const [method, extra] of RUNS) {
    it(`${method} lowers held-out loss`, async () => {
      const result = await trainRun(gpu, weights, model.tokenizer, examples, {
        ...SHAKESPEARE_RUN,
        method,
        ...extra,
        steps: 20,
      });
      expect(result.stopReason).toBe('done');
      expect(result.finalEval!.loss).toBeLessThan(result.initialEval!.loss - 0.05);
      expect(result.buffersCreatedAfterStep0).toBe(0);
      expect(result.submitsPerStep).toBeLessThanOrEqual(10);
      const budget = result.state.analysis.loraEquivalentParameters;
      // GraLoRA's count equals LoRA's; GoRA and GeLoRA stay near the budget they allocate.
      expect(Math.abs(result.state.analysis.trainableParameters / budget - 1)).toBeLessThan(
        method === 'gralora' ? 1e-9 : 0.35,
      );
      gpu.checkErrors(method);
    });
  }
});
