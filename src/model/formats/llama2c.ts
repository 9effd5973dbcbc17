/**
 * llama2.c checkpoints (legacy version 0) and tokenizer .bin files.
 *
 * Checkpoint: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
 * negative vocab_size means the classifier is not shared with the embedding), then f32 weights, each
 * kind for all layers in turn: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
 * rms_final, freq_cis_real, freq_cis_imag, and wcls when unshared. Matrices are [out, in] like nn.Linear.
 *
 * We expose the weights under Hugging Face Llama names. llama2.c's RoPE rotates interleaved pairs
 * (x[2i], x[2i+1]) while HF rotates halves (x[i], x[i + hd/2]), so wq and wk rows are permuted
 * within each head (permuteRopeRows) exactly as HF's convert_llama_weights_to_hf.py does.
 */
import type { ModelSpec } from '../config';
import type { NamedTensor } from './safetensors';
import type { ByteSource } from './source';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  /** The classifier is the token embedding (vocab_size was positive in the file). */
  sharedClassifier: boolean;
  seqLen: number;
}

export interface Llama2cModel {
  header: Llama2cHeader;
  spec: ModelSpec;
  /** HF Llama names, wq/wk already permuted for rotate_half RoPE. No lm_head.weight when shared. */
  tensors: NamedTensor[];
}

const HEADER_BYTES = 7 * 4;
/** Newer llama2.c exports (version >= 1) start with this magic ("ak42"); we read only version 0. */
const EXPORT_MAGIC = 0x616b3432;

export function parseLlama2cHeader(bytes: Uint8Array, fileName: string): Llama2cHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) === EXPORT_MAGIC) {
    throw new Error(
      `${fileName} is a llama2.c version ${view.getInt32(4, true)} export; only the legacy version 0 format is supported`,
    );
  }
  const fields = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  const values = fields.map((_, i) => view.getInt32(i * 4, true));
  const [dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen] = values;
  values.forEach((v, i) => {
    if (v === 0 || (v < 0 && fields[i] !== 'vocab_size')) {
      throw new Error(
        `${fileName}: header ${fields[i]} = ${v} (expected a positive integer); not a llama2.c checkpoint?`,
      );
    }
  });
  if (dim % heads !== 0) throw new Error(`${fileName}: dim ${dim} is not a multiple of n_heads ${heads}`);
  if (heads % kvHeads !== 0)
    throw new Error(`${fileName}: n_heads ${heads} is not a multiple of n_kv_heads ${kvHeads}`);
  if ((dim / heads) % 2 !== 0) throw new Error(`${fileName}: head size ${dim / heads} must be even for RoPE`);
  return { dim, hiddenDim, layers, heads, kvHeads, vocabSize: Math.abs(vocab), sharedClassifier: vocab > 0, seqLen };
}

/** The ModelSpec of a llama2.c model (Llama, RoPE theta 10000, RMSNorm eps 1e-5, BOS 1, EOS 2). */
export function llama2cSpec(header: Llama2cHeader, sourceName: string): ModelSpec {
  return {
    family: 'llama',
    modelType: 'llama',
    vocabSize: header.vocabSize,
    hidden: header.dim,
    layers: header.layers,
    heads: header.heads,
    kvHeads: header.kvHeads,
    headDim: header.dim / header.heads,
    intermediate: header.hiddenDim,
    maxPositions: header.seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    tieWordEmbeddings: header.sharedClassifier,
    qkvBias: false,
    mlpBias: false,
    qkNorm: false,
    bosTokenId: 1,
    eosTokenId: 2,
    warnings: [],
    sourceName,
  };
}

/** One block of the file: `count` tensors (one per layer, or one) of `shape`, stored back to back. */
interface Block {
  kind: string;
  shape: number[];
  count: number;
  /** HF name of the tensor for layer i (null: skipped, e.g. the RoPE tables). */
  hfName: ((layer: number) => string) | null;
}

function blocks(h: Llama2cHeader): Block[] {
  const headSize = h.dim / h.heads;
  const kvDim = h.kvHeads * headSize;
  const L = h.layers;
  const layer = (suffix: string) => (i: number) => `model.layers.${i}.${suffix}`;
  const list: Block[] = [
    { kind: 'token_embedding', shape: [h.vocabSize, h.dim], count: 1, hfName: () => 'model.embed_tokens.weight' },
    { kind: 'rms_att', shape: [h.dim], count: L, hfName: layer('input_layernorm.weight') },
    { kind: 'wq', shape: [h.dim, h.dim], count: L, hfName: layer('self_attn.q_proj.weight') },
    { kind: 'wk', shape: [kvDim, h.dim], count: L, hfName: layer('self_attn.k_proj.weight') },
    { kind: 'wv', shape: [kvDim, h.dim], count: L, hfName: layer('self_attn.v_proj.weight') },
    { kind: 'wo', shape: [h.dim, h.dim], count: L, hfName: layer('self_attn.o_proj.weight') },
    { kind: 'rms_ffn', shape: [h.dim], count: L, hfName: layer('post_attention_layernorm.weight') },
    { kind: 'w1', shape: [h.hiddenDim, h.dim], count: L, hfName: layer('mlp.gate_proj.weight') },
    { kind: 'w2', shape: [h.dim, h.hiddenDim], count: L, hfName: layer('mlp.down_proj.weight') },
    { kind: 'w3', shape: [h.hiddenDim, h.dim], count: L, hfName: layer('mlp.up_proj.weight') },
    { kind: 'rms_final', shape: [h.dim], count: 1, hfName: () => 'model.norm.weight' },
    { kind: 'freq_cis_real', shape: [h.seqLen, headSize / 2], count: 1, hfName: null },
    { kind: 'freq_cis_imag', shape: [h.seqLen, headSize / 2], count: 1, hfName: null },
  ];
  if (!h.sharedClassifier)
    list.push({ kind: 'wcls', shape: [h.vocabSize, h.dim], count: 1, hfName: () => 'lm_head.weight' });
  return list;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Total file size a version-0 checkpoint with this header must have. */
export function llama2cFileSize(h: Llama2cHeader): number {
  return HEADER_BYTES + blocks(h).reduce((sum, b) => sum + 4 * b.count * numel(b.shape), 0);
}

/**
 * Reads a version-0 llama2.c checkpoint, one tensor at a time. `sourceName` names the model in the
 * spec (default: the file name without extension).
 */
export async function readLlama2c(src: ByteSource, sourceName?: string): Promise<Llama2cModel> {
  if (src.size < HEADER_BYTES) throw new Error(`${src.name}: ${src.size} bytes is too small for a llama2.c checkpoint`);
  const header = parseLlama2cHeader(await src.read(0, HEADER_BYTES), src.name);
  const expected = llama2cFileSize(header);
  if (src.size !== expected) {
    throw new Error(
      `${src.name} is ${src.size} bytes, but a version-0 llama2.c checkpoint with header ${JSON.stringify(header)} ` +
        `has ${expected}; the file is truncated or not this format`,
    );
  }
  const headSize = header.dim / header.heads;
  const tensors: NamedTensor[] = [];
  let offset = HEADER_BYTES;
  for (const block of blocks(header)) {
    const bytes = 4 * numel(block.shape);
    for (let i = 0; i < block.count; i++, offset += bytes) {
      if (!block.hfName) continue;
      let data = littleEndianFloats(await src.read(offset, bytes));
      if (block.kind === 'wq') data = permuteRopeRows(data, header.heads, headSize, header.dim);
      if (block.kind === 'wk') data = permuteRopeRows(data, header.kvHeads, headSize, header.dim);
      tensors.push({ name: block.hfName(i), shape: block.shape, data });
    }
  }
  const name = sourceName ?? baseName(src.name).replace(/\.bin$/, '');
  return { header, spec: llama2cSpec(header, name), tensors };
}

function littleEndianFloats(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function baseName(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}

/**
 * Reorders the rows of a [heads * headDim, cols] projection so that rotate_half RoPE on the result
 * equals interleaved RoPE on the original: within each head, row 2i + j moves to j * headDim/2 + i
 * (HF's permute: view(heads, headDim/2, 2, cols).transpose(1, 2)).
 */
export function permuteRopeRows(w: Float32Array, heads: number, headDim: number, cols: number): Float32Array {
  if (w.length !== heads * headDim * cols) {
    throw new Error(`permuteRopeRows: ${w.length} values is not ${heads} heads x ${headDim} rows x ${cols} columns`);
  }
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const from = (h * headDim + 2 * i + j) * cols;
        const to = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(from, from + cols), to);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tokenizer .bin: int32 max_token_length, then per token: f32 score, int32 byte length, UTF-8 bytes.

export interface Llama2cTokenizer {
  /** Pieces as stored: spaces instead of sentencepiece's "▁", BOS/EOS as "\n<s>\n" / "\n</s>\n". */
  vocab: string[];
  scores: number[];
  maxTokenLength: number;
}

/**
 * Parses a llama2.c tokenizer file. The file does not record its vocabulary size (llama2.c takes it
 * from the model): without `vocabSize` every token up to the end of the file is read.
 */
export function readLlama2cTokenizer(
  bytes: Uint8Array,
  fileName = 'tokenizer.bin',
  vocabSize?: number,
): Llama2cTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  if (bytes.length < 4) throw new Error(`${fileName}: too small for a llama2.c tokenizer`);
  const maxTokenLength = view.getInt32(0, true);
  const vocab: string[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (vocabSize === undefined ? offset < bytes.length : vocab.length < vocabSize) {
    const id = vocab.length;
    if (offset + 8 > bytes.length)
      throw new Error(`${fileName}: file ends inside token ${id} (expected ${vocabSize ?? 'more'} tokens)`);
    const score = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength) {
      throw new Error(`${fileName}: token ${id} has invalid length ${length} (max_token_length ${maxTokenLength})`);
    }
    if (offset + length > bytes.length) throw new Error(`${fileName}: file ends inside token ${id}`);
    try {
      vocab.push(decoder.decode(bytes.subarray(offset, offset + length)));
    } catch {
      throw new Error(`${fileName}: token ${id} is not valid UTF-8`);
    }
    scores.push(score);
    offset += length;
  }
  return { vocab, scores, maxTokenLength };
}
