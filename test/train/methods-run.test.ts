/**
 * Every adapter method on stories260K over tinyshakespeare, at an equal trainable-parameter budget (rank 4
 * on every linear layer, or the same budget allocated differently): each lowers held-out loss, allocates
 * nothing after step 0 and submits at most 10 times per step. docs/METHODS.md reports a longer version
 * of this comparison (scripts/compare-methods.mjs).
 */
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Example } from '../../src/data/index';
import { loadModelDir, type LoadedModel } from '../../src/engine/load-model';
import type { MethodOptions } from '../../src/engine/methods';
import { trainRun } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { nodeDir } from '../../src/model/formats/node-source';
import { ModelWeights } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';

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
    const text = await readFile('test/fixtures/datasets/tinyshakespeare/input.txt', 'utf8');
    const slice = text
      .split(/\n\s*\n/)
      .slice(0, 300)
      .join('\n\n');
    examples = (
      await loadDataset({ name: 'shakespeare.txt', bytes: new TextEncoder().encode(slice) }, model.tokenizer, {
        seqLen: 32,
      })
    ).examples;
  });

  for (const [method, extra] of RUNS) {
    it(`${method} lowers held-out loss`, async () => {
      const result = await trainRun(gpu, weights, model.tokenizer, examples, {
        method,
        rank: 4,
        alpha: 8,
        targets: ['all-linear'],
        seed: 1,
        ...extra,
        steps: 20,
        batch: 4,
        seq: 32,
        lr: 1e-2,
        warmupSteps: 2,
        weightDecay: 0,
        maxGradNorm: 1,
        minLrRatio: 0.1,
        validationFraction: 0.1,
        evalEvery: 0,
        packing: true,
        maxValidationBatches: 4,
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
