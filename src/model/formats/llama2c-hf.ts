/**
 * A llama2.c model + tokenizer as a Hugging Face Llama folder (config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json, generation_config.json), in memory. Used by
 * scripts/convert-llama2c.ts for the demo model; pure, so the browser can do the same.
 */
import { llama2cToHfTokenizer, llama2cTokenizerConfig } from '../../tokenizer/llama2c-to-hf';
import { readLlama2c, readLlama2cTokenizer, type Llama2cHeader, type Llama2cTokenizer } from './llama2c';
import { writeSafetensors } from './safetensors';
import type { ByteSource } from './source';

/** Pretty JSON with sorted keys, as transformers writes its configs. */
export function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2) + '\n';
}

export function llama2cHfConfig(h: Llama2cHeader, nameOrPath: string): Record<string, unknown> {
  return {
    _name_or_path: nameOrPath,
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    head_dim: h.dim / h.heads,
    hidden_act: 'silu',
    hidden_size: h.dim,
    initializer_range: 0.02,
    intermediate_size: h.hiddenDim,
    max_position_embeddings: h.seqLen,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: h.heads,
    num_hidden_layers: h.layers,
    num_key_value_heads: h.kvHeads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    tie_word_embeddings: h.sharedClassifier,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: h.vocabSize,
  };
}

export interface HfFolder {
  /** File name -> contents (text files as strings). */
  files: Record<string, string | Uint8Array>;
  header: Llama2cHeader;
}

/** Converts a llama2.c checkpoint and its tokenizer .bin to the files of an HF Llama folder. */
export async function llama2cToHfFolder(
  model: ByteSource,
  tokenizerBin: Uint8Array,
  nameOrPath: string,
): Promise<HfFolder> {
  const { header, tensors } = await readLlama2c(model, nameOrPath);
  const tok = readLlama2cTokenizer(tokenizerBin, 'tokenizer .bin', header.vocabSize);
  return {
    header,
    files: {
      ...llama2cHfTextFiles(header, tok, nameOrPath),
      'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
    },
  };
}

/** The folder's files besides the weights: config.json, generation_config.json and the tokenizer's two files. */
export function llama2cHfTextFiles(
  header: Llama2cHeader,
  tok: Pick<Llama2cTokenizer, 'vocab' | 'scores'>,
  nameOrPath: string,
): Record<string, string> {
  return {
    'config.json': sortedJson(llama2cHfConfig(header, nameOrPath)),
    'generation_config.json': sortedJson({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2 }),
    'tokenizer.json': JSON.stringify(llama2cToHfTokenizer(tok), null, 2) + '\n',
    'tokenizer_config.json': sortedJson(llama2cTokenizerConfig(header.seqLen)),
  };
}
