/**
 * GPU memory of a LoRA training run on real model shapes, measured by allocating it: base weights (zeros: only the
 * shapes matter; f32 or kept 16-bit as the bf16 checkpoints store them), the method's adapters, the training graph and the trainer, exactly as trainRun builds them, but
 * no step is run (a 0.5B model's step takes hours on a CPU Vulkan driver). Buffers are counted by category.
 */
import { createLoraLayers } from '../adapters/lora/model';
import { resolveTargets } from '../engine/methods';
import type { Gpu } from '../gpu/gpu';
import { expectedTensors, parseConfig, type ModelSpec } from '../model/config';
import { TransformerGraph, type Recompute } from '../model/transformer';
import { isQuantized, type QuantDType } from '../gpu/tensor';
import { ModelWeights, type TensorSource, type WeightDType } from '../model/weights';
import { packLayout } from '../quant/layout';
import { DEFAULT_OPTIMIZER, Trainer } from '../train/trainer';
import { memoryCategory, type MemoryCategory } from './methods';

/** config.json fields of the models the performance goals name (from their Hugging Face configs). */
export const MODEL_SHAPES: Record<string, Record<string, unknown>> = {
  'SmolLM2-135M': {
    model_type: 'llama',
    vocab_size: 49152,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    tie_word_embeddings: true,
  },
  'Qwen2.5-0.5B': {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  },
};

/** The 1-3B models QLoRA is for (issue 17's goals), from their Hugging Face configs. */
export const QLORA_SHAPES: Record<string, Record<string, unknown>> = {
  'Llama-3.2-1B': {
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
  },
  'Llama-3.2-3B': {
    model_type: 'llama',
    vocab_size: 128256,
    hidden_size: 3072,
    intermediate_size: 8192,
    num_hidden_layers: 28,
    num_attention_heads: 24,
    num_key_value_heads: 8,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
  },
  'Qwen2.5-1.5B': {
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  },
};

/** The GiB each QLoRA goal allows (NF4 base, block recomputation, LoRA r16 on every linear layer, 1 x 512). */
export const QLORA_GOALS_GIB: Record<string, number> = { 'Llama-3.2-3B': 3.0, 'Qwen2.5-1.5B': 2.0 };

export interface MemoryReport {
  model: string;
  batch: number;
  seq: number;
  targets: string;
  rank: number;
  /** Storage of the frozen base matrices (both models ship bf16 checkpoints). */
  weights: WeightDType;
  recompute: Recompute;
  bytes: Record<MemoryCategory, number>;
  total: number;
  error?: string;
}

export async function measureLoraMemory(
  gpu: Gpu,
  model: string,
  c: { batch: number; seq: number; rank: number; targets: string[]; weights: WeightDType; recompute: Recompute },
): Promise<MemoryReport> {
  const spec: ModelSpec = parseConfig(MODEL_SHAPES[model] ?? QLORA_SHAPES[model], `${model}/config.json`);
  const bytes: Record<MemoryCategory, number> = {
    weights: 0,
    adapters: 0,
    gradients: 0,
    optimizer: 0,
    activations: 0,
    scratch: 0,
  };
  const report = {
    model,
    batch: c.batch,
    seq: c.seq,
    targets: c.targets.join(','),
    rank: c.rank,
    weights: c.weights,
    recompute: c.recompute,
    bytes,
  };
  const mark = gpu.mark();
  try {
    const sizes = new Map(expectedTensors(spec).map((t) => [t.name, t.shape.reduce((a, b) => a * b, 1)]));
    // Quantized storage: zero layouts of the real sizes (what matters here), not a quantization of zeros.
    const shapes = new Map(expectedTensors(spec).map((t) => [t.name, t.shape]));
    const source: TensorSource = {
      load: async (name: string) => new Float32Array(sizes.get(name)!),
      // The checkpoints are bf16; quantized storage applies to the blocks' linear weights (storagePlan).
      dtype: () => (isQuantized(c.weights) ? 'bf16' : c.weights),
      quantized: async (name) => (isQuantized(c.weights) ? zeroLayout(shapes.get(name)!, c.weights) : null),
    };
    const weights = await ModelWeights.upload(gpu, spec, source, {
      storage: isQuantized(c.weights) ? (c.weights as 'nf4' | 'int8') : 'auto',
    });
    // Labels of every weight tensor: a sharded embedding's shards are named by their rows.
    const names = new Set(weights.allTensors().map((t) => t.label));
    const layers = createLoraLayers(
      gpu,
      spec,
      { rank: c.rank, alpha: 2 * c.rank, targets: resolveTargets(spec, c.targets), rslora: false, lrRatioB: 1 },
      0,
    );
    const graph = new TransformerGraph(gpu, weights, {
      batch: c.batch,
      seq: c.seq,
      train: 'adapters',
      adapters: new Map(layers),
      recompute: c.recompute,
    });
    new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: 1e-3, totalSteps: 1 });
    await gpu.sync();
    gpu.checkErrors(`memory ${model}`);
    for (const b of gpu.createdSince(mark)) bytes[memoryCategory(b.label, names)] += b.size;
    return { ...report, total: Object.values(bytes).reduce((a, b) => a + b, 0) };
  } catch (e) {
    return { ...report, total: NaN, error: (e as Error).message };
  } finally {
    await gpu.freeSince(mark);
  }
}

/** A quantized layout of the right size, every code and scale zero (bitsandbytes' default NF4 blocks). */
function zeroLayout(shape: readonly number[], dtype: QuantDType): { words: Uint32Array; dtype: QuantDType } {
  const [rows, cols] = shape;
  const n = rows * cols;
  if (dtype === 'int8') {
    const words = packLayout({
      kind: 'int8Rows',
      rows,
      cols,
      codes: new Int8Array(n),
      scale: new Float32Array(rows),
      rounding: 'f32',
    });
    return { words, dtype };
  }
  const blocks = Math.ceil(n / 64);
  const words = packLayout({
    kind: 'codebook4',
    n,
    codes: new Uint8Array(Math.ceil(n / 2)),
    blocksize: 64,
    absmax: new Uint8Array(blocks),
    nested: {
      absmax: new Float32Array(Math.ceil(blocks / 256)),
      map: new Float32Array(256),
      blocksize: 256,
      offset: 0,
    },
    map: new Float32Array(16),
    rounding: 'f32',
  });
  return { words, dtype };
}
