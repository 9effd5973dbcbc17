/**
 * The tokenizer.* metadata of a merged model, in convert_hf_to_gguf.py's order: tokenizer.ggml.model and .pre,
 * the token list (and scores for sentencepiece vocabularies), token types, merges, special tokens, chat template.
 */
import type { MergedModel } from '../merged-model';
import type { GgufArch } from './architecture';
import { type Json, mergesOf, parseJsonFile, readHfTokenizer, tokenizerKind } from './hf-tokenizer';
import { bool, float32s, type GgufMetadata, int32s, string, strings } from './metadata-values';
import { identifyPreTokenizer } from './pre-tokenizer';
import { addSpecialVocab } from './special-vocab';
import { byteLevelVocab, sentencepieceVocab } from './vocab';

export async function addTokenizerMetadata(
  out: GgufMetadata,
  model: MergedModel,
  modelConfig: Json,
  arch: GgufArch,
  vocabSize: number,
): Promise<void> {
  const tokenizerText = model.files['tokenizer.json'];
  if (tokenizerText === undefined) {
    // llama.cpp's "none" vocabulary exists, but its tools (and node-llama-cpp, and Ollama) abort on a model that
    // cannot tokenize, as the converter refuses a model folder without a tokenizer.
    throw new Error(
      "GGUF export needs the model's tokenizer.json: llama.cpp and Ollama tokenize with the vocabulary stored in the file",
    );
  }
  const configText = model.files['tokenizer_config.json'];
  const tokenizerConfig = configText === undefined ? null : parseJsonFile(configText, 'tokenizer_config.json');
  const tok = readHfTokenizer(parseJsonFile(tokenizerText, 'tokenizer.json'), tokenizerConfig);
  const special = {
    tokenizer: tok,
    modelConfig,
    chatTemplateJinja: model.files['chat_template.jinja'],
  };
  // LlamaModel.set_vocab passes tokenizer_config's add_prefix_space on (llama.cpp's default is true for sentencepiece).
  const addPrefixSpace = tokenizerConfig?.add_prefix_space;
  if (arch === 'llama' && typeof addPrefixSpace === 'boolean') {
    out.set('tokenizer.ggml.add_space_prefix', bool(addPrefixSpace));
  }

  if (tokenizerKind(tok) === 'llama') {
    const vocab = sentencepieceVocab(tok, vocabSize);
    out.set('tokenizer.ggml.model', string('llama'));
    out.set('tokenizer.ggml.pre', string('default'));
    out.set('tokenizer.ggml.tokens', strings(vocab.tokens));
    out.set('tokenizer.ggml.scores', float32s(vocab.scores));
    out.set('tokenizer.ggml.token_type', int32s(vocab.types));
    addSpecialVocab(out, { ...special, nVocab: vocabSize });
    return;
  }
  const vocab = byteLevelVocab(tok, vocabSize);
  out.set('tokenizer.ggml.model', string('gpt2'));
  out.set('tokenizer.ggml.pre', string((await identifyPreTokenizer(tok)).name));
  out.set('tokenizer.ggml.tokens', strings(vocab.tokens));
  out.set('tokenizer.ggml.token_type', int32s(vocab.types));
  const merges = mergesOf(tok);
  if (merges.length > 0) out.set('tokenizer.ggml.merges', strings(merges));
  addSpecialVocab(out, special);
}
