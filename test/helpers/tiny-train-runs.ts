/**
 * What the engine's run tests (trainRun: resume, checkpoints on disk, GPU errors, device loss) train on: the tiny
 * llama with random weights, small example sets and the two option sets they start from, and an evaluation batch.
 * One place for them, so the runs that are compared across tests stay the same runs.
 */
import { idsOnlyTokenizer } from '../../src/bench/generated-model';
import type { Example } from '../../src/data/index';
import type { TrainRunOptions } from '../../src/engine/train-run';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu } from './gpu';
import { randomSource, tinySpec } from './tiny-models';

/** The tiny llama with random weights (seed 1) on the test file's GPU, and a tokenizer of its ids. */
export async function tinyLlama() {
  const gpu = await testGpu();
  const spec = tinySpec('llama');
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  return { gpu, spec, weights, tokenizer: idsOnlyTokenizer(spec.vocabSize) };
}

/** 40 examples of 6 random ids (seed 3) below `vocabSize`, every position supervised. */
export function randomExamples(vocabSize: number): Example[] {
  const rng = new Rng(3);
  return Array.from({ length: 40 }, () => {
    const ids = Array.from({ length: 6 }, () => rng.int(vocabSize));
    return { inputIds: ids, labels: ids };
  });
}

/** `count` examples of 4 ids, the last cycling through 4..8. */
export function cyclingExamples(count: number): Example[] {
  return Array.from({ length: count }, (_, i) => ({
    inputIds: [1, 2, 3, (i % 5) + 4],
    labels: [1, 2, 3, (i % 5) + 4],
  }));
}

/** What each method needs beyond rank and alpha to train in 8 steps (GoRA's and AdaLoRA's schedules fit in them). */
const METHOD_OPTIONS: Record<string, Partial<TrainRunOptions>> = {
  gora: { goraSteps: 2, rankMin: 2, rankMax: 8 },
  gralora: { graloraK: 2 },
  loraga: { loragaBatches: 2 },
  adalora: { initR: 6, tinit: 1, tfinal: 2 },
};

/**
 * 8 steps of `method` on every linear layer, with warmup, weight decay and a decaying learning rate, so that a resumed
 * run must restore all of the schedule's state; `patch` sets evaluation and checkpoints.
 */
export function eightStepOptions(method: string, patch: Partial<TrainRunOptions> = {}): TrainRunOptions {
  return {
    method,
    rank: 4,
    alpha: 8,
    targets: ['all-linear'],
    seed: 5,
    ...METHOD_OPTIONS[method],
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
    ...patch,
  };
}

/** A short, plain LoRA run on q_proj (4 steps, constant learning rate, no evaluation); `patch` overrides. */
export function shortLoraOptions(patch: Partial<TrainRunOptions> = {}): TrainRunOptions {
  return {
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
    ...patch,
  };
}

/** Evaluation batch `i` for a graph of batch 2, seq 4: two rows, 6 supervised tokens, the last token varying with i. */
export const evalBatch = (i: number) => ({
  tokens: new Uint32Array([1, 2, 3, 4, 1, 2, 3, i + 4]),
  targets: new Int32Array([2, 3, 4, -100, 2, 3, i + 4, -100]),
  positions: new Uint32Array([0, 1, 2, 3, 0, 1, 2, 3]),
  supervised: 6,
});
