/**
 * GGUF export of a merged model, the way llama.cpp's convert_hf_to_gguf.py writes one (llama.cpp as bundled with
 * node-llama-cpp 3.21.1): llama (and Mistral), qwen2, qwen3 and gpt2; tensors as f32, f16 or q8_0, norms, biases
 * and 1-D tensors kept f32; the tokenizer, its special tokens and chat template in the metadata. Also the Ollama
 * Modelfile that goes with the file.
 */
import { GGUF_DTYPES, type GgufDtype, type MergedModel } from '../merged-model';
import { addHyperparameters, ggufArchitecture, HParams } from './architecture';
import { addGeneralMetadata } from './general';
import { encodeGguf, GGUF_ALIGNMENT } from './gguf-file';
import { type Json, parseJsonFile } from './hf-tokenizer';
import { type GgufMetadata, string, uint32 } from './metadata-values';
import { FILE_TYPE } from './tensor-data';
import { ggufTensors } from './tensors';
import { addTokenizerMetadata } from './tokenizer-metadata';

export { ollamaModelfile } from './modelfile';

/** gguf-py GGML_QUANT_VERSION, which the converter writes into every file. */
const QUANTIZATION_VERSION = 2;

/** One .gguf file of the model, tensors as `dtype` (norms and biases stay f32, as llama.cpp's converter keeps them). */
export async function writeGguf(model: MergedModel, opts: { dtype: GgufDtype; name?: string }): Promise<Uint8Array> {
  if (!GGUF_DTYPES.includes(opts.dtype)) {
    throw new Error(
      `GGUF export: dtype ${JSON.stringify(opts.dtype)} is not supported; supported: ${GGUF_DTYPES.join(', ')}`,
    );
  }
  const config = parseJsonFile(model.configJson, 'config.json');
  const arch = ggufArchitecture(config);
  const h = new HParams(config);
  const name = opts.name ?? defaultName(config, arch);
  const tensors = ggufTensors(arch, h, model.tensors, opts.dtype, name);
  const embedding = tensors.find((t) => t.name === 'token_embd.weight')!;
  const vocabSize = embedding.ne[1];
  const configVocab = h.json.vocab_size;
  if (configVocab !== undefined && configVocab !== vocabSize) {
    throw new Error(
      `GGUF export of ${name}: config.json's vocab_size ${JSON.stringify(configVocab)} differs from the embedding's ${vocabSize} rows`,
    );
  }
  const generationText = model.files['generation_config.json'];

  const metadata: GgufMetadata = new Map();
  metadata.set('general.architecture', string(arch));
  metadata.set('general.alignment', uint32(GGUF_ALIGNMENT));
  addGeneralMetadata(metadata, {
    name,
    parameterCount: tensors.reduce((n, t) => n + t.data.length, 0),
    generationConfig: generationText === undefined ? null : parseJsonFile(generationText, 'generation_config.json'),
  });
  addHyperparameters(metadata, arch, h, FILE_TYPE[opts.dtype]);
  metadata.set('general.quantization_version', uint32(QUANTIZATION_VERSION));
  await addTokenizerMetadata(metadata, model, config, arch, vocabSize);
  return encodeGguf(metadata, tensors);
}

/** config.json's _name_or_path without its folders (the converter names a model after its folder), else the architecture. */
function defaultName(config: Json, arch: string): string {
  const path = typeof config._name_or_path === 'string' ? config._name_or_path : '';
  return path.split(/[\\/]/).filter(Boolean).pop() ?? arch;
}
