/**
 * bitsandbytes checkpoints as transformers saves them (save_pretrained of a model loaded with BitsAndBytesConfig):
 * reading pre-quantized 4-bit (`*-bnb-4bit`) and 8-bit folders into the GPU's packed layout without requantizing, and
 * writing such a folder from a float model.
 *
 * 4-bit Linear `X` (bitsandbytes nn/modules.py Linear4bit._save_to_state_dict, functional.py QuantState.as_dict):
 *   X.weight                                U8 [(n+1)/2, 1]  codes, element 2k in the high nibble (quant_storage
 *                                                            other than uint8 is the same bytes viewed as that dtype)
 *   X.weight.absmax                         U8 [blocks] with double quantization, else F32 [blocks]
 *   X.weight.quant_map                      F32 [16]
 *   X.weight.nested_absmax                  F32 [ceil(blocks/nested_blocksize)]   (double quantization)
 *   X.weight.nested_quant_map               F32 [256]                            (double quantization)
 *   X.weight.quant_state.bitsandbytes__nf4  U8, the UTF-8 of json.dumps({quant_type, blocksize, dtype, shape
 *                                           [, nested_blocksize, nested_dtype, nested_offset]}) (or __fp4)
 * 8-bit Linear `X` (Linear8bitLt._save_to_state_dict): X.weight I8 [out, in], X.SCB F32 [out], X.weight_format U8 []
 * (0: row-major, the only format bitsandbytes still loads).
 * Only the Linear layers of the transformer blocks are quantized (transformers skips the lm_head and tied output
 * embeddings; embeddings and norms are not Linear); biases stay as they were. GPT-2's Conv1D weights [in, out] are
 * transposed to [out, in] before quantizing, and are stored that way.
 */
import { transpose } from '../util/linalg';
import { parseConfig, validateCheckpoint } from '../model/config';
import {
  loadTensor,
  openCheckpoint,
  safetensorsChunks,
  type Dtype,
  type RawTensor,
  type TensorInfo,
  type WeightStore,
} from '../model/formats/safetensors';
import { decodeUtf8, type DirSource } from '../model/formats/source';
import { allLinears } from '../model/layout';
import { BLOCKSIZES_4BIT, codebook4, quantize4bit, type Bnb4bitQuantized, type QuantType4 } from './bnb4';
import { quantizeInt8Rows } from './int8';
import { packLayout, type Codebook4Parts, type Int8RowsParts, type OutRounding, type QuantParts } from './layout';
import { dumpsPythonJson, parsePythonJson, PyFloat, type PyJson } from './python-float';

/** The dtypes bitsandbytes quantizes from, as its quant_state names them (str(torch.dtype) less "torch."). */
export type TorchDtype = 'float32' | 'bfloat16' | 'float16';

const DTYPE_OF: Partial<Record<Dtype, TorchDtype>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };
const ROUNDING_OF: Record<TorchDtype, OutRounding> = { float32: 'f32', bfloat16: 'bf16', float16: 'f16' };
const TORCH_DTYPES = Object.keys(ROUNDING_OF) as TorchDtype[];

/** The quantized formats this module reads and writes. */
export type BnbFormat = QuantType4 | 'int8';
export const BNB_FORMATS: readonly BnbFormat[] = ['nf4', 'fp4', 'int8'];

// ---------------------------------------------------------------------------------------------
// quant_state and quantization_config

export interface QuantState4 {
  quantType: QuantType4;
  blocksize: number;
  /** The weight's dtype when it was quantized. */
  dtype: TorchDtype;
  /** The weight's shape, [out, in] for a Linear. */
  shape: number[];
  /** Double quantization: the nested block size and the float32 offset (the mean of the absmax values). */
  nested?: { blocksize: number; offset: number };
}

/** `quant_state.bitsandbytes__<type>`: the key suffix of the packed quant state. */
export const quantStateKey = (quantType: QuantType4) => `quant_state.bitsandbytes__${quantType}`;

/**
 * The packed quant state's text: Python's json.dumps (', ' and ': ' separators) of QuantState.as_dict's non-tensor
 * items in their order; nested_offset is the float32 offset's Python repr.
 */
export function quantStateJson(s: QuantState4): string {
  const dict: { [key: string]: PyJson } = {
    quant_type: s.quantType,
    blocksize: s.blocksize,
    dtype: s.dtype,
    shape: s.shape,
  };
  if (s.nested) {
    dict.nested_blocksize = s.nested.blocksize;
    dict.nested_dtype = 'float32';
    dict.nested_offset = new PyFloat(Math.fround(s.nested.offset));
  }
  return dumpsPythonJson(dict);
}

export function quantStateBytes(s: QuantState4): Uint8Array {
  return new TextEncoder().encode(quantStateJson(s));
}

export interface BnbConfigOptions {
  to: BnbFormat;
  /** 4-bit: bnb_4bit_use_double_quant (default true). */
  doubleQuant?: boolean;
  /** 4-bit: bnb_4bit_compute_dtype (default float32, BitsAndBytesConfig's default). */
  computeDtype?: TorchDtype;
}

/**
 * config.json's `quantization_config` as transformers writes it: BitsAndBytesConfig.to_dict(), keys in its order
 * (config.json itself is written with sorted keys). 8-bit keeps the 4-bit fields at their defaults.
 */
export function bnbQuantizationConfig(options: BnbConfigOptions): { [key: string]: PyJson } {
  const four = options.to !== 'int8';
  return {
    quant_method: 'bitsandbytes',
    _load_in_8bit: !four,
    _load_in_4bit: four,
    llm_int8_threshold: new PyFloat(6),
    llm_int8_skip_modules: null,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    bnb_4bit_quant_type: four ? options.to : 'fp4',
    bnb_4bit_use_double_quant: four ? options.doubleQuant !== false : false,
    bnb_4bit_compute_dtype: four ? (options.computeDtype ?? 'float32') : 'float32',
    bnb_4bit_quant_storage: 'uint8',
    load_in_4bit: four,
    load_in_8bit: !four,
  };
}

/** What a checkpoint's quantization_config says. */
export interface BnbCheckpointConfig {
  bits: 4 | 8;
  /** 4-bit: bnb_4bit_quant_type (each weight's quant_state is what counts). */
  quantType: QuantType4 | null;
  doubleQuant: boolean;
  computeDtype: string | null;
  /** llm_int8_skip_modules: modules left unquantized, besides those transformers skips itself. */
  skipModules: string[] | null;
}

const SUPPORTED_CHECKPOINTS =
  'supported: bitsandbytes checkpoints (quant_method "bitsandbytes") in 4-bit (nf4 or fp4, with or without double ' +
  'quantization) or 8-bit (LLM.int8(), row-major)';

/** Reads config.json's quantization_config (the value of that key); errors name the file and say what is supported. */
export function parseBnbQuantizationConfig(quantizationConfig: unknown, file = 'config.json'): BnbCheckpointConfig {
  const where = `${file}: quantization_config`;
  if (quantizationConfig === null || typeof quantizationConfig !== 'object' || Array.isArray(quantizationConfig)) {
    throw new Error(`${where} must be an object; ${SUPPORTED_CHECKPOINTS}`);
  }
  const q = quantizationConfig as Record<string, unknown>;
  if (q.quant_method !== 'bitsandbytes') {
    throw new Error(
      `${where}.quant_method ${JSON.stringify(q.quant_method)} is not supported; ${SUPPORTED_CHECKPOINTS}`,
    );
  }
  const four = q.load_in_4bit === true || q._load_in_4bit === true;
  const eight = q.load_in_8bit === true || q._load_in_8bit === true;
  if (four === eight) {
    throw new Error(
      `${where} must set exactly one of load_in_4bit and load_in_8bit (it sets ${four ? 'both' : 'neither'}); ${SUPPORTED_CHECKPOINTS}`,
    );
  }
  const quantType = q.bnb_4bit_quant_type ?? 'fp4';
  if (four && quantType !== 'nf4' && quantType !== 'fp4') {
    throw new Error(`${where}.bnb_4bit_quant_type ${JSON.stringify(quantType)} is not supported; expected nf4 or fp4`);
  }
  if (eight && q.llm_int8_has_fp16_weight === true) {
    throw new Error(
      `${where}.llm_int8_has_fp16_weight is true: the weights are not stored quantized; ${SUPPORTED_CHECKPOINTS}`,
    );
  }
  const skip = q.llm_int8_skip_modules;
  return {
    bits: four ? 4 : 8,
    quantType: four ? (quantType as QuantType4) : null,
    doubleQuant: four && q.bnb_4bit_use_double_quant === true,
    computeDtype: typeof q.bnb_4bit_compute_dtype === 'string' ? q.bnb_4bit_compute_dtype : null,
    skipModules: Array.isArray(skip) ? skip.filter((s): s is string => typeof s === 'string') : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Tensors of one quantized weight

function f32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return out;
}

function f32FromBytes(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The tensors bitsandbytes saves for a 4-bit weight `weightName` (e.g. model.layers.0.self_attn.q_proj.weight). */
export function bnb4bitTensors(
  weightName: string,
  q: Bnb4bitQuantized,
  shape: number[],
  dtype: TorchDtype,
): RawTensor[] {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== q.n)
    throw new Error(`${weightName}: shape [${shape.join(', ')}] has ${n} values, the quantized tensor ${q.n}`);
  const blocks = Math.ceil(q.n / q.blocksize);
  const out: RawTensor[] = [
    { name: weightName, dtype: 'U8', shape: [q.codes.length, 1], bytes: q.codes },
    {
      name: `${weightName}.absmax`,
      dtype: q.nested ? 'U8' : 'F32',
      shape: [blocks],
      bytes: q.absmax instanceof Uint8Array ? q.absmax : f32Bytes(q.absmax),
    },
    { name: `${weightName}.quant_map`, dtype: 'F32', shape: [16], bytes: f32Bytes(q.map) },
  ];
  if (q.nested) {
    out.push(
      {
        name: `${weightName}.nested_absmax`,
        dtype: 'F32',
        shape: [q.nested.absmax.length],
        bytes: f32Bytes(q.nested.absmax),
      },
      { name: `${weightName}.nested_quant_map`, dtype: 'F32', shape: [256], bytes: f32Bytes(q.nested.map) },
    );
  }
  const state = quantStateBytes({
    quantType: q.quantType,
    blocksize: q.blocksize,
    dtype,
    shape,
    nested: q.nested ? { blocksize: q.nested.blocksize, offset: q.nested.offset } : undefined,
  });
  out.push({ name: `${weightName}.${quantStateKey(q.quantType)}`, dtype: 'U8', shape: [state.length], bytes: state });
  return out;
}

/** The tensors bitsandbytes saves for an 8-bit weight `weightName` (its module's SCB and weight_format beside it). */
export function bnbInt8Tensors(weightName: string, p: Int8RowsParts): RawTensor[] {
  const prefix = moduleOf(weightName);
  return [
    {
      name: weightName,
      dtype: 'I8',
      shape: [p.rows, p.cols],
      bytes: new Uint8Array(p.codes.buffer, p.codes.byteOffset, p.codes.byteLength),
    },
    { name: `${prefix}SCB`, dtype: 'F32', shape: [p.rows], bytes: f32Bytes(p.scale) },
    { name: `${prefix}weight_format`, dtype: 'U8', shape: [], bytes: new Uint8Array([0]) },
  ];
}

/** "a.b.weight" -> "a.b." (the module's prefix). */
function moduleOf(weightName: string): string {
  if (!weightName.endsWith('weight')) throw new Error(`${weightName} is not a weight tensor name`);
  return weightName.slice(0, -'weight'.length);
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The tensors of a checkpoint (a WeightStore: one file or shards). */
export type TensorStore = Pick<WeightStore, 'name' | 'names' | 'info'>;

export interface BnbWeightRef {
  /** The weight tensor's name. */
  weight: string;
  bits: 4 | 8;
}

/** Every quantized weight in a checkpoint: those with a packed 4-bit quant state, and 8-bit ones with an SCB. */
export function bnbQuantizedWeights(store: TensorStore): BnbWeightRef[] {
  const out: BnbWeightRef[] = [];
  const names = new Set(store.names());
  for (const name of names) {
    const four = /^(.*\.weight)\.quant_state\.bitsandbytes__[^.]+$/.exec(name);
    if (four) {
      if (!out.some((r) => r.weight === four[1])) out.push({ weight: four[1], bits: 4 });
    } else if (name.endsWith('.SCB') && names.has(`${name.slice(0, -3)}weight`)) {
      out.push({ weight: `${name.slice(0, -3)}weight`, bits: 8 });
    }
  }
  return out.sort((a, b) => (a.weight < b.weight ? -1 : a.weight > b.weight ? 1 : 0));
}

export interface BnbLoadedWeight {
  name: string;
  format: BnbFormat;
  /** The weight's shape: the quant state's (4-bit) or the stored [out, in] (8-bit). */
  shape: number[];
  /** The dtype the weight was quantized from (4-bit's quant state); null for 8-bit, which does not record it. */
  dtype: TorchDtype | null;
  parts: QuantParts;
  /** packLayout(parts): the words the GPU reads. */
  layout: Uint32Array;
  warnings: string[];
}

export interface ReadBnbOptions {
  /** 8-bit checkpoints do not record the dtype: the precision dequantized values round to (default f32). */
  int8Rounding?: OutRounding;
  /**
   * GPT-2's Conv1D weights (logically [in, out]) are stored quantized as [out, in]: their layouts say so
   * (transposedFrom). True for every weight read, or a test of the weight's name.
   */
  conv1d?: boolean | ((weightName: string) => boolean);
}

/** The parts, marked transposed when the weight is a Conv1D one (stored [out, in], logically [in, out]). */
function withOrientation(parts: QuantParts, shape: number[], weightName: string, options: ReadBnbOptions): QuantParts {
  const conv1d = typeof options.conv1d === 'function' ? options.conv1d(weightName) : options.conv1d === true;
  if (!conv1d) return parts;
  if (shape.length !== 2)
    throw new Error(`${weightName}: a Conv1D weight must be 2-D, its quant state says [${shape.join(', ')}]`);
  return { ...parts, transposedFrom: { rows: shape[1], cols: shape[0] } };
}

/** Reads one quantized weight's tensors into the packed layout, the stored bytes used as they are. */
export async function readBnbWeight(
  store: TensorStore,
  weightName: string,
  options: ReadBnbOptions = {},
): Promise<BnbLoadedWeight> {
  const prefix = `${weightName}.quant_state.bitsandbytes__`;
  const states = store.names().filter((n) => n.startsWith(prefix));
  if (states.length > 0) return readBnb4bitWeight(store, weightName, states, options);
  if (store.info(`${moduleOf(weightName)}SCB`)) return readInt8Weight(store, weightName, options);
  const info = store.info(weightName);
  throw new Error(
    `${info?.source.name ?? store.name}: ${weightName} is not a bitsandbytes-quantized weight (no ` +
      `${weightName}.${quantStateKey('nf4')} or .${quantStateKey('fp4')}, and no ${moduleOf(weightName)}SCB)`,
  );
}

/**
 * Every quantized weight of a bitsandbytes checkpoint, by weight name, after checking config.json's
 * quantization_config (the value of that key). Reads 4-bit (nf4/fp4, with or without double quantization) and 8-bit
 * weights; any other quantization is an error saying what is supported.
 */
export async function readBnb4bit(
  quantizationConfig: unknown,
  store: TensorStore,
  options: ReadBnbOptions & { file?: string } = {},
): Promise<Map<string, BnbLoadedWeight>> {
  const config = parseBnbQuantizationConfig(quantizationConfig, options.file);
  const refs = bnbQuantizedWeights(store);
  if (refs.length === 0) {
    throw new Error(
      `${store.name}: quantization_config says bitsandbytes ${config.bits}-bit, but no tensor has a quant state ` +
        `(*.weight.${quantStateKey('nf4')}) or an SCB`,
    );
  }
  const wrong = refs.find((r) => r.bits !== config.bits);
  if (wrong) {
    throw new Error(
      `${store.info(wrong.weight)?.source.name ?? store.name}: ${wrong.weight} is ${wrong.bits}-bit, but ` +
        `quantization_config says ${config.bits}-bit`,
    );
  }
  const out = new Map<string, BnbLoadedWeight>();
  for (const r of refs) out.set(r.weight, await readBnbWeight(store, r.weight, options));
  return out;
}

/** A companion tensor with its dtype and shape checked; errors name the file and the tensor. */
function companion(
  store: TensorStore,
  name: string,
  dtypes: Dtype[],
  shape: number[] | null,
  missing: string[],
): TensorInfo | null {
  const info = store.info(name);
  if (!info) {
    missing.push(name);
    return null;
  }
  if (!dtypes.includes(info.dtype)) {
    throw new Error(`${info.source.name}: ${name} has dtype ${info.dtype}, expected ${dtypes.join(' or ')}`);
  }
  if (shape && (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(
      `${info.source.name}: ${name} has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}]`,
    );
  }
  return info;
}

const readBytes = (info: TensorInfo) => info.source.read(info.begin, info.end - info.begin);

async function readBnb4bitWeight(
  store: TensorStore,
  weightName: string,
  stateNames: string[],
  options: ReadBnbOptions,
): Promise<BnbLoadedWeight> {
  const stateInfo = store.info(stateNames[0])!;
  const file = stateInfo.source.name;
  const fail = (message: string): never => {
    throw new Error(`${file}: ${weightName}: ${message}`);
  };
  if (stateNames.length > 1) fail(`several quant states (${stateNames.join(', ')}); expected one`);
  const suffix = stateNames[0].slice(`${weightName}.quant_state.bitsandbytes__`.length);
  if (suffix !== 'nf4' && suffix !== 'fp4') {
    fail(`quant type "${suffix}" (${stateNames[0]}) is not supported; bitsandbytes 4-bit weights are nf4 or fp4`);
  }
  if (stateInfo.dtype !== 'U8' || stateInfo.shape.length !== 1) {
    fail(
      `${stateNames[0]} must be a 1-D U8 tensor (JSON bytes), got ${stateInfo.dtype} [${stateInfo.shape.join(', ')}]`,
    );
  }
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(decodeUtf8(await readBytes(stateInfo), `${file}: ${stateNames[0]}`));
  } catch (e) {
    return fail(`${stateNames[0]} is not JSON (${(e as Error).message})`);
  }
  if (state === null || typeof state !== 'object' || Array.isArray(state))
    fail(`${stateNames[0]} is not a JSON object`);
  const quantType = state.quant_type;
  if (quantType !== suffix)
    fail(`quant_state says quant_type ${JSON.stringify(quantType)} under the key ${stateNames[0]}`);
  const blocksize = state.blocksize;
  if (typeof blocksize !== 'number' || !(BLOCKSIZES_4BIT as readonly number[]).includes(blocksize)) {
    fail(
      `quant_state blocksize ${JSON.stringify(blocksize)} is not supported; bitsandbytes uses ${BLOCKSIZES_4BIT.join(', ')}`,
    );
  }
  const dtype = state.dtype;
  if (typeof dtype !== 'string' || !TORCH_DTYPES.includes(dtype as TorchDtype)) {
    fail(`quant_state dtype ${JSON.stringify(dtype)} is not supported; expected ${TORCH_DTYPES.join(', ')}`);
  }
  const shape = state.shape;
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    return fail(`quant_state shape ${JSON.stringify(shape)} is not a list of positive integers`);
  }
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  const blocks = Math.ceil(n / (blocksize as number));
  const nestedState = state.nested_absmax !== undefined || state.nested_blocksize !== undefined;
  const missing: string[] = [];

  // The codes: (n + 1) / 2 bytes in any storage dtype (quant_storage views the same bytes), one column.
  const weightInfo = store.info(weightName);
  if (!weightInfo) missing.push(weightName);
  else {
    const bytes = weightInfo.end - weightInfo.begin;
    const rows = weightInfo.shape[0];
    if (bytes !== Math.ceil(n / 2) || weightInfo.shape.length !== 2 || (weightInfo.shape[1] !== 1 && rows !== 1)) {
      fail(
        `holds ${bytes} bytes as ${weightInfo.dtype} [${weightInfo.shape.join(', ')}], but the quant state's shape ` +
          `[${(shape as number[]).join(', ')}] needs ${Math.ceil(n / 2)} bytes of 4-bit codes as [${Math.ceil(n / 2)}, 1]`,
      );
    }
  }
  const nestedBlocksize = state.nested_blocksize;
  if (nestedState) {
    if (typeof nestedBlocksize !== 'number' || !Number.isSafeInteger(nestedBlocksize) || nestedBlocksize <= 0) {
      fail(`quant_state nested_blocksize ${JSON.stringify(nestedBlocksize)} is not a positive integer`);
    }
    if (state.nested_dtype !== 'float32') {
      fail(
        `quant_state nested_dtype ${JSON.stringify(state.nested_dtype)} is not supported; bitsandbytes uses float32`,
      );
    }
    if (typeof state.nested_offset !== 'number' || !Number.isFinite(state.nested_offset)) {
      fail(`quant_state nested_offset ${JSON.stringify(state.nested_offset)} is not a finite number`);
    }
  }
  const absmaxInfo = store.info(`${weightName}.absmax`);
  const absmaxShape = absmaxInfo && absmaxInfo.shape.length === 1 ? absmaxInfo.shape[0] : null;
  if (absmaxInfo && absmaxShape !== blocks) {
    fail(
      `${weightName}.absmax has ${absmaxInfo.shape.length === 1 ? absmaxShape : `shape [${absmaxInfo.shape.join(', ')}]`} ` +
        `values, but ${n} values in blocks of ${blocksize} (the quant state's blocksize) make ${blocks} blocks`,
    );
  }
  const absmax = companion(store, `${weightName}.absmax`, nestedState ? ['U8'] : ['F32'], [blocks], missing);
  const map = companion(store, `${weightName}.quant_map`, ['F32'], [16], missing);
  const nestedAbsmax = nestedState
    ? companion(
        store,
        `${weightName}.nested_absmax`,
        ['F32'],
        [Math.ceil(blocks / (nestedBlocksize as number))],
        missing,
      )
    : null;
  const nestedMap = nestedState ? companion(store, `${weightName}.nested_quant_map`, ['F32'], [256], missing) : null;
  if (missing.length > 0) {
    fail(`missing ${missing.join(', ')} (a bitsandbytes 4-bit weight needs all of its quant state tensors)`);
  }

  const warnings: string[] = [];
  const storedMap = f32FromBytes(await readBytes(map!));
  const code = codebook4(quantType as QuantType4);
  if (storedMap.some((v, i) => v !== code[i])) {
    warnings.push(
      `${file}: ${weightName}.quant_map differs from bitsandbytes' ${quantType} codebook; bitsandbytes dequantizes ` +
        `with its built-in codebook, and so does this reader`,
    );
  }
  const codebookParts: Codebook4Parts = {
    kind: 'codebook4',
    n,
    codes: await readBytes(weightInfo!),
    blocksize: blocksize as number,
    absmax: nestedState ? await readBytes(absmax!) : f32FromBytes(await readBytes(absmax!)),
    nested: nestedState
      ? {
          absmax: f32FromBytes(await readBytes(nestedAbsmax!)),
          map: f32FromBytes(await readBytes(nestedMap!)),
          blocksize: nestedBlocksize as number,
          offset: Math.fround(state.nested_offset as number),
        }
      : undefined,
    map: Float32Array.from(code),
    rounding: ROUNDING_OF[dtype as TorchDtype],
  };
  const parts = withOrientation(codebookParts, shape as number[], weightName, options);
  return {
    name: weightName,
    format: quantType as QuantType4,
    shape: shape as number[],
    dtype: dtype as TorchDtype,
    parts,
    layout: packLayout(parts),
    warnings,
  };
}

async function readInt8Weight(
  store: TensorStore,
  weightName: string,
  options: ReadBnbOptions,
): Promise<BnbLoadedWeight> {
  const prefix = moduleOf(weightName);
  const missing: string[] = [];
  const weight = companion(store, weightName, ['I8'], null, missing);
  if (!weight) throw new Error(`${store.name}: ${weightName} is missing (its ${prefix}SCB is there)`);
  const file = weight.source.name;
  if (weight.shape.length !== 2) {
    throw new Error(`${file}: ${weightName} has shape [${weight.shape.join(', ')}]; an 8-bit weight is [out, in]`);
  }
  const [rows, cols] = weight.shape;
  const scb = companion(store, `${prefix}SCB`, ['F32'], [rows], missing)!;
  const format = store.info(`${prefix}weight_format`);
  if (format) {
    const value = format.end - format.begin === 1 ? (await readBytes(format))[0] : -1;
    if (format.dtype !== 'U8' || value !== 0) {
      throw new Error(
        `${format.source.name}: ${prefix}weight_format is ${value === -1 ? `${format.dtype} [${format.shape.join(', ')}]` : value}; ` +
          `only 0 (row-major) is supported, as in bitsandbytes`,
      );
    }
  }
  const bytes = await readBytes(weight);
  const int8Parts: Int8RowsParts = {
    kind: 'int8Rows',
    rows,
    cols,
    codes: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    scale: f32FromBytes(await readBytes(scb)),
    rounding: options.int8Rounding ?? 'f32',
  };
  const parts = withOrientation(int8Parts, [rows, cols], weightName, options);
  return {
    name: weightName,
    format: 'int8',
    shape: [rows, cols],
    dtype: null,
    parts,
    layout: packLayout(parts),
    warnings: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface QuantizeFolderOptions {
  to: BnbFormat;
  /** 4-bit: values per absmax block (default 64). */
  blocksize?: number;
  /** 4-bit: double quantization (default true). */
  doubleQuant?: boolean;
  /** 4-bit: bnb_4bit_compute_dtype for config.json (default: the checkpoint's dtype). */
  computeDtype?: TorchDtype;
  /** Called after each tensor is written (quantized or copied). */
  onTensor?: (name: string, done: number, total: number) => void;
}

export interface QuantizedFolder {
  /** config.json and the files copied as they are (tokenizer, generation config), by file name. */
  files: Record<string, Uint8Array | string>;
  /** model.safetensors, as pieces to write one after another. */
  weights: Uint8Array[];
  /** Names of the weights quantized (as written). */
  quantized: string[];
  /** Names of the tensors copied as they were stored (as written). */
  kept: string[];
  /** model.safetensors' size in bytes. */
  bytes: number;
}

/** Files copied to the quantized folder as they are (when present): what save_pretrained writes beside the weights. */
export const COPIED_FILES = [
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
  'chat_template.json',
];

/**
 * Quantizes a Hugging Face model folder into a bitsandbytes folder transformers loads: every Linear weight of the
 * transformer blocks quantized (one tensor in memory as f32 at a time), everything else copied in its stored dtype,
 * config.json with quantization_config, tokenizer files and generation_config.json copied. GPT-2 tensors are written
 * under GPT2LMHeadModel's `transformer.` prefix, as save_pretrained writes them.
 */
export async function quantizeModelFolder(dir: DirSource, options: QuantizeFolderOptions): Promise<QuantizedFolder> {
  if (!BNB_FORMATS.includes(options.to)) {
    throw new Error(`quantize: format "${options.to}" is not supported; supported: ${BNB_FORMATS.join(', ')}`);
  }
  const blocksize = options.blocksize ?? 64;
  if (options.to !== 'int8' && !(BLOCKSIZES_4BIT as readonly number[]).includes(blocksize)) {
    throw new Error(
      `quantize: blocksize ${blocksize} is not supported; bitsandbytes supports ${BLOCKSIZES_4BIT.join(', ')}`,
    );
  }
  if (!dir.list().includes('config.json')) {
    throw new Error(
      `${dir.name} has no config.json: quantize needs a Hugging Face model folder (config.json + safetensors)`,
    );
  }
  const configText = await dir.text('config.json');
  const configFile = `${dir.name}/config.json`;
  const config = parsePythonJson(configText, configFile);
  if (config === null || typeof config !== 'object' || Array.isArray(config) || config instanceof PyFloat) {
    throw new Error(`${configFile} must be a JSON object`);
  }
  if (config.quantization_config !== undefined && config.quantization_config !== null) {
    throw new Error(`${configFile} already has a quantization_config: the model is quantized already`);
  }
  const spec = parseConfig(JSON.parse(configText), configFile);
  const store = await openCheckpoint(dir);
  const resolved = validateCheckpoint(spec, store);

  const linears = allLinears(spec);
  const quantizedNames = new Map(linears.map((l) => [resolved.get(l.weight) ?? l.weight, l]));
  const dtypes = new Set(linears.map((l) => store.info(resolved.get(l.weight)!)!.dtype));
  const modelDtype = dtypes.size === 1 ? DTYPE_OF[[...dtypes][0]] : undefined;
  const outName = (name: string) =>
    spec.family === 'gpt2' && !name.startsWith('transformer.') && !name.startsWith('lm_head.')
      ? `transformer.${name}`
      : name;

  const tensors: RawTensor[] = [];
  const quantized: string[] = [];
  const kept: string[] = [];
  const names = store.names();
  let done = 0;
  for (const name of names) {
    const info = store.info(name)!;
    const linear = quantizedNames.get(name);
    const target = outName(name);
    if (!linear) {
      tensors.push({ name: target, dtype: info.dtype, shape: [...info.shape], bytes: await readBytes(info) });
      kept.push(target);
    } else {
      const stored = await loadTensor(info);
      const data = linear.conv1d ? transpose(stored, linear.in, linear.out) : stored;
      const dtype = DTYPE_OF[info.dtype]!;
      const what = `${store.name}: ${name}`;
      if (options.to === 'int8') {
        tensors.push(
          ...bnbInt8Tensors(
            target,
            quantizeInt8Rows(data, linear.out, linear.in, { rounding: ROUNDING_OF[dtype], what }),
          ),
        );
      } else {
        const q = quantize4bit(data, {
          blocksize,
          quantType: options.to,
          doubleQuant: options.doubleQuant !== false,
          rounding: ROUNDING_OF[dtype],
          what,
        });
        tensors.push(...bnb4bitTensors(target, q, [linear.out, linear.in], dtype));
      }
      quantized.push(target);
    }
    options.onTensor?.(target, ++done, names.length);
  }

  const quantizationConfig = bnbQuantizationConfig({
    to: options.to,
    doubleQuant: options.doubleQuant,
    computeDtype: options.computeDtype ?? modelDtype ?? 'float32',
  });
  const configOut = { ...config, quantization_config: quantizationConfig };
  const files: Record<string, Uint8Array | string> = {
    'config.json': `${dumpsPythonJson(configOut, { indent: 2, sortKeys: true })}\n`,
  };
  for (const file of COPIED_FILES) {
    const src = dir.file(file);
    if (src) files[file] = await src.read(0, src.size);
  }
  const weights = safetensorsChunks(tensors);
  return { files, weights, quantized, kept, bytes: weights.reduce((a, c) => a + c.byteLength, 0) };
}
