/**
 * Opens a model folder, in the browser or in Node: a Hugging Face folder (config.json, *.safetensors,
 * tokenizer.json) or a llama2.c checkpoint (.bin version 0 plus its tokenizer .bin).
 */
import { canonicalLoader, parseConfig, type ModelSpec } from '../model/config';
import { readLlama2c, readLlama2cTokenizer } from '../model/formats/llama2c';
import { openCheckpoint, type WeightStore } from '../model/formats/safetensors';
import type { ByteSource, DirSource } from '../model/formats/source';
import type { TensorSource } from '../model/weights';
import { llama2cToHfTokenizer } from '../tokenizer/llama2c-to-hf';
import { loadTokenizer, type HfTextTokenizer } from '../tokenizer/tokenizer';

export interface LoadedModel {
  spec: ModelSpec;
  source: TensorSource;
  tokenizer: HfTextTokenizer;
  /** For adapter_config.json base_model_name_or_path. */
  name: string;
  format: 'huggingface' | 'llama2c';
  warnings: string[];
}

export async function loadModelDir(dir: DirSource): Promise<LoadedModel> {
  const files = dir.list();
  if (files.includes('config.json')) return loadHf(dir);
  const bins = files.filter((f) => f.endsWith('.bin'));
  const tokBin = bins.find((f) => /^tok.*\.bin$/.test(f) || f === 'tokenizer.bin');
  const modelBin = bins.find((f) => f !== tokBin);
  if (modelBin && tokBin) return loadLlama2c(dir.file(modelBin)!, await readAll(dir.file(tokBin)!), dir.name);
  throw new Error(
    `${dir.name}: not a model folder. Expected a Hugging Face folder (config.json, model.safetensors or ` +
      `model.safetensors.index.json with its shards, tokenizer.json) or a llama2.c checkpoint (model .bin + tokenizer .bin). ` +
      `Found: ${files.length ? files.join(', ') : 'no files'}.`,
  );
}

async function loadHf(dir: DirSource): Promise<LoadedModel> {
  const spec = parseConfig(parseJson(await dir.text('config.json'), `${dir.name}/config.json`), `${dir.name}/config.json`);
  const files = dir.list();
  if (!files.some((f) => f.endsWith('.safetensors'))) {
    throw new Error(`${dir.name} has no *.safetensors weights (only safetensors checkpoints are supported; PyTorch .bin files are not).`);
  }
  const store: WeightStore = await openCheckpoint(dir);
  const source = canonicalLoader(spec, store);
  if (!files.includes('tokenizer.json')) {
    throw new Error(`${dir.name} has no tokenizer.json (the fast-tokenizer file Hugging Face saves beside the model).`);
  }
  const tokenizerJson = parseJson(await dir.text('tokenizer.json'), `${dir.name}/tokenizer.json`);
  const tokenizerConfig = files.includes('tokenizer_config.json')
    ? parseJson(await dir.text('tokenizer_config.json'), `${dir.name}/tokenizer_config.json`)
    : undefined;
  const tokenizer = withSpecialTokens(loadTokenizer(tokenizerJson as object, tokenizerConfig as object | undefined), spec);
  checkVocabulary(spec, tokenizer, `${dir.name}/tokenizer.json`);
  return { spec, source, tokenizer, name: spec.sourceName || dir.name, format: 'huggingface', warnings: [...spec.warnings] };
}

async function loadLlama2c(model: ByteSource, tokenizerBin: Uint8Array, name: string): Promise<LoadedModel> {
  const { spec, tensors } = await readLlama2c(model, name);
  const tok = readLlama2cTokenizer(tokenizerBin, 'tokenizer .bin', spec.vocabSize);
  const tokenizer = loadTokenizer(llama2cToHfTokenizer(tok), { add_bos_token: true, bos_token: '<s>', eos_token: '</s>' });
  checkVocabulary(spec, tokenizer, `${name} tokenizer`);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const source: TensorSource = {
    load: async (n) => {
      const t = byName.get(n);
      if (!t) throw new Error(`${model.name} has no tensor ${n}`);
      return t;
    },
  };
  return { spec, source, tokenizer, name, format: 'llama2c', warnings: [...spec.warnings] };
}

/** The config's BOS/EOS win over the tokenizer's guesses (METHODS: "BOS/EOS as the model's config says"). */
function withSpecialTokens(tok: HfTextTokenizer, spec: ModelSpec): HfTextTokenizer {
  const bosId = spec.bosTokenId ?? tok.bosId;
  const eosId = spec.eosTokenId ?? tok.eosId;
  return Object.assign(Object.create(Object.getPrototypeOf(tok)), tok, { bosId, eosId, addBos: tok.addBos && bosId !== null });
}

function checkVocabulary(spec: ModelSpec, tok: HfTextTokenizer, where: string): void {
  if (tok.vocabSize > spec.vocabSize) {
    throw new Error(
      `${where}: the tokenizer has ${tok.vocabSize} tokens but the model's embedding has only ${spec.vocabSize} rows ` +
        `(vocab_size in config.json); token ids past ${spec.vocabSize - 1} would have no embedding. Is this the model's own tokenizer?`,
    );
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where} is not valid JSON: ${(e as Error).message}`);
  }
}

async function readAll(src: ByteSource): Promise<Uint8Array> {
  return src.read(0, src.size);
}
