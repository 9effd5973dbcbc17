/** Whole-model finite-difference gradient checks for LoRA on every family and for full fine-tuning. */
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import { allLinearTargets } from '../../src/model/layout';
import type { Recompute } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { TransformerGraph } from '../../src/model/transformer';
import { checkModelGradients, gradCheckFailure, measureGradients, randomLora } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec, type TINY_CONFIGS } from '../helpers/tiny-models';

async function check(
  family: keyof typeof TINY_CONFIGS,
  mode: 'lora' | 'full',
  recompute: Recompute = 'none',
  logitsChunkRows?: number,
): Promise<void> {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  if (mode === 'full') {
    await checkModelGradients(gpu, weights, { mode: 'full', recompute, logitsChunkRows });
    return;
  }
  const adapters = randomLora(gpu, spec);
  await checkModelGradients(gpu, weights, { mode: 'adapters', adapters, recompute, logitsChunkRows });
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
  // Block recomputation: the backward re-runs block 0 (of 2) from its saved input into the buffers block 1 left.
  it('llama: LoRA on every linear layer, blocks recomputed in the backward pass', () =>
    check('llama', 'lora', 'block'));
  it('gpt2: full fine-tuning, blocks recomputed in the backward pass', () => check('gpt2', 'full', 'block'));
  // The LM head and loss in chunks of 3 rows over the 10-row batch (the last chunk partial): the tied embedding
  // (gpt2) accumulates over chunks, the separate lm_head (llama) is overwritten by the first.
  it('gpt2: full fine-tuning, LM head in chunks of 3 rows', () => check('gpt2', 'full', 'none', 3));
  it('llama: full fine-tuning, LM head in chunks of 3 rows', () => check('llama', 'full', 'none', 3));
  it('qwen2: LoRA, LM head in chunks of 3 rows', () => check('qwen2', 'lora', 'none', 3));
});

describe('the gradient check itself fails broken gradients', () => {
  // LoRA on every linear layer of the tiny llama, B random; the analytic gradients are broken after the backward.
  async function measure(tamper?: (name: string, g: Float32Array) => void, zeroB = false) {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const rng = new Rng(2);
    const layers = createLoraLayers(
      gpu,
      spec,
      { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 },
      3,
    );
    if (!zeroB) for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
    const graph = new TransformerGraph(gpu, weights, {
      batch: 2,
      seq: 5,
      train: 'adapters',
      adapters: new Map(layers),
    });
    const batch = randomBatch(spec, 2, 5, 4);
    graph.setBatch(batch);
    const results = await measureGradients(gpu, graph, batch.supervised, 2, tamper);
    return new Map(results.map((r) => [r.name, gradCheckFailure(r)]));
  }
  // The smallest gradient of this model (‖g‖ ≈ 0.06): the old absolute tolerance (2e-3) let a zero pass here.
  const small = 'model.layers.1.self_attn.q_proj.lora_B.weight';
  const other = 'model.layers.0.mlp.down_proj.lora_A.weight';

  it('passes the untouched gradients, and fails each broken tensor alone', async () => {
    expect([...(await measure()).values()].filter((f) => f !== null)).toEqual([]);
    const broken = await measure((name, g) => {
      if (name === small) g.fill(0);
      if (name === other) for (let i = 0; i < 24; i++) g[i] = 0; // one of A's 3 rows (24 inputs) lost
      if (name === 'model.layers.0.self_attn.v_proj.lora_B.weight') g.forEach((x, i) => (g[i] = x * 1.05)); // 5% too long
      if (name === 'model.layers.1.mlp.up_proj.lora_A.weight') g[7] += 0.2; // one element off by 0.2 (‖g‖ ≈ 0.54)
    });
    const failed = [...broken].filter(([, f]) => f !== null);
    expect(failed.map(([n]) => n).sort()).toEqual(
      [
        other,
        'model.layers.0.self_attn.v_proj.lora_B.weight',
        small,
        'model.layers.1.mlp.up_proj.lora_A.weight',
      ].sort(),
    );
    expect(broken.get(small)).toMatch(/zero analytic gradient/);
  });

  it('refuses a setup where a gradient must vanish (A of a LoRA whose B is 0): B must be perturbed', async () => {
    const results = await measure(undefined, true);
    for (const [name, failure] of results) {
      if (name.includes('lora_A')) expect(failure, name).toMatch(/the loss does not move with this tensor/);
      else expect(failure, name).toBeNull();
    }
  });
});
