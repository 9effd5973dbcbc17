/**
 * External truth for the GGUF writer: llama.cpp itself. node-llama-cpp 3.21.1's prebuilt CPU build (its bundled
 * llama.cpp, whose convert_hf_to_gguf.py the writer follows) loads the files we write for every family the engine
 * runs (llama with GQA, llama with tied bf16 weights, qwen2, qwen3, gpt2, and the stories260K llama2.c demo as the
 * CLI loads it) in f32, f16 and q8_0, and must compute what our engine computes with the same weights: the merged
 * model's, rounded as the file stores them (f16, or q8_0 quantized and dequantized, for the tensors the writer
 * converts). Checked:
 *  - llama.cpp's greedy continuation of a prompt (token ids fed directly, decoded one token at a time over its KV
 *    cache) is our engine's (src/model/generate.ts);
 *  - its next-token distribution at every position of prompt + continuation (one batch) agrees with our forward
 *    pass's. node-llama-cpp exposes no raw logits, only the full next-token probabilities (a softmax over the whole
 *    vocabulary; the greedy sampler leaves the logits alone: AddonContext.cpp SampleToken), so log-probabilities
 *    are compared: the logits up to the constant the softmax removes;
 *  - llama.cpp's own tokenization of a text equals our tokenizer's.
 * The distance to the unrounded model is measured too and printed, not asserted: it is the price of f16 / q8_0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelDir, type LoadedModel } from '../src/engine/load-model';
import { writeGguf } from '../src/export/gguf';
import { decodeQ8_0, encodeQ8_0, Q8_0_BLOCK, Q8_0_BLOCK_BYTES } from '../src/export/gguf/q8-0';
import { mergeModel } from '../src/export/merge';
import type { GgufDtype, MergedModel } from '../src/export/merged-model';
import { modelFolderTexts } from '../src/export/model-files';
import { roundToHalf } from '../src/gpu/half';
import { writeSafetensors } from '../src/model/formats/safetensors';
import { nodeDir } from '../src/model/formats/node-source';
import { type DirSource, memoryDir } from '../src/model/formats/source';
import { Generator } from '../src/model/generate';
import { TransformerGraph } from '../src/model/transformer';
import { ModelWeights } from '../src/model/weights';
import { testGpu } from './helpers/gpu';

const DTYPES: GgufDtype[] = ['f32', 'f16', 'q8_0'];
type ConfigChange = (config: Record<string, unknown>) => void;
const FAMILIES: [name: string, dir: string, dtypes: GgufDtype[], change?: ConfigChange][] = [
  ['llama_gqa', 'test/fixtures/hf-golden/models/llama_gqa', DTYPES],
  ['llama_tied_bf16', 'test/fixtures/hf-golden/models/llama_tied_bf16', DTYPES],
  ['qwen2', 'test/fixtures/hf-golden/models/qwen2', DTYPES],
  ['qwen3', 'test/fixtures/hf-golden/models/qwen3', DTYPES],
  ['gpt2', 'test/fixtures/hf-golden/models/gpt2', DTYPES],
  ['stories260K', 'test/fixtures/models/stories260K_llama2c', DTYPES],
  // RoPE scaling as llama.cpp takes it: Llama 3.1's as the rope_freqs tensor (with original_max_position_embeddings
  // 64 every regime of its factors occurs at head_dim 16), linear as rope.scaling.* keys.
  [
    'llama_gqa rope llama3',
    'test/fixtures/hf-golden/models/llama_gqa',
    ['f32'],
    (c) => {
      c.rope_scaling = {
        rope_type: 'llama3',
        factor: 4,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 64,
      };
    },
  ],
  [
    'llama_gqa rope linear',
    'test/fixtures/hf-golden/models/llama_gqa',
    ['f32'],
    (c) => {
      c.rope_scaling = { rope_type: 'linear', factor: 2 };
    },
  ],
];
const PROMPT = 'Once upon a time, there was a';
const NEW_TOKENS = 16;
const TOKENIZE_TEXTS = [PROMPT, "Hello world, it's 2024!  Numbers: 12345 and    spaces.\nA new line; ünïcödé too."];

/**
 * Max |log p_llama.cpp - log p_ours| with the same weights: what llama.cpp's CPU arithmetic adds, not the file.
 *  - f32 and f16: float32 arithmetic in another order, about 1e-5 (llama_gqa's f32 file also agrees with
 *    transformers' logits in hf-golden's golden.json to 6e-6): 1e-4.
 *  - GPT-2, any dtype: ggml's CPU GELU looks its result up in an f16 table indexed by the input rounded to f16
 *    (ggml-cpu/vec.h, GGML_GELU_FP16), up to 2^-11 relative on every MLP activation: 2e-3 measured, 5e-3 allowed.
 *  - stories260K f16: 9e-3 measured, 2e-2 allowed. llama.cpp's f16 matmuls agree with float32 to 6e-6 on the other
 *    models, but not on stories260K's 172-wide MLP: with only ffn_up or ffn_down in f16 the error is 5e-3, with
 *    only its attention or embedding in f16 2e-5. The 172 (not a multiple of 32) sends those matmuls down ggml's
 *    generic path, which multiplies by the activations rounded to f16 (the F16 vec_dot_type, ggml-cpu.c).
 *  - q8_0: ggml multiplies a Q8_0 weight by the activations quantized to Q8_0 too, about 0.5% relative noise on
 *    every matmul input that no file avoids: up to 0.23 measured here (logits spread over ±6), 0.4 allowed. The
 *    bytes themselves are checked bit for bit against gguf-py's quantizer in gguf.test.ts.
 */
function tolerance(name: string, dtype: GgufDtype): number {
  if (dtype === 'q8_0') return 0.4;
  if (name === 'gpt2') return 5e-3;
  if (name === 'stories260K' && dtype === 'f16') return 2e-2;
  return 1e-4;
}

/**
 * llama.cpp keeps its KV cache in f16 by default, and its CPU flash attention computes in f16 whatever the cache
 * holds: either alone moves log-probabilities by ~1e-3 here. An f32 cache without flash attention leaves the
 * weights as the only difference to our float32 engine.
 */
const CONTEXT = {
  contextSize: 128,
  threads: 1,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32',
  experimentalKvCacheValueType: 'F32',
} as const;

const tmp = mkdtempSync(join(tmpdir(), 'gguf-llama-cpp-'));
let llama: Llama;
const measured: string[] = [];

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`llama.cpp vs our engine, max |Δ log p| over every position and token:\n${measured.join('\n')}`);
});

/** Our engine on one set of weights: greedy continuation of the prompt, log-probabilities along a sequence. */
interface Engine {
  model: LoadedModel;
  greedy(prompt: number[]): Promise<number[]>;
  logprobs(tokens: number[]): Promise<Float64Array[]>;
}

async function engine(model: LoadedModel): Promise<Engine & { weights: ModelWeights }> {
  const gpu = await testGpu();
  const weights = await ModelWeights.upload(gpu, model.spec, model.source);
  const generator = new Generator(gpu, weights);
  return {
    model,
    weights,
    greedy: (prompt) => generator.greedy(prompt, { maxNewTokens: NEW_TOKENS }),
    async logprobs(tokens) {
      const L = tokens.length;
      const V = model.spec.vocabSize;
      const graph = new TransformerGraph(gpu, weights, { batch: 1, seq: L, train: 'none', logitsChunkRows: L });
      graph.setBatch({
        tokens: Uint32Array.from(tokens),
        targets: new Int32Array(L).fill(-100),
        positions: Uint32Array.from(tokens, (_, i) => i),
        supervised: 0,
      });
      graph.forwardList.run();
      const logits = await gpu.read(graph.logits, 0, L * V);
      return Array.from({ length: L }, (_, t) => logSoftmax(logits.subarray(t * V, (t + 1) * V)));
    },
  };
}

function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - lse);
}

/**
 * The merged model with every tensor the file stores as f16 or q8_0 rounded to what the file holds: 2-D weights
 * but GPT-2's position embedding; q8_0 blocks run along the GGUF row, which is the checkpoint's row except for
 * GPT-2's Conv1D weights (stored [in, out], written transposed); rows that are not a multiple of 32 are f16.
 */
function roundedAsStored(merged: MergedModel, dtype: GgufDtype): MergedModel {
  if (dtype === 'f32') return merged;
  const tensors = merged.tensors.map((t) => {
    if (t.shape.length !== 2 || t.name.endsWith('wpe.weight')) return t;
    const conv1d = /\.(c_attn|c_proj|c_fc)\.weight$/.test(t.name);
    const [rows, cols] = conv1d ? [t.shape[1], t.shape[0]] : t.shape;
    if (dtype === 'f16' || cols % Q8_0_BLOCK !== 0) return { ...t, data: roundToHalf(t.data, 'f16') };
    const rowMajor = conv1d ? transpose(t.data, cols, rows) : t.data;
    const bytes = new Uint8Array((rowMajor.length / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES);
    encodeQ8_0(rowMajor, new DataView(bytes.buffer), 0);
    const values = decodeQ8_0(bytes, rowMajor.length);
    return { ...t, data: conv1d ? transpose(values, rows, cols) : values };
  });
  return { ...merged, tensors };
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** A merged model loaded back into our engine, from an in-memory Hugging Face folder. */
async function loadMerged(merged: MergedModel, name: string): Promise<LoadedModel> {
  return loadModelDir(
    memoryDir(name, {
      ...merged.files,
      'config.json': merged.configJson,
      'model.safetensors': writeSafetensors(merged.tensors),
    }),
  );
}

async function loadGguf(bytes: Uint8Array, file: string, vocabOnly = false): Promise<LlamaModel> {
  const path = join(tmp, file);
  writeFileSync(path, bytes);
  return llama.loadModel({ modelPath: path, vocabOnly });
}

/** llama.cpp's greedy decoding: the prompt, then one token at a time over its KV cache. */
async function llamaGreedy(model: LlamaModel, ids: number[], count: number): Promise<number[]> {
  const prompt = ids as Token[];
  const context = await model.createContext(CONTEXT);
  try {
    const sequence = context.getSequence();
    const next = { generateNext: { token: true } } as const;
    let [last] = (await sequence.controlledEvaluate([...prompt.slice(0, -1), [prompt.at(-1)!, next]])).slice(-1);
    const out: number[] = [];
    while (out.length < count) {
      const token = last?.next.token;
      if (token == null) throw new Error(`llama.cpp generated no token after ${out.length}`);
      out.push(token);
      if (out.length < count) [last] = await sequence.controlledEvaluate([[token, next]]);
    }
    return out;
  } finally {
    await context.dispose();
  }
}

/** llama.cpp's next-token log-probabilities at every position of `tokens`, evaluated as one batch. */
async function llamaLogprobs(model: LlamaModel, tokens: number[], vocab: number): Promise<Float64Array[]> {
  const context = await model.createContext(CONTEXT);
  try {
    const sequence = context.getSequence();
    const results = await sequence.controlledEvaluate(
      tokens.map((t): [Token, { generateNext: { probabilities: true } }] => [
        t as Token,
        { generateNext: { probabilities: true } },
      ]),
    );
    return results.map((r, i) => {
      const probabilities = r?.next.probabilities;
      if (!probabilities || probabilities.size !== vocab)
        throw new Error(`position ${i}: llama.cpp gave ${probabilities?.size} probabilities, expected ${vocab}`);
      const out = new Float64Array(vocab);
      for (const [token, p] of probabilities) out[token] = Math.log(p);
      return out;
    });
  } finally {
    await context.dispose();
  }
}

function maxAbsDiff(a: Float64Array[], b: Float64Array[]): { error: number; position: number; token: number } {
  let worst = { error: 0, position: -1, token: -1 };
  a.forEach((row, position) =>
    row.forEach((x, token) => {
      const error = Math.abs(x - b[position][token]);
      if (!(error <= worst.error)) worst = { error, position, token };
    }),
  );
  return worst;
}

/**
 * Where two greedy continuations first differ, how far llama.cpp's pick is below our best log-probability there
 * (both from our engine, same weights, same context); 0 when they never differ.
 */
function divergenceMargin(ours: number[], theirs: number[], ourLogprobs: Float64Array[], promptLength: number): number {
  const k = ours.findIndex((t, i) => t !== theirs[i]);
  if (k < 0) return 0;
  const row = ourLogprobs[promptLength + k - 1];
  return row[ours[k]] - row[theirs[k]];
}

/** The model folder, with config.json changed where `change` is given (in memory). */
async function modelFolder(dir: string, change?: ConfigChange): Promise<DirSource> {
  const folder = await nodeDir(dir);
  if (!change) return folder;
  const files: Record<string, Uint8Array> = {};
  for (const f of folder.list()) files[f] = await folder.file(f)!.read(0, folder.file(f)!.size);
  const config = JSON.parse(await folder.text('config.json'));
  change(config);
  return memoryDir(folder.name, { ...files, 'config.json': JSON.stringify(config) });
}

describe.each(FAMILIES)('%s: llama.cpp runs our GGUF as our engine runs the model', (name, dir, dtypes, change) => {
  let base: Engine;
  let merged: MergedModel;
  let prompt: number[];
  beforeAll(async () => {
    const folder = await modelFolder(dir, change);
    const e = await engine(await loadModelDir(folder));
    base = e;
    // The base model as a MergedModel, as the CLI's GGUF export builds it (no adapter).
    merged = await mergeModel(await testGpu(), e.weights, await modelFolderTexts(folder));
    prompt = e.model.tokenizer.encode(PROMPT, { addSpecial: true });
  });

  it('llama.cpp tokenizes text as our tokenizer does', async () => {
    const model = await loadGguf(
      await writeGguf(merged, { dtype: 'f32' }),
      `${name.replaceAll(' ', '-')}-vocab.gguf`,
      true,
    );
    try {
      for (const text of TOKENIZE_TEXTS) expect(model.tokenize(text)).toEqual(base.model.tokenizer.encode(text));
    } finally {
      await model.dispose();
    }
  });

  it.each(dtypes)('%s: the same greedy continuation and next-token log-probabilities', async (dtype) => {
    const ours = dtype === 'f32' ? base : await engine(await loadMerged(roundedAsStored(merged, dtype), name));
    const model = await loadGguf(await writeGguf(merged, { dtype }), `${name.replaceAll(' ', '-')}-${dtype}.gguf`);
    try {
      const continuation = await ours.greedy(prompt);
      const tokens = [...prompt, ...continuation];
      const ourLogprobs = await ours.logprobs(tokens);
      const theirGreedy = await llamaGreedy(model, prompt, NEW_TOKENS);
      const theirLogprobs = await llamaLogprobs(model, tokens, base.model.spec.vocabSize);
      const worst = maxAbsDiff(theirLogprobs, ourLogprobs);
      const unrounded = maxAbsDiff(theirLogprobs, dtype === 'f32' ? ourLogprobs : await base.logprobs(tokens));
      const tol = tolerance(name, dtype);
      const margin = divergenceMargin(continuation, theirGreedy, ourLogprobs, prompt.length);
      measured.push(
        `${name} ${dtype}: ${worst.error.toExponential(2)} with the file's weights (vs the unrounded model ` +
          `${unrounded.error.toExponential(2)}); greedy ${margin === 0 ? 'same' : `differs where our top two are ${margin.toExponential(2)} apart`}`,
      );
      expect(worst.error, `${name} ${dtype}: worst at ${JSON.stringify(worst)}`).toBeLessThanOrEqual(tol);
      // q8_0's quantized activations may flip a near tie; anything else must decode exactly as we do.
      if (dtype === 'q8_0') expect(margin).toBeLessThanOrEqual(tol);
      else expect(theirGreedy).toEqual(continuation);
    } finally {
      await model.dispose();
    }
  });
});
