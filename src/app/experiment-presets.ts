/**
 * Experiment definitions the studio starts from: a new draft on what is loaded, and the demo's "Compare fairly".
 * Apart from presets.ts because the experiment schema imports the engine's modules (the e2e specs import presets.ts
 * in Node, where shader files do not load).
 */
import { defaultSeqLen } from '../engine/run-spec';
import { defaultExperiment, parseExperiment } from '../experiment/schema';
import type { Experiment } from '../experiment/types';
import type { DatasetPreview, ModelCard } from '../worker/protocol';

/**
 * A new experiment on what is loaded: LoRA (the baseline, at the reference rank) and GoRA, GraLoRA and GeLoRA matched
 * to its budget, each on its own default rate
 * grid, 3 seeds; rows no longer than the model allows, the dataset's prompt join (so the file reproduces the run).
 */
export function studioExperiment(card: ModelCard | null, dataset: DatasetPreview | null): Experiment {
  const e = defaultExperiment(card?.name ?? 'model', dataset?.name ?? 'data');
  return {
    ...e,
    // The baseline LoRA is the budget (rank given); the others match it.
    methods: e.methods.map((m) => (m.name === e.baseline ? { ...m, rank: e.referenceRank, rankMatched: false } : m)),
    train: {
      ...e.train,
      seqLen: defaultSeqLen(card?.maxPositions),
      promptJoin: dataset?.override.promptJoin ?? e.train.promptJoin,
      // As the studio's runs: a cosine floor at 10% of the peak, so short runs still learn late.
      minLrRatio: 0.1,
    },
  };
}

/** Demo experiment sizes: 4 configurations x 3 rates x 3 seeds of 40 steps of 8 x 64 tokens on stories260K. */
export const DEMO_EXPERIMENT = { steps: 40, batch: 8, seq: 64, lrs: [1e-3, 3e-3, 1e-2], seeds: [0, 1, 2] };

/**
 * "Compare fairly" on the demo: LoRA (rank 8, every linear layer) as the baseline and the budget, GoRA, GraLoRA
 * and GeLoRA with their ranks matched to it; each method's rate chosen on validation from the same 3 rates, test
 * loss over 3 seeds. GoRA and GeLoRA keep their preparation short, as in the demo's runs.
 */
export function demoExperiment(modelName: string, datasetName: string): Experiment {
  const allLinear = 'all-linear';
  const e = parseExperiment(
    {
      name: 'compare-fairly',
      model: modelName,
      data: datasetName,
      split: { validation: 0.1, test: 0.1, seed: 0 },
      train: {
        steps: DEMO_EXPERIMENT.steps,
        batch: DEMO_EXPERIMENT.batch,
        seq_len: DEMO_EXPERIMENT.seq,
        warmup: 4,
        eval_every: 10,
        min_lr_ratio: 0.1,
      },
      methods: [
        { name: 'lora', method: 'lora', rank: 8, alpha: 16, targets: allLinear },
        { name: 'gora', method: 'gora', alpha: 16, targets: allLinear },
        { name: 'gralora', method: 'gralora', alpha: 16, targets: allLinear },
        { name: 'gelora', method: 'gelora', alpha: 16, targets: allLinear },
      ],
      lrs: DEMO_EXPERIMENT.lrs,
      seeds: DEMO_EXPERIMENT.seeds,
      baseline: 'lora',
      reference_rank: 8,
    },
    'studio',
  );
  const options: Record<string, Experiment['methods'][number]['options']> = {
    gora: { goraSteps: 8, rankMin: 2, rankMax: 16 },
    gralora: { graloraK: 2 },
    gelora: { geloraSamples: 512, geloraBudget: 'fit' },
  };
  return { ...e, methods: e.methods.map((m) => ({ ...m, options: { ...m.options, ...options[m.name] } })) };
}
