/**
 * A run cut off after a checkpoint and resumed from it ends exactly where the uninterrupted run ends: same
 * final adapter, same loss at every later step (the batch stream, learning rate and AdamW moments continue).
 */
import { describe, expect, it } from 'vitest';
import type { Example } from '../../src/data/index';
import { trainRun, type RunCheckpoint, type TrainRunOptions } from '../../src/engine/train-run';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { expectSameTrainables, testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';

describe('resume from a checkpoint', () => {
  // The baselines rebuild the same method from the seed and the data (DoRA's m from W, PiSSA's and LoRA-GA's frozen
  // initial pair from the SVD); AdaLoRA's checkpoint also carries its importance EMAs and mask, and its schedule
  // prunes during these 8 steps.
  for (const method of ['lora', 'gora', 'gralora', 'dora', 'pissa', 'loraga', 'adalora'] as const) {
    it(`${method}: 4 steps + checkpoint + 4 resumed steps = 8 uninterrupted steps`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec('llama');
      const rng = new Rng(3);
      const examples: Example[] = Array.from({ length: 40 }, () => {
        const ids = Array.from({ length: 6 }, () => rng.int(spec.vocabSize));
        return { inputIds: ids, labels: ids };
      });
      const tokenizer = idsOnlyTokenizer(spec.vocabSize);
      const o: TrainRunOptions = {
        method,
        rank: 4,
        alpha: 8,
        targets: ['all-linear'],
        seed: 5,
        ...(method === 'gora'
          ? { goraSteps: 2, rankMin: 2, rankMax: 8 }
          : method === 'gralora'
            ? { graloraK: 2 }
            : method === 'loraga'
              ? { loragaBatches: 2 }
              : method === 'adalora'
                ? { initR: 6, tinit: 1, tfinal: 2 }
                : {}),
        steps: 8,
        batch: 2,
        seq: 6,
        lr: 1e-2,
        warmupSteps: 2,
        weightDecay: 0.01,
        maxGradNorm: 1,
        minLrRatio: 0.1,
        validationFraction: 0.1,
        evalEvery: 0,
        packing: false,
        checkpointEvery: 4,
      };
      const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
      const straight: number[] = [];
      let checkpoint: RunCheckpoint | null = null;
      const full = await trainRun(gpu, weights, tokenizer, examples, o, {
        onStep: (m) => straight.push(m.loss),
        onCheckpoint: (c) => void (checkpoint ??= c),
      });
      expect(checkpoint!.step).toBe(4);
      const resumedLosses: number[] = [];
      const resumed = await trainRun(
        gpu,
        weights,
        tokenizer,
        examples,
        { ...o, resume: checkpoint! },
        { onStep: (m) => resumedLosses.push(m.loss) },
      );
      expect(resumed.steps).toBe(8);
      expect(resumed.initialEval).toBeNull();
      expect(resumedLosses.length).toBe(4);
      resumedLosses.forEach((l, i) => expect(l).toBeCloseTo(straight[4 + i], 5));
      expect(resumed.finalEval!.loss).toBeCloseTo(full.finalEval!.loss, 5);
      const trainables = (r: typeof full) => [...r.state.adapters.values()].flatMap((x) => x.trainables);
      await expectSameTrainables(gpu, trainables(full), trainables(resumed));
    });
  }

  it('a checkpoint of another configuration is refused by name', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const examples: Example[] = Array.from({ length: 10 }, (_, i) => ({
      inputIds: [1, 2, 3, (i % 5) + 4],
      labels: [1, 2, 3, (i % 5) + 4],
    }));
    const tokenizer = idsOnlyTokenizer(spec.vocabSize);
    const o: TrainRunOptions = {
      method: 'lora',
      rank: 2,
      alpha: 4,
      targets: ['q_proj'],
      seed: 0,
      steps: 4,
      batch: 2,
      seq: 4,
      lr: 1e-3,
      warmupSteps: 0,
      weightDecay: 0,
      maxGradNorm: 1,
      minLrRatio: 1,
      validationFraction: 0,
      evalEvery: 0,
      packing: false,
    };
    const bad = {
      step: 2,
      state: [
        {
          name: 'model.layers.0.self_attn.v_proj.lora_A.weight',
          param: new Float32Array(32),
          m: new Float32Array(32),
          v: new Float32Array(32),
        },
      ],
    };
    await expect(trainRun(gpu, weights, tokenizer, examples, { ...o, resume: bad })).rejects.toThrow(
      /no state for model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/,
    );
  });
});
