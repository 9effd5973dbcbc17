/**
 * Hugging Face config.json -> ModelSpec, the architecture description the engine builds from, plus
 * the checkpoint tensor names and shapes each architecture needs and a checker for a checkpoint.
 */
import type { WeightStore } from './formats/safetensors';
import type { TensorSource, WeightDType } from './weights';

export interface ModelSpec {
  family: 'llama' | 'gpt2'; // llama covers llama/mistral/qwen2/qwen3
  modelType: string; // config.model_type
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number; // d_ff (gpt2: n_inner ?? 4*n_embd)
  maxPositions: number; // max_position_embeddings / n_positions
  normEps: number; // rms_norm_eps / layer_norm_epsilon
  ropeTheta: number; // 10000 default
  ropeScaling:
    | null
    | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
    | { type: 'linear'; factor: number };
  tieWordEmbeddings: boolean; // gpt2: true unless explicitly false
  qkvBias: boolean; // qwen2 true; llama: config.attention_bias
  mlpBias: boolean; // llama config.mlp_bias
  qkNorm: boolean; // qwen3
  bosTokenId: number | null;
  eosTokenId: number | null; // eos may be a list in config: take the first; out-of-range ids -> null with a warning
  warnings: string[];
  sourceName: string; // config._name_or_path or folder name (for PEFT base_model_name_or_path)
}

const LLAMA_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'];
const SUPPORTED = [...LLAMA_TYPES, 'gpt2'];

type Json = Record<string, unknown>;

/** Reads typed keys of one config file, with errors that name the file and the key. */
class ConfigReader {
  constructor(
    readonly json: Json,
    readonly file: string,
  ) {}

  has(key: string): boolean {
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  /** A positive integer; `fallback` when absent (or an error when there is none). */
  size(key: string, fallback?: number): number {
    const value = this.json[key];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new Error(`${this.file} has no ${key}`);
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`${this.file}: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  /** A positive finite number; `fallback` when absent (or an error when there is none). */
  number(key: string, fallback?: number): number {
    const value = this.json[key];
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      throw new Error(`${this.file} has no ${key}`);
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`${this.file}: ${key} must be a positive number, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.json[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean')
      throw new Error(`${this.file}: ${key} must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }
}

/** Parses a config.json object. Throws on anything the engine cannot run; soft issues go to `warnings`. */
export function parseConfig(json: unknown, fileName = 'config.json'): ModelSpec {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${fileName} must be a JSON object`);
  }
  const config = new ConfigReader(json as Json, fileName);
  const modelType = config.json.model_type;
  if (modelType === undefined || modelType === null || modelType === '') {
    throw new Error(`${fileName} has no model_type; supported: ${SUPPORTED.join(', ')}`);
  }
  if (typeof modelType !== 'string' || !SUPPORTED.includes(modelType)) {
    throw new Error(
      `${fileName}: model_type ${JSON.stringify(modelType)} is not supported; supported: ${SUPPORTED.join(', ')}`,
    );
  }
  const warnings: string[] = [];
  const arch = modelType === 'gpt2' ? parseGpt2(config, warnings) : parseLlama(config, modelType, warnings);
  return {
    ...arch,
    bosTokenId: tokenId(config, 'bos_token_id', arch.vocabSize, warnings),
    eosTokenId: tokenId(config, 'eos_token_id', arch.vocabSize, warnings),
    warnings,
    sourceName: sourceName(config.json, fileName, modelType),
  };
}

/** What the architecture parsers fill in; parseConfig adds the rest. */
type ArchSpec = Omit<ModelSpec, 'bosTokenId' | 'eosTokenId' | 'warnings' | 'sourceName'>;

function parseLlama(config: ConfigReader, modelType: string, warnings: string[]): ArchSpec {
  const file = config.file;
  const hidden = config.size('hidden_size');
  const heads = config.size('num_attention_heads');
  const kvHeads = config.size('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw new Error(`${file}: num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`);
  }
  if (!config.has('head_dim') && hidden % heads !== 0) {
    throw new Error(
      `${file}: hidden_size (${hidden}) must be a multiple of num_attention_heads (${heads}) when head_dim is absent`,
    );
  }
  const headDim = config.size('head_dim', hidden / heads);
  if (headDim % 2 !== 0) throw new Error(`${file}: head_dim (${headDim}) must be even for rotary embeddings`);
  const maxPositions = config.size('max_position_embeddings');

  const act = config.json.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') {
    throw new Error(`${file}: hidden_act ${JSON.stringify(act)} is not supported for ${modelType} (expected silu)`);
  }
  if (modelType === 'mistral' || modelType === 'qwen2' || modelType === 'qwen3') {
    slidingWindowWarning(config, modelType, maxPositions, warnings);
  }
  // Qwen2 always has q/k/v biases; llama and qwen3 follow attention_bias (which also puts one on o_proj).
  const qkvBias = modelType === 'qwen2' ? true : modelType === 'mistral' ? false : config.bool('attention_bias', false);
  if (qkvBias && modelType !== 'qwen2') {
    warnings.push(`${file}: attention_bias is true, so o_proj has a bias as well as q/k/v_proj`);
  }
  return {
    family: 'llama',
    modelType,
    vocabSize: config.size('vocab_size'),
    hidden,
    layers: config.size('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    intermediate: config.size('intermediate_size'),
    maxPositions,
    normEps: config.number('rms_norm_eps', 1e-6),
    ropeTheta: ropeTheta(config),
    ropeScaling: ropeScaling(config, warnings),
    tieWordEmbeddings: config.bool('tie_word_embeddings', false),
    qkvBias,
    mlpBias: modelType === 'llama' ? config.bool('mlp_bias', false) : false,
    qkNorm: modelType === 'qwen3',
  };
}

function parseGpt2(config: ConfigReader, warnings: string[]): ArchSpec {
  const file = config.file;
  const hidden = config.size('n_embd', 768);
  const heads = config.size('n_head', 12);
  if (hidden % heads !== 0) throw new Error(`${file}: n_embd (${hidden}) must be a multiple of n_head (${heads})`);
  const act = config.json.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    warnings.push(
      `${file}: activation_function ${JSON.stringify(act)}; the tanh approximation (gelu_new) will be used`,
    );
  }
  for (const key of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn']) {
    if (config.bool(key, false)) throw new Error(`${file}: ${key} = true is not supported`);
  }
  if (!config.bool('scale_attn_weights', true)) throw new Error(`${file}: scale_attn_weights = false is not supported`);
  return {
    family: 'gpt2',
    modelType: 'gpt2',
    vocabSize: config.size('vocab_size', 50257),
    hidden,
    layers: config.size('n_layer', 12),
    heads,
    kvHeads: heads,
    headDim: hidden / heads,
    intermediate: config.size('n_inner', 4 * hidden),
    maxPositions: config.has('n_positions') ? config.size('n_positions') : config.size('n_ctx', 1024),
    normEps: config.number('layer_norm_epsilon', 1e-5),
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: config.bool('tie_word_embeddings', true),
    qkvBias: true, // every GPT-2 linear layer has a bias
    mlpBias: true,
    qkNorm: false,
  };
}

/** Transformers v5 moved rope_theta and rope_scaling into rope_parameters; accept both. */
function ropeParameters(config: ConfigReader): Json | null {
  const params = config.json.rope_scaling ?? config.json.rope_parameters;
  if (params === undefined || params === null) return null;
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw new Error(`${config.file}: rope_scaling must be an object or null, got ${JSON.stringify(params)}`);
  }
  return params as Json;
}

function ropeTheta(config: ConfigReader): number {
  if (config.has('rope_theta')) return config.number('rope_theta', 10000);
  const params = config.json.rope_parameters;
  if (params && typeof params === 'object' && 'rope_theta' in params) {
    return new ConfigReader(params as Json, `${config.file} rope_parameters`).number('rope_theta', 10000);
  }
  return 10000;
}

function ropeScaling(config: ConfigReader, warnings: string[]): ModelSpec['ropeScaling'] {
  const params = ropeParameters(config);
  if (!params) return null;
  const key = config.has('rope_scaling') ? 'rope_scaling' : 'rope_parameters';
  const reader = new ConfigReader(params, `${config.file} ${key}`);
  const type = params.rope_type ?? params.type ?? 'default';
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: reader.number('factor') };
    case 'llama3':
      return {
        type: 'llama3',
        factor: reader.number('factor'),
        lowFreqFactor: reader.number('low_freq_factor', 1),
        highFreqFactor: reader.number('high_freq_factor', 4),
        originalMaxPositions: reader.size('original_max_position_embeddings', 8192),
      };
    case 'dynamic':
      // Dynamic NTK only changes positions past max_position_embeddings, which we never run.
      warnings.push(
        `${config.file}: ${key} type "dynamic" is ignored (it only affects sequences longer than max_position_embeddings)`,
      );
      return null;
    default:
      throw new Error(
        `${config.file}: ${key} type ${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`,
      );
  }
}

function slidingWindowWarning(config: ConfigReader, modelType: string, maxPositions: number, warnings: string[]): void {
  const window = config.json.sliding_window;
  // Qwen configs carry a sliding_window value but only use it when use_sliding_window is set.
  const enabled = modelType === 'mistral' ? true : config.bool('use_sliding_window', false);
  if (!enabled || window === null || window === undefined) return;
  if (typeof window === 'number' && window >= maxPositions) return;
  warnings.push(
    `${config.file}: sliding_window ${JSON.stringify(window)} is in use; attention here is full causal, ` +
      `which matches the original model only for sequences up to ${JSON.stringify(window)} tokens`,
  );
}

function tokenId(config: ConfigReader, key: string, vocabSize: number, warnings: string[]): number | null {
  let value = config.json[key];
  if (Array.isArray(value)) value = value[0];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value >= vocabSize) {
    warnings.push(
      `${config.file}: ${key} ${JSON.stringify(value)} is outside the vocabulary (size ${vocabSize}); ignored`,
    );
    return null;
  }
  return value;
}

function sourceName(json: Json, fileName: string, modelType: string): string {
  const named = json._name_or_path;
  if (typeof named === 'string' && named.trim() !== '') return named;
  const parts = fileName.split(/[\\/]/).filter(Boolean);
  return parts.length > 1 ? parts[parts.length - 2] : modelType;
}

// ---------------------------------------------------------------------------------------------
// Checkpoint layout

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

/**
 * The Hugging Face checkpoint tensors (names and shapes) a spec needs, under canonical names: Llama
 * names as HF saves them (`model.layers.0...`), GPT-2 names without the optional `transformer.` prefix
 * (`h.0.attn.c_attn.weight`; GPT2LMHeadModel saves them with it, the original gpt2 files without).
 * resolveTensorName maps a canonical name to the one a checkpoint uses.
 */
export function expectedTensors(spec: ModelSpec): ExpectedTensor[] {
  return spec.family === 'gpt2' ? gpt2Tensors(spec) : llamaTensors(spec);
}

function llamaTensors(spec: ModelSpec): ExpectedTensor[] {
  const { vocabSize: V, hidden: d, heads, kvHeads, headDim, intermediate: ff } = spec;
  const q = heads * headDim;
  const kv = kvHeads * headDim;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, d] }];
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [d] },
      { name: `${p}self_attn.q_proj.weight`, shape: [q, d] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, d] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, d] },
      { name: `${p}self_attn.o_proj.weight`, shape: [d, q] },
    );
    if (spec.qkvBias) {
      out.push(
        { name: `${p}self_attn.q_proj.bias`, shape: [q] },
        { name: `${p}self_attn.k_proj.bias`, shape: [kv] },
        { name: `${p}self_attn.v_proj.bias`, shape: [kv] },
      );
      if (spec.modelType !== 'qwen2') out.push({ name: `${p}self_attn.o_proj.bias`, shape: [d] });
    }
    if (spec.qkNorm) {
      out.push(
        { name: `${p}self_attn.q_norm.weight`, shape: [headDim] },
        { name: `${p}self_attn.k_norm.weight`, shape: [headDim] },
      );
    }
    out.push(
      { name: `${p}post_attention_layernorm.weight`, shape: [d] },
      { name: `${p}mlp.gate_proj.weight`, shape: [ff, d] },
      { name: `${p}mlp.up_proj.weight`, shape: [ff, d] },
      { name: `${p}mlp.down_proj.weight`, shape: [d, ff] },
    );
    if (spec.mlpBias) {
      out.push(
        { name: `${p}mlp.gate_proj.bias`, shape: [ff] },
        { name: `${p}mlp.up_proj.bias`, shape: [ff] },
        { name: `${p}mlp.down_proj.bias`, shape: [d] },
      );
    }
  }
  out.push({ name: 'model.norm.weight', shape: [d] });
  if (!spec.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, d] });
  return out;
}

function gpt2Tensors(spec: ModelSpec): ExpectedTensor[] {
  const { vocabSize: V, hidden: d, intermediate: ff } = spec;
  const out: ExpectedTensor[] = [
    { name: 'wte.weight', shape: [V, d] },
    { name: 'wpe.weight', shape: [spec.maxPositions, d] },
  ];
  // GPT-2 uses Conv1D: weights are stored [in, out], the transpose of nn.Linear.
  for (let i = 0; i < spec.layers; i++) {
    const p = `h.${i}.`;
    out.push(
      { name: `${p}ln_1.weight`, shape: [d] },
      { name: `${p}ln_1.bias`, shape: [d] },
      { name: `${p}attn.c_attn.weight`, shape: [d, 3 * d] },
      { name: `${p}attn.c_attn.bias`, shape: [3 * d] },
      { name: `${p}attn.c_proj.weight`, shape: [d, d] },
      { name: `${p}attn.c_proj.bias`, shape: [d] },
      { name: `${p}ln_2.weight`, shape: [d] },
      { name: `${p}ln_2.bias`, shape: [d] },
      { name: `${p}mlp.c_fc.weight`, shape: [d, ff] },
      { name: `${p}mlp.c_fc.bias`, shape: [ff] },
      { name: `${p}mlp.c_proj.weight`, shape: [ff, d] },
      { name: `${p}mlp.c_proj.bias`, shape: [d] },
    );
  }
  out.push({ name: 'ln_f.weight', shape: [d] }, { name: 'ln_f.bias', shape: [d] });
  if (!spec.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, d] });
  return out;
}

/**
 * The name under which `store` holds the canonical tensor `name` (see expectedTensors), or undefined.
 * GPT-2 checkpoints may or may not prefix `transformer.`; Llama checkpoints saved from the bare
 * LlamaModel lack `model.`.
 */
export function resolveTensorName(store: Pick<WeightStore, 'info'>, name: string): string | undefined {
  const candidates = [name];
  if (name.startsWith('model.')) candidates.push(name.slice('model.'.length));
  else if (name.startsWith('transformer.')) candidates.push(name.slice('transformer.'.length));
  else if (!name.startsWith('lm_head.')) candidates.push(`transformer.${name}`);
  return candidates.find((candidate) => store.info(candidate) !== undefined);
}

/**
 * Checks that `store` has every tensor `spec` needs with the right shape and a float dtype. Throws
 * one error listing every problem; returns canonical name -> name in the store.
 */
export function validateCheckpoint(
  spec: ModelSpec,
  store: WeightStore,
  /** Stored names of pre-quantized weights: their shapes and dtypes are their quant states' (quant/bnb-source.ts). */
  quantized: ReadonlySet<string> = new Set(),
): Map<string, string> {
  checkLayerCount(spec, store);
  const resolved = new Map<string, string>();
  const problems: string[] = [];
  for (const { name, shape } of expectedTensors(spec)) {
    const found = resolveTensorName(store, name);
    if (found === undefined) {
      problems.push(`missing ${name} [${shape.join(', ')}]`);
      continue;
    }
    const info = store.info(found)!;
    const label = found === name ? name : `${name} (as ${found})`;
    if (quantized.has(found)) {
      resolved.set(name, found);
      continue;
    }
    if (info.shape.length !== shape.length || info.shape.some((n, i) => n !== shape[i])) {
      problems.push(`${label}: expected shape [${shape.join(', ')}], found [${info.shape.join(', ')}]`);
    } else if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      problems.push(`${label}: dtype ${info.dtype} is not a float weight type (F32, F16, BF16)`);
    }
    resolved.set(name, found);
  }
  if (problems.length > 0) {
    throw new Error(
      `${store.name} does not match its config (${spec.modelType}, ${spec.layers} layers, hidden ${spec.hidden}, ` +
        `vocab ${spec.vocabSize}): ${problems.length} problem${problems.length > 1 ? 's' : ''}\n  ${problems.join('\n  ')}`,
    );
  }
  return resolved;
}

/**
 * A config's layer count is untrusted: listing the tensors of num_hidden_layers = 1e9 would exhaust memory. Every
 * layer has tensors of its own, so a checkpoint holding fewer tensors than the config has layers cannot match; past
 * this check the listing is bounded by the checkpoint's own header.
 */
function checkLayerCount(spec: ModelSpec, store: WeightStore): void {
  const held = store.names().length;
  if (spec.layers > held) {
    throw new Error(
      `${store.name} does not match its config (${spec.modelType}, ${spec.layers} layers, hidden ${spec.hidden}, ` +
        `vocab ${spec.vocabSize}): the checkpoint holds ${held} tensors, fewer than the config's ${spec.layers} layers`,
    );
  }
}

/**
 * Validates `store` against `spec` and returns a loader keyed by canonical names (expectedTensors),
 * whatever prefix convention the checkpoint uses.
 */
export function canonicalLoader(
  spec: ModelSpec,
  store: WeightStore,
  quantized: ReadonlySet<string> = new Set(),
): TensorSource {
  const resolved = validateCheckpoint(spec, store, quantized);
  const stored = (name: string) => resolved.get(name) ?? resolveTensorName(store, name) ?? name;
  return {
    load: (name) => store.load(stored(name)),
    dtype: (name) => STORED_DTYPES[store.info(stored(name))?.dtype ?? 'F32'] ?? 'f32',
  };
}

/** Checkpoint dtypes the GPU can keep as they are (others are widened to f32). */
const STORED_DTYPES: Partial<Record<string, WeightDType>> = { F32: 'f32', BF16: 'bf16', F16: 'f16' };
