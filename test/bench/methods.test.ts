/** The per-method bench's bookkeeping: memory categories from buffer labels, and model FLOPs per token. */
import { describe, expect, it } from 'vitest';
import { modelFlopsPerToken } from '../../src/bench/flops';
import { memoryCategory } from '../../src/bench/methods';
import { tinySpec } from '../helpers/tiny-models';

describe('bench: methods', () => {
  it('puts every buffer a run creates in its category', () => {
    const weights = new Set(['model.layers.0.mlp.up_proj.weight']);
    const cases: [string, string][] = [
      ['model.layers.0.mlp.up_proj.weight', 'weights'],
      ['model.layers.0.mlp.up_proj.lora_A', 'adapters'],
      ['model.layers.0.mlp.up_proj.gralora_B', 'adapters'],
      ['model.layers.0.mlp.up_proj.gralora_A_general', 'adapters'],
      ['model.layers.0.mlp.up_proj.lora_A.grad', 'gradients'],
      ['model.layers.0.mlp.up_proj.weight.grad', 'gradients'],
      ['model.layers.0.mlp.up_proj.lora_A.weight.adam_m', 'optimizer'],
      ['model.layers.0.mlp.up_proj.gralora_B.adam_v', 'optimizer'],
      ['layer0.probs', 'activations'],
      ['model.layers.0.mlp.up_proj.lora_h', 'activations'],
      ['matmul.params', 'scratch'],
      ['metrics.1', 'scratch'],
    ];
    for (const [label, want] of cases) expect(memoryCategory(label, weights), label).toBe(want);
  });

  it('counts 2 FLOPs per weight per token forward, x2 for adapter training and x3 for full fine-tuning', () => {
    const spec = tinySpec('llama'); // hidden 16, intermediate 24, 4 heads of 4 (2 kv), vocab 37, 2 layers
    const linear = 2 * (16 * 16 + 2 * 16 * 8 + 16 * 16 + 3 * 16 * 24) + 37 * 16;
    const attention = 4 * 2 * 10 * 4 * 4;
    expect(modelFlopsPerToken(spec, 10, false)).toBe(2 * (2 * linear + attention));
    expect(modelFlopsPerToken(spec, 10, true)).toBe(3 * (2 * linear + attention));
  });
});
