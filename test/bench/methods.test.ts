/** The per-method bench's bookkeeping: memory categories from buffer labels, and model FLOPs per token. */
import { describe, expect, it } from 'vitest';
import { modelFlopsPerToken } from '../../src/bench/flops';
import { memoryCategory } from '../../src/bench/methods';
import { generatedModel } from '../../src/bench/generated-model';
import { expectedTensors } from '../../src/model/config';
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

  it('generates a SmolLM2-135M-shaped model: its parameter count, bf16 matrices, deterministic values', async () => {
    const m = generatedModel('SmolLM2-135M');
    const params = expectedTensors(m.spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(params).toBe(134_515_008);
    expect(m.source.dtype!('model.layers.3.mlp.down_proj.weight')).toBe('bf16');
    expect(m.source.dtype!('model.norm.weight')).toBe('f32');
    const a = await m.source.load('model.layers.0.self_attn.k_proj.weight');
    expect(a.length).toBe(192 * 576);
    expect([
      ...(await generatedModel('SmolLM2-135M').source.load('model.layers.0.self_attn.k_proj.weight')).slice(0, 4),
    ]).toEqual([...a.slice(0, 4)]);
    expect([...(await m.source.load('model.layers.0.input_layernorm.weight')).slice(0, 3)]).toEqual([1, 1, 1]);
    expect(() => generatedModel('GPT-5')).toThrow(/unknown model shape "GPT-5"/);
  });
});
