/** The short stories260K-over-tinyshakespeare run several tests train: its examples and settings. */
import { readFile } from 'node:fs/promises';
import { loadDataset, type Example } from '../../src/data/index';
import type { TextTokenizer } from '../../src/data/types';

/** The first ~300 speeches at 32 tokens: short enough for a software GPU. */
export async function shakespeareExamples(tokenizer: TextTokenizer): Promise<Example[]> {
  const text = await readFile('test/fixtures/datasets/tinyshakespeare/input.txt', 'utf8');
  const slice = text
    .split(/\n\s*\n/)
    .slice(0, 300)
    .join('\n\n');
  const bytes = new TextEncoder().encode(slice);
  return (await loadDataset({ name: 'shakespeare.txt', bytes }, tokenizer, { seqLen: 32 })).examples;
}

/** Rank-4 LoRA settings on every linear layer, batch 4 x 32, held-out loss before and after. */
export const SHAKESPEARE_RUN = {
  method: 'lora',
  rank: 4,
  alpha: 8,
  targets: ['all-linear'],
  seed: 1,
  steps: 30,
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
};
