/** Tiny random models of every supported family, built from real config.json dictionaries. */
import type { Gpu } from '../../src/gpu/gpu';
import { roundToHalf } from '../../src/gpu/half';
import type { LinearAdapter } from '../../src/model/adapter';
import { parseConfig, expectedTensors, type ModelSpec } from '../../src/model/config';
import { TransformerGraph } from '../../src/model/transformer';
import { halfCapableTensors, type ModelWeights, type TensorSource } from '../../src/model/weights';
import { Rng } from '../../src/util/random';

export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  llama: {
    model_type: 'llama',
    vocab_size: 37,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  qwen2: {
    model_type: 'qwen2',
    vocab_size: 29,
    hidden_size: 12,
    intermediate_size: 20,
    num_hidden_layers: 1,
    num_attention_heads: 3,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  },
  qwen3: {
    model_type: 'qwen3',
    vocab_size: 31,
    hidden_size: 16,
    intermediate_size: 20,
    num_hidden_layers: 1,
    head_dim: 8,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  },
  gpt2: {
    model_type: 'gpt2',
    vocab_size: 33,
    n_embd: 16,
    n_layer: 2,
    n_head: 2,
    n_positions: 32,
    layer_norm_epsilon: 1e-5,
  },
};

export function tinySpec(family: keyof typeof TINY_CONFIGS): ModelSpec {
  return parseConfig(TINY_CONFIGS[family], `${family}/config.json`);
}

/** Random weights: matrices ~ N(0, 0.3²), norm weights ~ 1 + N(0, 0.1²), biases ~ N(0, 0.1²). */
export function randomSource(spec: ModelSpec, seed: number): TensorSource {
  const rng = new Rng(seed);
  const tensors = new Map<string, Float32Array>();
  for (const { name, shape } of expectedTensors(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = /norm|ln_/.test(name) && name.endsWith('.weight');
    const data = isNorm ? rng.normals(n, 0.1).map((x) => 1 + x) : rng.normals(n, name.endsWith('.bias') ? 0.1 : 0.3);
    tensors.set(name, data);
  }
  return {
    load: async (name) => {
      const t = tensors.get(name);
      if (!t) throw new Error(`no tensor ${name}`);
      return t;
    },
  };
}

/** A batch of random tokens with some ignored targets and packed positions (two documents in row 0). */
export function randomBatch(spec: ModelSpec, batch: number, seq: number, seed: number) {
  const rng = new Rng(seed);
  const R = batch * seq;
  const tokens = new Uint32Array(R).map(() => rng.int(spec.vocabSize));
  const targets = new Int32Array(R).map(() => rng.int(spec.vocabSize));
  const positions = new Uint32Array(R).map((_, i) => i % seq);
  for (let i = 0; i < R; i += 5) targets[i] = -100;
  // Row 0 holds two packed documents: positions restart mid-row.
  const half = Math.floor(seq / 2);
  for (let t = half; t < seq; t++) positions[t] = t - half;
  const supervised = targets.filter((t) => t >= 0).length;
  return { tokens, targets, positions, supervised };
}

/** randomSource as a bf16 checkpoint stores it: the matrices rounded once to bf16, and declared so. */
export async function bf16Source(spec: ModelSpec, seed: number): Promise<TensorSource> {
  const base = randomSource(spec, seed);
  const half = halfCapableTensors(spec);
  const data = new Map<string, Float32Array>();
  for (const { name } of expectedTensors(spec)) {
    const x = await base.load(name);
    data.set(name, half.has(name) ? roundToHalf(x, 'bf16') : x);
  }
  return { load: async (n) => data.get(n)!, dtype: (n) => (half.has(n) ? 'bf16' : 'f32') };
}

/** Forward-only logits over a random batch 2 x 5 (every row in one chunk) and the loss sum. */
export async function logitsOf(gpu: Gpu, weights: ModelWeights, adapters?: Map<string, LinearAdapter>) {
  const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 5, train: 'none', adapters });
  graph.setBatch(randomBatch(weights.spec, 2, 5, 4));
  graph.forwardList.run();
  const out = { logits: await gpu.read(graph.logits), loss: (await gpu.read(graph.lossSum))[0] };
  gpu.checkErrors('forward');
  return out;
}
