/**
 * The GGUF writer's files, parsed back with @huggingface/gguf, against what llama.cpp's own converter writes for the
 * same models (test/fixtures/gguf/converter: convert_hf_to_gguf.py of the llama.cpp node-llama-cpp 3.21.1 bundles,
 * as a digest of every metadata key and every tensor's bytes); Q8_0 blocks bit for bit against gguf-py's quantizer
 * (test/fixtures/gguf/q8_0); the pre-tokenizer identification against the converter's hash table on real
 * tokenizers; errors for what cannot be written; the Ollama Modelfile. That llama.cpp computes with these files
 * what our engine computes is test/llama-cpp.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, type GGUFParseOutput, type GGUFTypedMetadata } from '@huggingface/gguf';
import { afterAll, describe, expect, it } from 'vitest';
import { ollamaModelfile, writeGguf } from '../src/export/gguf';
import { type HfTokenizer, readHfTokenizer } from '../src/export/gguf/hf-tokenizer';
import { chktxtHash, identifyPreTokenizer } from '../src/export/gguf/pre-tokenizer';
import { decodeQ8_0, encodeQ8_0, Q8_0_BLOCK_BYTES } from '../src/export/gguf/q8-0';
import type { GgufDtype, MergedModel } from '../src/export/merged-model';
import { modelFolderTexts } from '../src/export/model-files';
import { f16BitsToF32, f32ToF16Bits } from '../src/gpu/half';
import { readLlama2c } from '../src/model/formats/llama2c';
import { nodeDir } from '../src/model/formats/node-source';
import { type NamedTensor, openCheckpoint } from '../src/model/formats/safetensors';

const FIXTURES = 'test/fixtures/gguf';
const tmp = mkdtempSync(join(tmpdir(), 'gguf-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The base model as a MergedModel, read straight from its files (what mergeModel makes of it, without a GPU). */
async function mergedFromFolder(dir: string): Promise<MergedModel> {
  const folder = await nodeDir(dir);
  const { configJson, files } = await modelFolderTexts(folder);
  let tensors: NamedTensor[];
  const llama2c = folder.list().find((f) => f.endsWith('.bin') && !f.startsWith('tok'));
  if (llama2c) {
    tensors = (await readLlama2c(folder.file(llama2c)!)).tensors;
  } else {
    const store = await openCheckpoint(folder);
    tensors = await Promise.all(
      store.names().map(async (name) => ({ name, shape: store.info(name)!.shape, data: await store.load(name) })),
    );
  }
  return { configJson, tensors, files };
}

function withConfig(model: MergedModel, change: (config: Record<string, unknown>) => void): MergedModel {
  const config = JSON.parse(model.configJson);
  change(config);
  return { ...model, configJson: JSON.stringify(config) };
}

async function parse(bytes: Uint8Array, file: string): Promise<GGUFParseOutput & { typedMetadata: GGUFTypedMetadata }> {
  const path = join(tmp, file);
  writeFileSync(path, bytes);
  return gguf(path, { allowLocalFile: true, typedMetadata: true });
}

const VALUE_TYPES = [
  'UINT8',
  'INT8',
  'UINT16',
  'INT16',
  'UINT32',
  'INT32',
  'FLOAT32',
  'BOOL',
  'STRING',
  'ARRAY',
  'UINT64',
  'INT64',
  'FLOAT64',
];
const TENSOR_TYPES: Record<number, { name: string; bytes: (n: number) => number }> = {
  0: { name: 'F32', bytes: (n) => n * 4 },
  1: { name: 'F16', bytes: (n) => n * 2 },
  8: { name: 'Q8_0', bytes: (n) => (n / 32) * 34 },
};

interface Digest {
  metadata: Record<string, { type: string[]; value: unknown }>;
  files: Record<
    string,
    { file_type: number; tensors: { name: string; type: string; ne: number[]; sha256_16: string }[] }
  >;
}
const converter: Record<string, Digest> = JSON.parse(readFileSync(`${FIXTURES}/converter/digest.json`, 'utf8'));

/** Our file as the converter digest describes one: typed metadata, and each tensor's type, dims and data hash. */
async function digestOf(bytes: Uint8Array, file: string) {
  const parsed = await parse(bytes, file);
  const metadata: Record<string, { type: string[]; value: unknown }> = {};
  for (const [key, entry] of Object.entries(parsed.typedMetadata)) {
    if (['version', 'tensor_count', 'kv_count'].includes(key)) continue;
    const type = entry.type === 9 ? ['ARRAY', VALUE_TYPES[entry.subType!]] : [VALUE_TYPES[entry.type]];
    const value = Array.isArray(entry.value) ? entry.value.map(plain) : plain(entry.value);
    metadata[key] = { type, value };
  }
  const dataStart = Number(parsed.tensorDataOffset);
  const tensors = parsed.tensorInfos.map((info) => {
    const type = TENSOR_TYPES[info.dtype];
    const ne = info.shape.map(Number);
    const offset = dataStart + Number(info.offset);
    const data = bytes.subarray(offset, offset + type.bytes(ne.reduce((a, b) => a * b, 1)));
    return {
      name: info.name,
      type: type.name,
      ne,
      sha256_16: createHash('sha256').update(data).digest('hex').slice(0, 16),
    };
  });
  return { parsed, metadata, tensors };
}

const plain = (v: unknown) => (typeof v === 'bigint' ? Number(v) : v);

const MODELS: [name: string, dir: string, dtypes: GgufDtype[], configChange?: (c: Record<string, unknown>) => void][] =
  [
    ['llama_gqa', 'test/fixtures/hf-golden/models/llama_gqa', ['f32', 'f16', 'q8_0']],
    ['llama_tied_bf16', 'test/fixtures/hf-golden/models/llama_tied_bf16', ['f32', 'f16', 'q8_0']],
    ['qwen2', 'test/fixtures/hf-golden/models/qwen2', ['f32', 'f16', 'q8_0']],
    ['qwen3', 'test/fixtures/hf-golden/models/qwen3', ['f32', 'f16', 'q8_0']],
    ['gpt2', 'test/fixtures/hf-golden/models/gpt2', ['f32', 'f16', 'q8_0']],
    ['stories260K', 'test/fixtures/models/stories260K_llama2c', ['f32', 'f16', 'q8_0']],
    [
      'llama_gqa_llama3',
      'test/fixtures/hf-golden/models/llama_gqa',
      ['f32'],
      (c) => {
        c.rope_scaling = {
          rope_type: 'llama3',
          factor: 4.0,
          low_freq_factor: 1.0,
          high_freq_factor: 4.0,
          original_max_position_embeddings: 64,
        };
      },
    ],
    [
      'llama_gqa_linear',
      'test/fixtures/hf-golden/models/llama_gqa',
      ['f32'],
      (c) => {
        c.rope_scaling = { rope_type: 'linear', factor: 2.0 };
      },
    ],
  ];

describe('files as llama.cpp convert_hf_to_gguf.py writes them (test/fixtures/gguf/converter)', () => {
  it.each(MODELS)('%s: every metadata key and every tensor, byte for byte', async (name, dir, dtypes, change) => {
    const base = await mergedFromFolder(dir);
    const model = change ? withConfig(base, change) : base;
    const want = converter[name];
    for (const dtype of dtypes) {
      // The converter names a model after its folder; the name is ours to choose, so it is given to match.
      const bytes = await writeGguf(model, { dtype, name: want.metadata['general.name'].value as string });
      const ours = await digestOf(bytes, `${name}-${dtype}.gguf`);
      const { 'general.alignment': alignment, 'general.file_type': fileType, ...metadata } = ours.metadata;
      expect(alignment).toEqual({ type: ['UINT32'], value: 32 }); // the converter leaves it to the default, 32
      expect(fileType.value, `${name} ${dtype} general.file_type`).toBe(want.files[dtype].file_type);
      const expected = { ...want.metadata };
      if (name === 'stories260K') {
        // Deliberately different (vocab.ts mergeRankScores): see llama-cpp.test.ts for llama.cpp's tokenization.
        expect((metadata['tokenizer.ggml.scores'].value as number[]).length).toBe(512);
        delete metadata['tokenizer.ggml.scores'];
        delete expected['tokenizer.ggml.scores'];
      }
      expect(metadata, `${name} ${dtype} metadata`).toEqual(expected);
      const byName = (t: { name: string }) => t.name;
      expect(ours.tensors.map(byName).sort(), `${name} ${dtype} tensor names`).toEqual(
        want.files[dtype].tensors.map(byName).sort(),
      );
      for (const t of want.files[dtype].tensors) {
        expect(
          ours.tensors.find((o) => o.name === t.name),
          `${name} ${dtype} ${t.name}`,
        ).toEqual(t);
      }
    }
  });
});

describe('GGUF v3 container', () => {
  it('has the magic, version 3, and every tensor aligned to 32 bytes, the data padded to the end', async () => {
    const bytes = await writeGguf(await mergedFromFolder('test/fixtures/hf-golden/models/qwen3'), { dtype: 'q8_0' });
    const view = new DataView(bytes.buffer);
    expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
    expect(view.getUint32(4, true)).toBe(3);
    const { parsed } = await digestOf(bytes, 'container.gguf');
    expect(Number(view.getBigUint64(8, true))).toBe(parsed.tensorInfos.length);
    const start = Number(parsed.tensorDataOffset);
    expect(start % 32).toBe(0);
    let end = start;
    for (const info of parsed.tensorInfos) {
      expect(Number(info.offset) % 32, info.name).toBe(0);
      const count = info.shape.reduce((a, b) => a * Number(b), 1);
      end = Math.max(end, start + Number(info.offset) + Math.ceil(TENSOR_TYPES[info.dtype].bytes(count) / 32) * 32);
    }
    expect(bytes.length).toBe(end);
  });

  it('names the model after config.json _name_or_path (without its folders) when no name is given', async () => {
    const model = withConfig(await mergedFromFolder('test/fixtures/hf-golden/models/qwen2'), (c) => {
      c._name_or_path = '/home/me/models/my-qwen';
    });
    const { metadata } = await digestOf(await writeGguf(model, { dtype: 'f16' }), 'named.gguf');
    expect(metadata['general.name'].value).toBe('my-qwen');
  });
});

/** C's roundf on a float64 value. */
const roundAway = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

describe('q8_0', () => {
  const cases: { name: string; f32_bits: number[]; q8_0_hex: string }[] = JSON.parse(
    readFileSync(`${FIXTURES}/q8_0/cases.json`, 'utf8'),
  );

  it.each(cases)('$name: the bytes gguf-py writes', ({ f32_bits, q8_0_hex }) => {
    const values = new Float32Array(Uint32Array.from(f32_bits).buffer);
    const out = new Uint8Array(Q8_0_BLOCK_BYTES);
    encodeQ8_0(values, new DataView(out.buffer), 0);
    expect(Buffer.from(out).toString('hex')).toBe(q8_0_hex);
  });

  it('round-trips against a float64 reference: codes round(x / d) half away from zero, values code x f16(d)', () => {
    // Awkward blocks: exact ties at d = 1, zeros, a block of zeros, tiny and large magnitudes, random values.
    const blocks: number[][] = [
      [127, ...Array.from({ length: 31 }, (_, i) => (i % 2 ? -1 : 1) * (Math.floor(i / 2) + 0.5))],
      new Array(32).fill(0),
      [...new Array(16).fill(0), ...Array.from({ length: 16 }, (_, i) => (i - 8) / 3)],
      Array.from({ length: 32 }, (_, i) => (i - 16) * 1e-7),
      Array.from({ length: 32 }, (_, i) => Math.sin(i * 12.9898) * 4000),
    ];
    for (let s = 0; s < 8; s++)
      blocks.push(Array.from({ length: 32 }, (_, i) => Math.sin((s * 32 + i) * 78.233) * 0.05));
    const values = Float32Array.from(blocks.flat());
    const bytes = new Uint8Array((values.length / 32) * Q8_0_BLOCK_BYTES);
    encodeQ8_0(values, new DataView(bytes.buffer), 0);
    const decoded = decodeQ8_0(bytes, values.length);
    const view = new DataView(bytes.buffer);
    blocks.forEach((_, b) => {
      // The block as float32 (its stored values), its scale from there in float64.
      const amax = Math.max(...Array.from(values.subarray(b * 32, b * 32 + 32), Math.abs));
      const d = amax / 127; // float64
      const storedD = f16BitsToF32(view.getUint16(b * Q8_0_BLOCK_BYTES, true));
      expect(storedD, `block ${b} scale`).toBe(f16BitsToF32(f32ToF16Bits(Math.fround(d))));
      for (let j = 0; j < 32; j++) {
        const x = values[b * 32 + j];
        const code = view.getInt8(b * Q8_0_BLOCK_BYTES + 2 + j);
        const exact = d === 0 ? 0 : x / d;
        // float32 arithmetic may move a value across a .5 boundary only when it is within a few ulps of it
        if (Math.abs(Math.abs(exact - Math.trunc(exact)) - 0.5) > 1e-5) {
          expect(code, `block ${b} value ${j} (${x})`).toBe(roundAway(exact));
        } else expect(Math.abs(code - exact)).toBeLessThanOrEqual(0.5 + 1e-5);
        expect(decoded[b * 32 + j]).toBe(code * storedD);
      }
    });
    // Exact ties of the first block: 0.5 -> 1, -0.5 -> -1, 1.5 -> 2, 2.5 -> 3 (not banker's rounding's 2).
    expect(Array.from(new Int8Array(bytes.buffer, 2, 8))).toEqual([127, 1, -1, 2, -2, 3, -3, 4]);
    expect(Array.from(decoded.subarray(32, 64))).toEqual(new Array(32).fill(0));
  });

  it('keeps rows that are not a multiple of 32 in f16, as the converter does (stories260K ffn_down, 172 wide)', async () => {
    const bytes = await writeGguf(await mergedFromFolder('test/fixtures/models/stories260K_llama2c'), {
      dtype: 'q8_0',
    });
    const { tensors } = await digestOf(bytes, 'stories-q8.gguf');
    const types = (prefix: string) => [...new Set(tensors.filter((t) => t.name.includes(prefix)).map((t) => t.type))];
    expect(types('ffn_down')).toEqual(['F16']);
    expect(types('ffn_up')).toEqual(['Q8_0']);
    expect(types('_norm')).toEqual(['F32']);
  });
});

describe('tokenizer.ggml.pre', () => {
  const tokenizer = (dir: string): HfTokenizer => {
    const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
    let config = null;
    try {
      config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
    } catch {}
    return readHfTokenizer(json, config);
  };

  it.each([
    // convert_hf_to_gguf.py's own hashes for these models: gpt2, Qwen1.5/2/2.5, SmolLM
    ['test/fixtures/tokenizers/gpt2', 'gpt-2', '3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454'],
    ['test/fixtures/tokenizers/qwen2.5', 'qwen2', 'e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea'],
    [
      'test/fixtures/tokenizers/smollm-135m_modified',
      'smollm',
      '855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249',
    ],
  ])('%s: identified by the converter hash as %s', async (dir, name, hash) => {
    expect(await identifyPreTokenizer(tokenizer(dir))).toEqual({ name, by: 'hash', hash });
  });

  it('an unknown hash with a pre-tokenizer llama.cpp implements is recognized by its structure', async () => {
    // The hf-golden tokenizers: tiny byte-level vocabularies; the converter printed this hash for them.
    const tok = tokenizer('test/fixtures/hf-golden/models/llama_gqa');
    expect(await chktxtHash(tok)).toBe('ef9446b702e97eada20582b59b9b2aa8b9bdb6320fd22941b31266c2c8b210eb');
    expect(await identifyPreTokenizer(tok)).toMatchObject({ name: 'gpt-2', by: 'structure' });
  });

  it('any other pre-tokenizer is an error naming it, not "default"', async () => {
    const tok = tokenizer('test/fixtures/hf-golden/models/qwen2');
    tok.json = {
      ...tok.json,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
    };
    await expect(identifyPreTokenizer(tok)).rejects.toThrow(/no pre-tokenizer known to match.*Split.*"default"/s);
  });
});

describe('errors name what cannot be written', () => {
  it('an unsupported architecture', async () => {
    const model = withConfig(await mergedFromFolder('test/fixtures/hf-golden/models/qwen2'), (c) => {
      c.model_type = 'gemma';
      c.architectures = ['GemmaForCausalLM'];
    });
    await expect(writeGguf(model, { dtype: 'f16' })).rejects.toThrow(
      /model_type "gemma" \(architectures \["GemmaForCausalLM"\]\) is not supported; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GPT2LMHeadModel/,
    );
  });

  it('a tensor with no GGUF name, and a missing one', async () => {
    const model = await mergedFromFolder('test/fixtures/hf-golden/models/llama_gqa');
    const extra = { name: 'model.layers.0.self_attn.rotary_proj.weight', shape: [2, 2], data: new Float32Array(4) };
    await expect(writeGguf({ ...model, tensors: [...model.tensors, extra] }, { dtype: 'f32' })).rejects.toThrow(
      /tensor model\.layers\.0\.self_attn\.rotary_proj\.weight has no GGUF name for architecture llama/,
    );
    const without = model.tensors.filter((t) => t.name !== 'lm_head.weight');
    await expect(writeGguf({ ...model, tensors: without }, { dtype: 'f32' })).rejects.toThrow(
      /no lm_head\.weight \(GGUF output\.weight\), which llama\.cpp's llama requires \(config\.json says tie_word_embeddings is false\)/,
    );
  });

  it('a model without tokenizer.json (llama.cpp aborts on a vocabulary it cannot tokenize with)', async () => {
    const model = await mergedFromFolder('test/fixtures/hf-golden/models/llama_gqa');
    await expect(writeGguf({ ...model, files: {} }, { dtype: 'f16' })).rejects.toThrow(
      /needs the model's tokenizer\.json/,
    );
  });

  it('a tokenizer that is not BPE', async () => {
    const model = await mergedFromFolder('test/fixtures/hf-golden/models/llama_gqa');
    const json = JSON.parse(model.files['tokenizer.json']);
    json.model = { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0]] };
    const files = { ...model.files, 'tokenizer.json': JSON.stringify(json) };
    await expect(writeGguf({ ...model, files }, { dtype: 'f16' })).rejects.toThrow(
      /model type "Unigram".*supported: BPE/,
    );
  });

  it('an unsupported dtype', async () => {
    const model = await mergedFromFolder('test/fixtures/hf-golden/models/llama_gqa');
    await expect(writeGguf(model, { dtype: 'q4_0' as GgufDtype })).rejects.toThrow(/supported: f32, f16, q8_0/);
  });
});

describe('ollamaModelfile', () => {
  const CHATML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const LLAMA3 =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

  async function withTemplate(template: string | null): Promise<MergedModel> {
    const qwen = await mergedFromFolder('test/fixtures/hf-golden/models/qwen2');
    const config = JSON.parse(qwen.files['tokenizer_config.json']);
    if (template === null) delete config.chat_template;
    else config.chat_template = template;
    return { ...qwen, files: { ...qwen.files, 'tokenizer_config.json': JSON.stringify(config) } };
  }

  it('a plain ChatML template becomes Ollama ChatML, stopping at EOS and <|im_end|>', async () => {
    const text = ollamaModelfile(await withTemplate(CHATML), 'model-q8_0.gguf');
    expect(text).toBe(
      [
        'FROM ./model-q8_0.gguf',
        "# The model's chat template is the ChatML layout.",
        'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}',
        '{{ .Content }}<|im_end|>',
        '{{ end }}<|im_start|>assistant',
        '"""',
        'PARAMETER stop "<|endoftext|>"',
        'PARAMETER stop "<|im_end|>"',
        '',
      ].join('\n'),
    );
  });

  it("a plain Llama 3 template becomes Ollama Llama 3 (the BOS it writes is llama.cpp's to add)", async () => {
    const text = ollamaModelfile(await withTemplate(LLAMA3), 'm.gguf');
    expect(text).toContain("# The model's chat template is the Llama 3 layout.");
    expect(text).toContain('<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>\n{{- end }}');
  });

  it('a template with more in it (Qwen2.5: tools, a default system prompt) is left to the GGUF', async () => {
    const qwenConfig = readFileSync('test/fixtures/tokenizers/qwen2.5/tokenizer_config.json', 'utf8');
    const text = ollamaModelfile(await withTemplate(JSON.parse(qwenConfig).chat_template), 'q.gguf');
    expect(text).toMatch(/^FROM \.\/q\.gguf\n# TEMPLATE: .*tokenizer\.chat_template/);
    expect(text).not.toContain('TEMPLATE """');
    expect(text).toContain('PARAMETER stop "<|endoftext|>"');
  });

  it('no chat template: prompts pass through, EOS stops', async () => {
    const text = ollamaModelfile(await withTemplate(null), 'base.gguf');
    expect(text).toBe(
      [
        'FROM ./base.gguf',
        '# The model has no chat template: prompts are passed through as they are (plain completion).',
        'TEMPLATE """{{ .Prompt }}"""',
        'PARAMETER stop "<|endoftext|>"',
        '',
      ].join('\n'),
    );
  });
});

it('stories260K: sentencepiece scores follow the tokenizer.json merge ranks, the first merge highest', async () => {
  const model = await mergedFromFolder('test/fixtures/models/stories260K_llama2c');
  const { metadata } = await digestOf(await writeGguf(model, { dtype: 'f32' }), 'stories-scores.gguf');
  const tokens = metadata['tokenizer.ggml.tokens'].value as string[];
  const scores = metadata['tokenizer.ggml.scores'].value as number[];
  const merges: string[] = JSON.parse(model.files['tokenizer.json']).model.merges;
  // The first merge's piece scores highest, a later merge's piece lower: llama.cpp merges in rank order.
  const pieceOf = (merge: string) => tokens.indexOf(merge.replace(' ', ''));
  expect(scores[pieceOf(merges[0])]).toBe(0);
  expect(scores[pieceOf(merges[10])]).toBeLessThan(scores[pieceOf(merges[5])]);
});
