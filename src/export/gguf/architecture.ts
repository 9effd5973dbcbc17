/**
 * Which llama.cpp architecture a Hugging Face config.json is, and the hyperparameters convert_hf_to_gguf.py
 * writes for it (TextModel.set_gguf_parameters, plus LlamaModel's and GPT2Model's own).
 */
import type { Json } from './hf-tokenizer';
import { float32, type GgufMetadata, string, uint32 } from './metadata-values';

export type GgufArch = 'llama' | 'qwen2' | 'qwen3' | 'gpt2';

/** HF architectures (config.architectures[0]) and model types -> llama.cpp architecture, as the converter maps them. */
const BY_HF_ARCHITECTURE: Record<string, GgufArch> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  GPT2LMHeadModel: 'gpt2',
};
const BY_MODEL_TYPE: Record<string, GgufArch> = {
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gpt2: 'gpt2',
};

export function ggufArchitecture(config: Json): GgufArch {
  const architectures = Array.isArray(config.architectures) ? (config.architectures as unknown[]) : [];
  const first = typeof architectures[0] === 'string' ? architectures[0] : undefined;
  const modelType = typeof config.model_type === 'string' ? config.model_type : undefined;
  const arch = (first && BY_HF_ARCHITECTURE[first]) || (modelType && BY_MODEL_TYPE[modelType]);
  if (arch) return arch;
  throw new Error(
    `GGUF export: config.json's model_type ${JSON.stringify(modelType ?? null)} (architectures ` +
      `${JSON.stringify(architectures)}) is not supported; supported: ` +
      `${Object.keys(BY_HF_ARCHITECTURE).join(', ')} (model types ${Object.keys(BY_MODEL_TYPE).join(', ')})`,
  );
}

/** Reads config.json numbers with errors naming the key. */
export class HParams {
  constructor(readonly json: Json) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.json[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new Error(`GGUF export: config.json has no ${key}`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new Error(`GGUF export: config.json ${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  number(key: string): number | null {
    const v = this.json[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`GGUF export: config.json ${key} must be a number, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** rope_parameters (transformers v5) or rope_scaling, with rope_theta folded in as the converter does. */
  rope(): { type: string; theta: number | null; params: Json } {
    const params = ((this.json.rope_parameters ?? this.json.rope_scaling) || {}) as Json;
    const type = String(params.rope_type ?? params.type ?? 'default');
    const theta = typeof params.rope_theta === 'number' ? params.rope_theta : this.number('rope_theta');
    return { type, theta, params };
  }
}

/** Head size of a llama-family model: head_dim when given, else hidden_size / num_attention_heads. */
export function headDim(h: HParams): number {
  return h.has('head_dim') ? h.int('head_dim') : h.int('hidden_size') / h.int('num_attention_heads');
}

/** {arch}.* hyperparameters and general.file_type, in the converter's order. */
export function addHyperparameters(out: GgufMetadata, arch: GgufArch, h: HParams, fileType: number): void {
  const key = (k: string) => `${arch}.${k}`;
  if (arch === 'gpt2') {
    out.set(key('block_count'), uint32(h.int('n_layer', 12)));
    // The converter reads n_ctx; llama.cpp sizes position_embd by it, so it must be wpe's row count: n_positions.
    out.set(key('context_length'), uint32(h.has('n_positions') ? h.int('n_positions') : h.int('n_ctx', 1024)));
    const embd = h.int('n_embd', 768);
    out.set(key('embedding_length'), uint32(embd));
    // The converter writes 4 * n_embd; n_inner, when set, is what the MLP weights are sized by.
    out.set(key('feed_forward_length'), uint32(h.int('n_inner', 4 * embd)));
    out.set(key('attention.head_count'), uint32(h.int('n_head', 12)));
    out.set(key('attention.layer_norm_epsilon'), float32(h.number('layer_norm_epsilon') ?? 1e-5));
    out.set('general.file_type', uint32(fileType));
    return;
  }
  out.set(key('block_count'), uint32(h.int('num_hidden_layers')));
  out.set(key('context_length'), uint32(h.int('max_position_embeddings')));
  out.set(key('embedding_length'), uint32(h.int('hidden_size')));
  out.set(key('feed_forward_length'), uint32(h.int('intermediate_size')));
  out.set(key('attention.head_count'), uint32(h.int('num_attention_heads')));
  if (h.has('num_key_value_heads')) out.set(key('attention.head_count_kv'), uint32(h.int('num_key_value_heads')));
  const rope = h.rope();
  if (rope.type === 'linear') {
    out.set(key('rope.scaling.type'), string('linear'));
    out.set(key('rope.scaling.factor'), float32(ropeFactor(rope.params)));
  } else if (!['default', 'llama3', 'dynamic'].includes(rope.type)) {
    // llama3 scaling is written as the rope_freqs tensor (rope-freqs.ts); dynamic NTK is left out, as there.
    throw new Error(
      `GGUF export: rope scaling type ${JSON.stringify(rope.type)} is not supported (supported: default, linear, llama3, dynamic)`,
    );
  }
  if (rope.theta !== null) out.set(key('rope.freq_base'), float32(rope.theta));
  const rmsEps = h.number('rms_norm_eps');
  if (rmsEps !== null) out.set(key('attention.layer_norm_rms_epsilon'), float32(rmsEps));
  if (h.has('head_dim')) {
    out.set(key('attention.key_length'), uint32(h.int('head_dim')));
    out.set(key('attention.value_length'), uint32(h.int('head_dim')));
  }
  out.set('general.file_type', uint32(fileType));
  if (arch === 'llama') {
    out.set(key('vocab_size'), uint32(h.int('vocab_size')));
    out.set(key('rope.dimension_count'), uint32(headDim(h)));
  }
}

function ropeFactor(params: Json): number {
  const factor = params.factor;
  if (typeof factor !== 'number' || !(factor > 0)) {
    throw new Error(`GGUF export: linear rope scaling needs a positive factor, got ${JSON.stringify(factor)}`);
  }
  return factor;
}
