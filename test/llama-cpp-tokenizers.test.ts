/**
 * Real tokenizers (test/fixtures/tokenizers: GPT-2, Qwen2.5, SmolLM, Llama 2's sentencepiece BPE) written into
 * GGUF files around a one-block model of zero weights, loaded by llama.cpp (node-llama-cpp 3.21.1, vocabulary
 * only): llama.cpp must tokenize text exactly as our tokenizer (@huggingface/tokenizers on tokenizer.json) does,
 * which checks tokenizer.ggml.pre (byte-level) and the merge-rank scores (sentencepiece) against llama.cpp itself.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGguf } from '../src/export/gguf';
import type { MergedModel } from '../src/export/merged-model';
import type { NamedTensor } from '../src/model/formats/safetensors';
import { loadTokenizer } from '../src/tokenizer/tokenizer';

const TEXTS = [
  'Hello world',
  " Hello, world! It's 2024 -- isn't it?  Two  spaces,   three.\n\nNew paragraph\ttab.",
  "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it",
  'Numbers: 1 12 123 1234 12345 3.14159 1,000,000',
  'ünïcödé, naïve café; 我想在apple工作1314151天～ нещо на Български 🦙🦙 🚀 (emoji)',
  'def f(x):\n    return x ** 2  # comment\n',
];

const tmp = mkdtempSync(join(tmpdir(), 'gguf-tokenizers-'));
let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A one-block model of `arch` with zero weights around the tokenizer in `dir` (vocabSize embedding rows). */
function tinyModelWith(dir: string, arch: 'qwen2' | 'llama', vocabSize: number): MergedModel {
  const files: Record<string, string> = { 'tokenizer.json': readFileSync(`${dir}/tokenizer.json`, 'utf8') };
  try {
    files['tokenizer_config.json'] = readFileSync(`${dir}/tokenizer_config.json`, 'utf8');
  } catch {
    // GPT-2's tokenizer comes without one
  }
  const hidden = 32;
  const zeros = (name: string, ...shape: number[]): NamedTensor => ({
    name,
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const layer = 'model.layers.0';
  const tensors = [
    zeros('model.embed_tokens.weight', vocabSize, hidden),
    zeros('model.norm.weight', hidden),
    zeros(`${layer}.input_layernorm.weight`, hidden),
    zeros(`${layer}.post_attention_layernorm.weight`, hidden),
    ...['q_proj', 'k_proj', 'v_proj', 'o_proj'].map((m) => zeros(`${layer}.self_attn.${m}.weight`, hidden, hidden)),
    ...['gate_proj', 'up_proj', 'down_proj'].map((m) => zeros(`${layer}.mlp.${m}.weight`, hidden, hidden)),
  ];
  if (arch === 'qwen2') {
    for (const m of ['q_proj', 'k_proj', 'v_proj']) tensors.push(zeros(`${layer}.self_attn.${m}.bias`, hidden));
  }
  const config = {
    architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: arch,
    hidden_size: hidden,
    intermediate_size: hidden,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: true,
    vocab_size: vocabSize,
  };
  return { configJson: JSON.stringify(config), tensors, files };
}

const TOKENIZERS: [dir: string, arch: 'qwen2' | 'llama', vocabSize: number, model: string, pre: string][] = [
  ['test/fixtures/tokenizers/gpt2', 'llama', 50257, 'gpt2', 'gpt-2'],
  ['test/fixtures/tokenizers/qwen2.5', 'qwen2', 151665, 'gpt2', 'qwen2'],
  ['test/fixtures/tokenizers/smollm-135m_modified', 'llama', 49153, 'gpt2', 'smollm'],
  ['test/fixtures/tokenizers/llama2', 'llama', 32000, 'llama', 'default'],
];

/** Each tokenizer's file, written once and loaded by llama.cpp (vocabulary only). */
const loaded = new Map<string, { model: MergedModel; llamaModel: LlamaModel }>();

async function loadedFor(dir: string, arch: 'qwen2' | 'llama', vocabSize: number) {
  let entry = loaded.get(dir);
  if (!entry) {
    const model = tinyModelWith(dir, arch, vocabSize);
    const path = join(tmp, `${dir.split('/').pop()}.gguf`);
    writeFileSync(path, await writeGguf(model, { dtype: 'f16' }));
    entry = { model, llamaModel: await llama.loadModel({ modelPath: path, vocabOnly: true }) };
    loaded.set(dir, entry);
  }
  return entry;
}
afterAll(async () => {
  for (const { llamaModel } of loaded.values()) await llamaModel.dispose();
});

describe.each(TOKENIZERS)('%s', (dir, arch, vocabSize, tokenizerModel, pre) => {
  it(`is a "${tokenizerModel}" vocabulary with pre-tokenizer "${pre}", and llama.cpp tokenizes as we do`, async () => {
    const { model, llamaModel } = await loadedFor(dir, arch, vocabSize);
    // node-llama-cpp's own GGUF reader
    const { ggml } = llamaModel.fileInfo.metadata.tokenizer;
    expect(ggml.model).toBe(tokenizerModel);
    expect(ggml.pre).toBe(pre);
    const files = model.files;
    const ours = loadTokenizer(
      JSON.parse(files['tokenizer.json']),
      files['tokenizer_config.json'] ? JSON.parse(files['tokenizer_config.json']) : undefined,
    );
    for (const text of TEXTS) expect(llamaModel.tokenize(text), JSON.stringify(text)).toEqual(ours.encode(text));
  });
});

it('Qwen2.5: ChatML template, <|im_end|> as EOS, <|endoftext|> as padding, control and user-defined tokens', async () => {
  const { model, llamaModel } = await loadedFor('test/fixtures/tokenizers/qwen2.5', 'qwen2', 151665);
  const { tokenizer } = llamaModel.fileInfo.metadata;
  const { ggml } = tokenizer;
  expect(tokenizer.chat_template).toBe(JSON.parse(model.files['tokenizer_config.json']).chat_template);
  expect(ggml.eos_token_id).toBe(151645); // tokenizer_config's eos_token <|im_end|>
  expect(ggml.padding_token_id).toBe(151643); // <|endoftext|>
  expect(ggml.add_bos_token).toBe(false);
  expect([ggml.tokens[151644], ggml.token_type[151644]]).toEqual(['<|im_start|>', 3]); // CONTROL
  expect([ggml.tokens[151657], ggml.token_type[151657]]).toEqual(['<tool_call>', 4]); // added, not special: USER_DEFINED
  expect(ggml.token_type[1000]).toBe(1); // NORMAL
});
