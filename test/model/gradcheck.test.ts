/** Whole-model finite-difference gradient checks for LoRA on every family and for full fine-tuning. */
import { describe, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import { allLinearTargets } from '../../src/model/layout';
import type { Recompute } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { checkModelGradients } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec, TINY_CONFIGS } from '../helpers/tiny-models';

async function check(family: keyof typeof TINY_CONFIGS, mode: 'lora' | 'full', recompute: Recompute = 'none', logitsChunkRows?: number): Promise<void> {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  if (mode === 'full') return checkModelGradients(gpu, weights, { mode: 'full', recompute, logitsChunkRows });
  const rng = new Rng(2);
  const layers = createLoraLayers(gpu, spec, { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 }, 3);
  // B = 0 at init would make every dA vanish: give B random values so both gradients are exercised.
  for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
  return checkModelGradients(gpu, weights, { mode: 'adapters', adapters: new Map(layers), recompute, logitsChunkRows });
}

describe('whole-model gradient check (finite differences)', () => {
  for (const family of ['llama', 'gpt2', 'qwen2', 'qwen3'] as const) {
    it(`${family}: LoRA on every linear layer`, () => check(family, 'lora'));
  }
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: full fine-tuning`, () => check(family, 'full'));
  }
  // Activation recomputation: the backward rebuilds each block's MLP activations from ln2 (adapters included).
  it('llama: LoRA on every linear layer, MLP recomputed in the backward pass', () => check('llama', 'lora', 'mlp'));
  it('gpt2: full fine-tuning, MLP recomputed in the backward pass', () => check('gpt2', 'full', 'mlp'));
  // The LM head and loss in chunks of 3 rows over the 10-row batch (the last chunk partial): the tied embedding
  // (gpt2) accumulates over chunks, the separate lm_head (llama) is overwritten by the first.
  it('gpt2: full fine-tuning, LM head in chunks of 3 rows', () => check('gpt2', 'full', 'none', 3));
  it('llama: full fine-tuning, LM head in chunks of 3 rows', () => check('llama', 'full', 'none', 3));
  it('qwen2: LoRA, LM head in chunks of 3 rows', () => check('qwen2', 'lora', 'none', 3));
  // Every check above runs flash attention (the default); the probability-saving kernels stay selectable.
  it('llama: full fine-tuning with attention saving its probabilities', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    await checkModelGradients(gpu, weights, { mode: 'full', attention: 'saved-probs' });
  });
});
