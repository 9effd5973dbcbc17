/**
 * Opens a model folder, in the browser or in Node: a Hugging Face folder (config.json, *.safetensors,
 * tokenizer.json) or a llama2.c checkpoint (.bin version 0 plus its tokenizer .bin).
 * tokenizer.json is optional, as it is for transformers: without it only pre-tokenized {"input_ids"} data can be
 * used, and whatever must encode or decode text fails saying which file is missing and why it is needed.
 */
import {
  fitDataset,
  tokenizeDataset,
  type DatasetFile,
  type LoadedDataset,
  type LoadOptions,
  type TokenizedDataset,
  type TokenizeOptions,
} from '../data/index';
import { canonicalLoader, parseConfig, type ModelSpec } from '../model/config';
import { readLlama2c, readLlama2cTokenizer } from '../model/formats/llama2c';
import { openCheckpoint, type WeightStore } from '../model/formats/safetensors';
import type { ByteSource, DirSource } from '../model/formats/source';
import type { TensorSource } from '../model/weights';
import { bnbSource } from '../quant/bnb-source';
import { llama2cToHfTokenizer } from '../tokenizer/llama2c-to-hf';
import { loadTokenizer, type HfTextTokenizer } from '../tokenizer/tokenizer';

export interface LoadedModel {
  spec: ModelSpec;
  source: TensorSource;
  /**
   * The model's tokenizer. Without tokenizer.json (see noTokenizer): a stand-in that knows the vocabulary size and
   * config.json's BOS/EOS ids and throws NoTokenizerError from encode and decode.
   */
  tokenizer: HfTextTokenizer;
  /** Null, or what is missing, e.g. "`models/x` has no tokenizer.json" (then only pre-tokenized data works). */
  noTokenizer: string | null;
  /** What the studio and logs call it: the Hub id, else config.json's _name_or_path, the folder, or the model type. */
  name: string;
  /** config.json's `_name_or_path` when it is a Hub id (owner/name): what PEFT's base_model_name_or_path should say. */
  hubId: string | null;
  format: 'huggingface' | 'llama2c';
  warnings: string[];
  /** A pre-quantized checkpoint: what it is, e.g. "4-bit (bitsandbytes NF4, double quantization)". */
  quantized?: string;
}

export async function loadModelDir(dir: DirSource): Promise<LoadedModel> {
  const files = dir.list();
  if (files.includes('config.json')) return loadHf(dir);
  const llama2c = llama2cFiles(files);
  if (llama2c) return loadLlama2c(dir.file(llama2c.model)!, await readAll(dir.file(llama2c.tokenizer)!), dir.name);
  throw new Error(
    `${dir.name}: not a model folder. Expected a Hugging Face folder (config.json, model.safetensors or ` +
      `model.safetensors.index.json with its shards, tokenizer.json) or a llama2.c checkpoint (model .bin + tokenizer .bin). ` +
      `Found: ${files.length ? files.join(', ') : 'no files'}.`,
  );
}

/** A llama2.c checkpoint's two files in a folder listing: the tokenizer (tok*.bin, tokenizer.bin) and the model .bin. */
export function llama2cFiles(files: string[]): { model: string; tokenizer: string } | null {
  const bins = files.filter((f) => f.endsWith('.bin'));
  const tokenizer = bins.find((f) => /^tok.*\.bin$/.test(f) || f === 'tokenizer.bin');
  const model = bins.find((f) => f !== tokenizer);
  return model && tokenizer ? { model, tokenizer } : null;
}

async function loadHf(dir: DirSource): Promise<LoadedModel> {
  const configJson = parseJson(await dir.text('config.json'), `${dir.name}/config.json`);
  const spec = parseConfig(configJson, `${dir.name}/config.json`);
  const naming = modelNaming(configJson, dir, spec.modelType);
  const files = dir.list();
  if (!files.some((f) => f.endsWith('.safetensors'))) {
    throw new Error(
      `${dir.name} has no *.safetensors weights (only safetensors checkpoints are supported; PyTorch .bin files are not).`,
    );
  }
  const store: WeightStore = await openCheckpoint(dir);
  // A bitsandbytes checkpoint (e.g. *-bnb-4bit): its weights keep their own codes (quant/bnb-source.ts).
  const quantizationConfig = (configJson as Record<string, unknown>).quantization_config;
  const bnb =
    quantizationConfig === undefined ? null : bnbSource(spec, store, quantizationConfig, `${dir.name}/config.json`);
  const source = bnb?.source ?? canonicalLoader(spec, store);
  const quantized = bnb ? { quantized: bnb.description } : {};
  if (!files.includes('tokenizer.json')) return { ...withoutTokenizer(spec, source, dir, naming), ...quantized };
  const tokenizerJson = parseJson(await dir.text('tokenizer.json'), `${dir.name}/tokenizer.json`);
  const tokenizerConfig = files.includes('tokenizer_config.json')
    ? parseJson(await dir.text('tokenizer_config.json'), `${dir.name}/tokenizer_config.json`)
    : undefined;
  const tokenizer = withSpecialTokens(
    loadTokenizer(tokenizerJson as object, tokenizerConfig as object | undefined),
    spec,
  );
  checkVocabulary(spec, tokenizer, `${dir.name}/tokenizer.json`);
  return {
    spec,
    source,
    tokenizer,
    noTokenizer: null,
    ...naming,
    format: 'huggingface',
    warnings: [...spec.warnings],
    ...quantized,
  };
}

/**
 * `_name_or_path` of the form owner/name is a Hub id, which PEFT and transformers resolve; a local path (what
 * transformers writes after loading from disk) only names the model. Without either, the folder's name, and
 * without a folder (files picked one by one) the model type.
 */
export function modelNaming(
  configJson: unknown,
  dir: Pick<DirSource, 'folder'>,
  modelType: string,
): { name: string; hubId: string | null } {
  const raw = (configJson as Record<string, unknown> | null)?._name_or_path;
  const nameOrPath = typeof raw === 'string' ? raw.trim() : '';
  const hubId = isHubId(nameOrPath) ? nameOrPath : null;
  const pathTail = nameOrPath.split(/[\\/]/).filter(Boolean).pop();
  return { name: hubId ?? pathTail ?? dir.folder ?? modelType, hubId };
}

/** The Hub's repo id shape: owner/name, each of letters, digits, '-', '_' and '.', not a relative or absolute path. */
export function isHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(s) && !s.startsWith('.') && !s.includes('..');
}

/** Thrown where text would have to be encoded or token ids decoded and the model folder has no tokenizer.json. */
export class NoTokenizerError extends Error {}

/** What works without tokenizer.json, appended to every NoTokenizerError. */
const TOKENS_ONLY = 'pre-tokenized {"input_ids"} data works without one';

/**
 * A folder without tokenizer.json (transformers loads those too): the model trains and evaluates on pre-tokenized
 * data. Batches are padded with config.json's eos_token_id, or 0 (padded positions are never targets, so the id does
 * not change the loss), and packed rows are separated by that EOS or by nothing.
 */
function withoutTokenizer(
  spec: ModelSpec,
  source: TensorSource,
  dir: DirSource,
  naming: Pick<LoadedModel, 'name' | 'hubId'>,
): LoadedModel {
  const files = dir.list();
  // A slow tokenizer's files: transformers converts them to tokenizer.json on load and save_pretrained writes it.
  const slow = ['tokenizer.model', 'vocab.json', 'spiece.model'].filter((f) => files.includes(f));
  const hint = slow.length
    ? ` (the folder has ${slow.join(' and ')}: in Python, AutoTokenizer.from_pretrained("${dir.name}").save_pretrained("${dir.name}") writes tokenizer.json)`
    : '';
  const missing = `\`${dir.name}\` has no tokenizer.json${hint}`;
  const fail = (why: string): never => {
    throw new NoTokenizerError(`${missing}: ${why}; ${TOKENS_ONLY}`);
  };
  const tokenizer: HfTextTokenizer = {
    vocabSize: spec.vocabSize,
    bosId: spec.bosTokenId,
    eosId: spec.eosTokenId,
    padId: null,
    addBos: false,
    chatTemplate: null,
    encode: () => fail('text must be tokenized'),
    decode: () => fail('token ids must be decoded to text'),
    tokenToId: () => null,
    idToToken: () => null,
    declared: { bos: false, eos: false },
  };
  const eos = spec.eosTokenId;
  const batching =
    eos !== null
      ? `batches are padded with config.json's eos_token_id ${eos}, which also separates packed examples`
      : 'batches are padded with token 0 (config.json has no eos_token_id) and packed examples have no separator';
  const warnings = [
    ...spec.warnings,
    `${missing}: only pre-tokenized {"input_ids"} data can be used (no text datasets, chat templates, generation or exact match); ` +
      `${batching} (padded positions are never targets, so the padding id does not change the loss).`,
  ];
  return {
    spec,
    source,
    tokenizer,
    noTokenizer: missing,
    ...naming,
    format: 'huggingface',
    warnings,
  };
}

/** The model's tokenizer for something that needs one (`why`: what text is encoded or decoded); a clear error without. */
export function requireTokenizer(model: LoadedModel, why: string): HfTextTokenizer {
  if (model.noTokenizer !== null) throw new NoTokenizerError(`${model.noTokenizer}: ${why}; ${TOKENS_ONLY}`);
  return model.tokenizer;
}

/** What shows examples as text (the studio's dataset preview): without tokenizer.json, the token ids as numbers. */
export function previewTokenizer(model: LoadedModel): HfTextTokenizer {
  if (model.noTokenizer === null) return model.tokenizer;
  return { ...model.tokenizer, decode: (ids) => ids.join(' ') };
}

/**
 * loadDataset with the model's tokenizer; without tokenizer.json a dataset of text fails naming both files:
 * "`<dir>` has no tokenizer.json: `<file>` is text and must be tokenized; pre-tokenized {"input_ids"} data works ...".
 */
export async function loadModelDataset(
  model: LoadedModel,
  file: DatasetFile,
  opts: LoadOptions & TokenizeOptions = {},
): Promise<LoadedDataset> {
  return fitDataset(await tokenizeModelDataset(model, file, opts), model.tokenizer, opts);
}

/** tokenizeDataset (streamed, whole examples) with the model's tokenizer and loadModelDataset's errors. */
export async function tokenizeModelDataset(
  model: LoadedModel,
  file: DatasetFile,
  opts: TokenizeOptions = {},
): Promise<TokenizedDataset> {
  try {
    return await tokenizeDataset(file, model.tokenizer, opts);
  } catch (err) {
    if (
      model.noTokenizer !== null &&
      (err instanceof NoTokenizerError || (err as Error).cause instanceof NoTokenizerError)
    ) {
      throw new NoTokenizerError(
        `${model.noTokenizer}: \`${file.name}\` is text and must be tokenized; ${TOKENS_ONLY}`,
        { cause: err },
      );
    }
    throw err;
  }
}

async function loadLlama2c(model: ByteSource, tokenizerBin: Uint8Array, name: string): Promise<LoadedModel> {
  const { spec, tensors } = await readLlama2c(model, name);
  const tok = readLlama2cTokenizer(tokenizerBin, 'tokenizer .bin', spec.vocabSize);
  const tokenizer = loadTokenizer(llama2cToHfTokenizer(tok), {
    add_bos_token: true,
    bos_token: '<s>',
    eos_token: '</s>',
  });
  checkVocabulary(spec, tokenizer, `${name} tokenizer`);
  const byName = new Map(tensors.map((t) => [t.name, t.data]));
  const source: TensorSource = {
    load: async (n) => {
      const t = byName.get(n);
      if (!t) throw new Error(`${model.name} has no tensor ${n}`);
      return t;
    },
  };
  return {
    spec,
    source,
    tokenizer,
    noTokenizer: null,
    name,
    hubId: null,
    format: 'llama2c',
    warnings: [...spec.warnings],
  };
}

/**
 * BOS and EOS as transformers' tokenizer uses them: tokenizer_config.json's own bos_token/eos_token (and so what
 * tokenization and apply_chat_template see); config.json's ids (the model's generation settings) only fill in
 * what tokenizer_config.json does not declare, before the tokenizer's own guesses.
 */
function withSpecialTokens(tok: HfTextTokenizer, spec: ModelSpec): HfTextTokenizer {
  const bosId = tok.declared.bos ? tok.bosId : (spec.bosTokenId ?? tok.bosId);
  const eosId = tok.declared.eos ? tok.eosId : (spec.eosTokenId ?? tok.eosId);
  return Object.assign(Object.create(Object.getPrototypeOf(tok)), tok, {
    bosId,
    eosId,
    addBos: tok.addBos && bosId !== null,
  });
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
