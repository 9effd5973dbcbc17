/**
 * A whole model as plain float tensors with its files: what a merged export writes as a safetensors folder
 * (merge.ts) and what the GGUF writer converts (gguf/).
 */
import type { NamedTensor } from '../model/formats/safetensors';

export interface MergedModel {
  /** config.json text, without a bitsandbytes quantization_config. */
  configJson: string;
  /**
   * Every tensor the model's Hugging Face checkpoint holds, under its names there (GPT-2's with the `transformer.`
   * prefix of GPT2LMHeadModel; no lm_head.weight when the embedding is tied), as float32.
   */
  tensors: NamedTensor[];
  /** The tokenizer and generation files the model folder had, by file name (tokenizer.json, tokenizer_config.json, ...). */
  files: Record<string, string>;
}

/** Precisions of a merged safetensors folder. */
export const MERGED_DTYPES = ['f32', 'bf16', 'f16'] as const;
export type MergedDtype = (typeof MERGED_DTYPES)[number];

/** Tensor types of a GGUF export. */
export const GGUF_DTYPES = ['f32', 'f16', 'q8_0'] as const;
export type GgufDtype = (typeof GGUF_DTYPES)[number];
