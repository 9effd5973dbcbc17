import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import {
  canonicalLoader,
  expectedTensors,
  parseConfig,
  resolveTensorName,
  validateCheckpoint,
  type ModelSpec,
} from '../../src/model/config';
import { memoryStore, openCheckpoint, type NamedTensor, type WeightStore } from '../../src/model/formats/safetensors';
import { nodeDir } from '../../src/model/formats/node-source';

const LLAMA_DIR = 'test/fixtures/models/tiny-random-LlamaForCausalLM_hf';
const GPT2_DIR = 'test/fixtures/models/tiny-gpt2-vocab100_hf';
const DEMO_DIR = 'public/demo/model';

const readJson = async (path: string) => JSON.parse(await readFile(path, 'utf8'));

/** A minimal valid config of each llama-family type, to vary one key at a time. */
function llamaConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'llama',
    vocab_size: 50,
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    ...overrides,
  };
}

/** Every tensor a spec expects, filled with zeros, renamed/reshaped by `edit`. */
async function storeFor(
  spec: ModelSpec,
  edit: (t: NamedTensor) => NamedTensor | null = (t) => t,
): Promise<WeightStore> {
  const tensors = expectedTensors(spec)
    .map(({ name, shape }) => edit({ name, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }))
    .filter((t): t is NamedTensor => t !== null);
  return memoryStore('synthetic', tensors);
}

describe('parseConfig on the fixtures', () => {
  it('tiny random Llama', async () => {
    const spec = parseConfig(await readJson(`${LLAMA_DIR}/config.json`));
    expect(spec).toEqual({
      family: 'llama',
      modelType: 'llama',
      vocabSize: 32000,
      hidden: 16,
      layers: 2,
      heads: 4,
      kvHeads: 4,
      headDim: 4,
      intermediate: 64,
      maxPositions: 2048,
      normEps: 1e-6,
      ropeTheta: 10000,
      ropeScaling: null,
      tieWordEmbeddings: false,
      qkvBias: false,
      mlpBias: false,
      qkNorm: false,
      bosTokenId: 0,
      eosTokenId: 1,
      warnings: [],
      sourceName: 'trl-internal-testing/tiny-random-LlamaForCausalLM',
    });
  });

  it('tiny GPT-2 (out-of-range bos/eos become null with warnings)', async () => {
    const spec = parseConfig(await readJson(`${GPT2_DIR}/config.json`), 'tiny-gpt2-vocab100_hf/config.json');
    expect(spec).toMatchObject({
      family: 'gpt2',
      modelType: 'gpt2',
      vocabSize: 100,
      hidden: 16,
      layers: 1,
      heads: 1,
      kvHeads: 1,
      headDim: 16,
      intermediate: 64,
      maxPositions: 64,
      normEps: 1e-5,
      tieWordEmbeddings: true,
      qkvBias: true,
      mlpBias: true,
      qkNorm: false,
      bosTokenId: null,
      eosTokenId: null,
      sourceName: 'tiny-gpt2-vocab100_hf',
    });
    expect(spec.warnings).toEqual([
      'tiny-gpt2-vocab100_hf/config.json: bos_token_id 50256 is outside the vocabulary (size 100); ignored',
      'tiny-gpt2-vocab100_hf/config.json: eos_token_id 50256 is outside the vocabulary (size 100); ignored',
    ]);
  });

  it('the demo model converted from llama2.c', async () => {
    const spec = parseConfig(await readJson(`${DEMO_DIR}/config.json`));
    expect(spec).toMatchObject({
      hidden: 64,
      layers: 5,
      heads: 8,
      kvHeads: 4,
      headDim: 8,
      intermediate: 172,
      vocabSize: 512,
    });
    expect(spec).toMatchObject({
      maxPositions: 512,
      normEps: 1e-5,
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenId: 2,
      warnings: [],
    });
  });
});

describe('parseConfig per model type', () => {
  it('qwen2 has q/k/v biases but no o_proj bias', () => {
    const spec = parseConfig(
      llamaConfig({ model_type: 'qwen2', tie_word_embeddings: true, rope_theta: 1e6, rms_norm_eps: 1e-6 }),
    );
    expect(spec).toMatchObject({ qkvBias: true, qkNorm: false, ropeTheta: 1e6, tieWordEmbeddings: true, warnings: [] });
    const names = expectedTensors(spec).map((t) => t.name);
    expect(names).toContain('model.layers.1.self_attn.k_proj.bias');
    expect(names).not.toContain('model.layers.1.self_attn.o_proj.bias');
    expect(names).not.toContain('lm_head.weight');
    expect(expectedTensors(spec).find((t) => t.name === 'model.layers.0.self_attn.k_proj.bias')!.shape).toEqual([8]);
  });

  it('qwen3: explicit head_dim and per-head q/k norms', () => {
    const spec = parseConfig(llamaConfig({ model_type: 'qwen3', head_dim: 16, eos_token_id: [7, 9] }));
    expect(spec).toMatchObject({ headDim: 16, qkNorm: true, qkvBias: false, eosTokenId: 7 });
    const shapes = Object.fromEntries(expectedTensors(spec).map((t) => [t.name, t.shape]));
    expect(shapes['model.layers.0.self_attn.q_proj.weight']).toEqual([96, 24]);
    expect(shapes['model.layers.0.self_attn.k_proj.weight']).toEqual([32, 24]);
    expect(shapes['model.layers.0.self_attn.o_proj.weight']).toEqual([24, 96]);
    expect(shapes['model.layers.0.self_attn.q_norm.weight']).toEqual([16]);
    expect(shapes['model.layers.1.self_attn.k_norm.weight']).toEqual([16]);
  });

  it('llama attention_bias and mlp_bias', () => {
    const spec = parseConfig(llamaConfig({ attention_bias: true, mlp_bias: true }));
    expect(spec).toMatchObject({ qkvBias: true, mlpBias: true });
    expect(spec.warnings[0]).toMatch(/attention_bias is true, so o_proj has a bias/);
    const names = expectedTensors(spec).map((t) => t.name);
    for (const n of ['self_attn.q_proj.bias', 'self_attn.o_proj.bias', 'mlp.gate_proj.bias', 'mlp.down_proj.bias']) {
      expect(names).toContain(`model.layers.0.${n}`);
    }
  });

  it('mistral sliding window: warning only', () => {
    const spec = parseConfig(llamaConfig({ model_type: 'mistral', sliding_window: 64 }));
    expect(spec.warnings).toHaveLength(1);
    expect(spec.warnings[0]).toMatch(/config\.json: sliding_window 64 is in use/);
    expect(parseConfig(llamaConfig({ model_type: 'mistral', sliding_window: null })).warnings).toEqual([]);
    expect(parseConfig(llamaConfig({ model_type: 'mistral', sliding_window: 4096 })).warnings).toEqual([]);
    expect(
      parseConfig(llamaConfig({ model_type: 'qwen2', sliding_window: 64, use_sliding_window: false })).warnings,
    ).toEqual([]);
    expect(
      parseConfig(llamaConfig({ model_type: 'qwen2', sliding_window: 64, use_sliding_window: true })).warnings,
    ).toHaveLength(1);
  });

  it('rope scaling', () => {
    const llama3 = {
      rope_type: 'llama3',
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    };
    expect(parseConfig(llamaConfig({ rope_scaling: llama3, rope_theta: 500000 }))).toMatchObject({
      ropeTheta: 500000,
      ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    });
    expect(parseConfig(llamaConfig({ rope_scaling: { type: 'linear', factor: 2 } })).ropeScaling).toEqual({
      type: 'linear',
      factor: 2,
    });
    // transformers v5 layout
    expect(parseConfig(llamaConfig({ rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }))).toMatchObject({
      ropeTheta: 1e6,
      ropeScaling: null,
    });
    expect(() => parseConfig(llamaConfig({ rope_scaling: { type: 'yarn', factor: 4 } }))).toThrow(
      /config\.json: rope_scaling type "yarn" is not supported/,
    );
    expect(() => parseConfig(llamaConfig({ rope_scaling: { type: 'linear' } }))).toThrow(
      /config\.json rope_scaling has no factor/,
    );
  });

  it('GPT-2 defaults: n_inner null -> 4 * n_embd, tied unless explicitly false', () => {
    const spec = parseConfig({
      model_type: 'gpt2',
      n_embd: 8,
      n_head: 2,
      n_layer: 1,
      n_positions: 32,
      vocab_size: 10,
      n_inner: null,
    });
    expect(spec).toMatchObject({ intermediate: 32, tieWordEmbeddings: true, headDim: 4 });
    expect(parseConfig({ model_type: 'gpt2', tie_word_embeddings: false }).tieWordEmbeddings).toBe(false);
  });
});

describe('parseConfig rejects what the engine cannot run', () => {
  it('missing or unsupported model_type', () => {
    expect(() => parseConfig({ hidden_size: 4 })).toThrow(
      'config.json has no model_type; supported: llama, mistral, qwen2, qwen3, gpt2',
    );
    expect(() => parseConfig({ model_type: 'bert' })).toThrow(
      /config\.json: model_type "bert" is not supported; supported: llama/,
    );
    expect(() => parseConfig([1])).toThrow(/config\.json must be a JSON object/);
  });

  it('non-integer or missing sizes, naming the key', () => {
    expect(() => parseConfig(llamaConfig({ hidden_size: 16.5 }))).toThrow(
      'config.json: hidden_size must be a positive integer, got 16.5',
    );
    expect(() => parseConfig(llamaConfig({ num_hidden_layers: '2' }))).toThrow(
      /num_hidden_layers must be a positive integer, got "2"/,
    );
    expect(() => parseConfig(llamaConfig({ vocab_size: undefined }), 'm/config.json')).toThrow(
      'm/config.json has no vocab_size',
    );
    expect(() => parseConfig(llamaConfig({ num_key_value_heads: 4 }))).toThrow(
      /num_attention_heads \(6\) must be a multiple of num_key_value_heads \(4\)/,
    );
    expect(() => parseConfig(llamaConfig({ hidden_act: 'gelu' }))).toThrow(/hidden_act "gelu" is not supported/);
  });
});

describe('validateCheckpoint', () => {
  it('passes on both HF fixtures and the demo model', async () => {
    for (const dir of [LLAMA_DIR, GPT2_DIR, DEMO_DIR]) {
      const spec = parseConfig(await readJson(`${dir}/config.json`));
      const store = await openCheckpoint(await nodeDir(dir));
      const resolved = validateCheckpoint(spec, store);
      expect(resolved.size).toBe(expectedTensors(spec).length);
    }
  });

  it('maps GPT-2 names with and without the transformer. prefix', async () => {
    const spec = parseConfig(await readJson(`${GPT2_DIR}/config.json`));
    const prefixed = await openCheckpoint(await nodeDir(GPT2_DIR));
    expect(resolveTensorName(prefixed, 'h.0.attn.c_attn.weight')).toBe('transformer.h.0.attn.c_attn.weight');
    // The same checkpoint saved without the prefix (as openai-community/gpt2 is).
    const tensors = await Promise.all(
      prefixed.names().map(async (n) => ({
        name: n.replace(/^transformer\./, ''),
        shape: prefixed.info(n)!.shape,
        data: await prefixed.load(n),
      })),
    );
    // With the attention-mask buffers old GPT-2 checkpoints carry, which are not weights: ignored.
    tensors.push({ name: 'h.0.attn.bias', shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) });
    tensors.push({ name: 'h.0.attn.masked_bias', shape: [], data: new Float32Array(1) });
    const bare = await memoryStore('bare', tensors);
    expect(resolveTensorName(bare, 'transformer.wte.weight')).toBe('wte.weight');
    validateCheckpoint(spec, bare);
    const loader = canonicalLoader(spec, prefixed);
    expect(Array.from(await loader.load('wte.weight'))).toEqual(Array.from(await bare.load('wte.weight')));
  });

  it('maps Llama names saved without model.', async () => {
    const spec = parseConfig(llamaConfig());
    const store = await storeFor(spec, (t) => ({ ...t, name: t.name.replace(/^model\./, '') }));
    expect(validateCheckpoint(spec, store).get('model.norm.weight')).toBe('norm.weight');
  });

  it('reports every renamed or reshaped tensor in one error', async () => {
    const spec = parseConfig(await readJson(`${LLAMA_DIR}/config.json`));
    const store = await storeFor(spec, (t) => {
      if (t.name === 'model.layers.1.mlp.up_proj.weight') return { ...t, name: 'model.layers.1.mlp.upproj.weight' };
      if (t.name === 'model.layers.0.self_attn.k_proj.weight')
        return { ...t, shape: [8, 8], data: new Float32Array(64) };
      if (t.name === 'lm_head.weight') return null;
      return t;
    });
    let message = '';
    try {
      validateCheckpoint(spec, store);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(
      'synthetic does not match its config (llama, 2 layers, hidden 16, vocab 32000): 3 problems',
    );
    expect(message).toContain('missing model.layers.1.mlp.up_proj.weight [64, 16]');
    expect(message).toContain('model.layers.0.self_attn.k_proj.weight: expected shape [16, 16], found [8, 8]');
    expect(message).toContain('missing lm_head.weight [32000, 16]');
  });
});
