/**
 * A run cut off after a checkpoint and resumed from it ends exactly where the uninterrupted run ends: same
 * final adapter, same loss at every later step (the batch stream, learning rate and AdamW moments continue).
 */
import { describe, expect, it } from 'vitest';
import { trainRun, type RunCheckpoint } from '../../src/engine/train-run';
import { expectSameTrainables } from '../helpers/gpu';
import {
  cyclingExamples,
  eightStepOptions,
  randomExamples,
  shortLoraOptions,
  tinyLlama,
} from '../helpers/tiny-train-runs';

describe('resume from a checkpoint', () => {
  // The baselines rebuild the same method from the seed and the data (DoRA's m from W, PiSSA's and LoRA-GA's frozen
  // initial pair from the SVD); AdaLoRA's checkpoint also carries its importance EMAs and mask, and its schedule
  // prunes during these 8 steps.
  for (const method of ['lora', 'gora', 'gralora', 'dora', 'pissa', 'loraga', 'adalora'] as const) {
    it(`${method}: 4 steps + checkpoint + 4 resumed steps = 8 uninterrupted steps`, async () => {
      const { gpu, spec, weights, tokenizer } = await tinyLlama();
      const examples = randomExamples(spec.vocabSize);
      const o = eightStepOptions(method, { checkpointEvery: 4 });
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
    const { gpu, weights, tokenizer } = await tinyLlama();
    const examples = cyclingExamples(10);
    const o = shortLoraOptions();
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
