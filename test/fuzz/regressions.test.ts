/**
 * The inputs fuzzing found, each reduced to its smallest form, with the behaviour it has now: refused with the
 * project's own error naming the file (or, for chat roles, kept as written). No GPU: the adapter importers are read
 * on their own.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importPeftAdalora } from '../../src/adapters/adalora/peft';
import { importPeftGralora } from '../../src/adapters/gralora/peft';
import { importPeftLora } from '../../src/adapters/lora/peft';
import { normalizeMessages } from '../../src/data/chat';
import { readRecords } from '../../src/data/readers';
import { loadPeftFolder } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import type { Gpu } from '../../src/gpu/gpu';
import type { ModelWeights } from '../../src/model/weights';
import { parseConfig } from '../../src/model/config';
import { memoryStore, openCheckpoint } from '../../src/model/formats/safetensors';
import { memoryDir } from '../../src/model/formats/source';
import { nodeDir } from '../../src/model/formats/node-source';
import { readLlama2cTokenizer } from '../../src/model/formats/llama2c';
import { llama2cToHfTokenizer } from '../../src/tokenizer/llama2c-to-hf';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { schemaOnlyParquet } from '../data/tiny-parquet';
import { applyByteMutations, guardAllocations, namedErrorProblem, type ByteMutation } from '../helpers/fuzz';
import { parquetFile } from './parquet-writer';

const GOLDEN = 'test/fixtures/hf-golden';
const read = (path: string) => new Uint8Array(readFileSync(path));
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** Runs `load`, expecting the project's own error naming `file` and matching `message` (`wrapped`: quotes a library). */
async function expectRefused(load: () => unknown, file: string, message: RegExp, wrapped?: RegExp): Promise<void> {
  let error: unknown = null;
  try {
    await load();
  } catch (e) {
    error = e;
  }
  expect(error, 'no error').not.toBeNull();
  expect(namedErrorProblem(error, [file], wrapped)).toBeNull();
  expect((error as Error).message).toMatch(message);
}

describe('config.json', () => {
  it('num_hidden_layers = 1e9 is refused against the checkpoint at once (it ran out of memory listing tensors)', async () => {
    const model = `${GOLDEN}/models/llama_gqa`;
    const dir = memoryDir('llama_gqa', {
      'config.json': JSON.stringify({ ...json(`${model}/config.json`), num_hidden_layers: 1e9 }),
      'model.safetensors': read(`${model}/model.safetensors`),
    });
    const started = performance.now();
    await expectRefused(
      () => loadModelDir(dir),
      'llama_gqa',
      /holds \d+ tensors, fewer than the config's 1000000000 layers/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('tokenizer.json and tokenizer_config.json', () => {
  const gpt2 = json(`${GOLDEN}/models/gpt2/tokenizer.json`);
  const config = json(`${GOLDEN}/models/gpt2/tokenizer_config.json`);
  const withAdded = (id: unknown) => ({
    ...gpt2,
    added_tokens: gpt2.added_tokens.map((t: Record<string, unknown>, i: number) => (i === 1 ? { ...t, id } : t)),
  });

  it('an added token with a string id is refused (encode returned the string as a token id)', async () => {
    await expectRefused(
      () => loadTokenizer(withAdded('TemplateProcessing')),
      'tokenizer.json',
      /has id "TemplateProcessing"/,
    );
  });

  it('an added token with id 2^31 is refused at once (listing the vocabulary walked 2^31 slots)', async () => {
    const started = performance.now();
    await expectRefused(() => loadTokenizer(withAdded(2 ** 31)), 'tokenizer.json', /token ids must be integers from 0/);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('a post-processor template item that is not an object fails at load, not inside a later encode()', async () => {
    const broken = {
      ...gpt2,
      post_processor: { type: 'TemplateProcessing', single: ['<s>'], pair: [], special_tokens: {} },
    };
    const quoted = /could not be loaded: Cannot use 'in' operator/;
    await expectRefused(() => loadTokenizer(broken, config), 'tokenizer.json', quoted, quoted);
  });

  it('text outside a vocabulary without unk_token or byte fallback is refused, not encoded as undefined ids', async () => {
    const tok = loadTokenizer({
      model: { type: 'BPE', vocab: { '<s>': 0, '</s>': 1, a: 2, b: 3, ab: 4 }, merges: ['a b'], unk_token: 'Fuse' },
    });
    expect(tok.encode('ab')).toEqual([4]);
    await expectRefused(
      () => tok.encode('abc'),
      'tokenizer.json',
      /cannot encode "abc": part of it is not in the vocabulary/,
    );
  });

  it('an added token whose content is not a string is refused at load (encode threw token.replaceAll is not a function)', async () => {
    const broken = {
      ...gpt2,
      added_tokens: gpt2.added_tokens.map((t: Record<string, unknown>, i: number) =>
        i === 1 ? { ...t, content: { type: 'NFC' } } : t,
      ),
    };
    await expectRefused(() => loadTokenizer(broken), 'tokenizer.json', /added token 1 has content \{"type":"NFC"\}/);
  });

  it('a decoder that fails only on special tokens fails at load (it failed in the first decode of a BOS)', async () => {
    const tok512 = read('test/fixtures/models/stories260K_llama2c/tok512.bin');
    const json = llama2cToHfTokenizer(readLlama2cTokenizer(tok512)) as {
      decoder: { decoders: unknown[] };
      post_processor: { single: { Sequence?: { id: string } }[] };
    };
    json.decoder.decoders[2] = null;
    // A template sequence id that is neither A nor B: every plain text encodes to nothing, so only added tokens decode.
    json.post_processor.single[1].Sequence!.id = 'x';
    await expectRefused(() => loadTokenizer(json), 'tokenizer.json', /could not be loaded: /, /could not be loaded: /);
  });

  it("the library's own errors at decode time name tokenizer.json", async () => {
    const quoted = /could not decode token ids: token_ids must be a non-empty array of integers/;
    await expectRefused(() => loadTokenizer(gpt2).decode([1.5]), 'tokenizer.json', quoted, quoted);
  });

  it('a tokenizer_config.json that is not an object is named as such (it was blamed on tokenizer.json)', async () => {
    await expectRefused(
      () => loadTokenizer(gpt2, 'BPE' as unknown as object),
      'tokenizer_config.json',
      /must be a JSON object/,
    );
  });

  it('special tokens, add_bos_token and chat_template of the wrong type are refused, not silently ignored', async () => {
    for (const [key, value] of [
      ['bos_token', 5],
      ['add_bos_token', 'yes'],
      ['chat_template', 5],
      ['chat_template', [{ name: 'default', template: 7 }]],
    ] as const) {
      await expectRefused(
        () => loadTokenizer(gpt2, { ...config, [key]: value }),
        'tokenizer_config.json',
        new RegExp(key),
      );
    }
  });
});

describe('chat messages', () => {
  it('roles named like Object.prototype members stay the text they are', () => {
    const [proto, ctor] = normalizeMessages([
      { role: '__proto__', content: 'a' },
      { role: 'constructor', content: 'b' },
    ]);
    expect(proto.role).toBe('__proto__');
    expect(ctor.role).toBe('constructor');
  });

  it('tool_calls that is not a list is refused naming the message (spreading it threw a TypeError)', async () => {
    const messages = [{ role: 'assistant', tool_calls: 39, content: [{ type: 'tool_call', text: '{"name": "f"}' }] }];
    await expectRefused(() => normalizeMessages(messages), 'message 0', /tool_calls that is not a list/);
  });
});

describe('Parquet', () => {
  it('a LIST-annotated column without a repeated child is ignored by name (reading its item threw a TypeError)', async () => {
    const listWithoutItem = { name: 'messages', repetition: 1, converted: 3, children: [] };
    await expectRefused(
      () => readRecords({ name: 'bad.parquet', bytes: schemaOnlyParquet([listWithoutItem]) }),
      'bad.parquet',
      /every column is nested \(messages: list annotation without a repeated field\)/,
    );
    const read = await readRecords({
      name: 'mixed.parquet',
      bytes: schemaOnlyParquet([{ name: 'text', type: 6, converted: 0 }, listWithoutItem]),
    });
    expect(read.warnings.join()).toMatch(
      /ignored 1 nested column\(s\): messages: list annotation without a repeated field/,
    );
  });
});

describe('Parquet pages and footers (files written by test/fuzz/parquet-writer.ts, then damaged)', () => {
  const rows = json('test/fixtures/datasets/alpaca_handmade/alpaca.json') as Record<string, string>[];
  const file = parquetFile([
    { name: 'instruction', kind: 'string', values: rows.map((r) => r.instruction) },
    { name: 'input', kind: 'string', values: rows.map((r) => r.input || null), optional: true },
    { name: 'output', kind: 'string', values: rows.map((r) => r.output) },
    { name: 'id', kind: 'int64', values: rows.map((_, i) => i) },
  ]);
  const damaged = (mutations: ByteMutation[]) => ({ name: 'bad.parquet', bytes: applyByteMutations(file, mutations) });
  const quoted = /not a readable Parquet file \(|could not decode the Parquet data \(/;

  it('a footer list claiming 2^21 elements is refused before hyparquet allocates them (16 MB from 5 bytes)', async () => {
    const bad = damaged([
      { op: 'flip', at: 524, bit: 7 },
      { op: 'int', at: 452, value: 549, width: 8 },
      { op: 'int', at: 506, value: 2147483647, width: 4 },
    ]);
    const guarded = guardAllocations(1 << 22, () => readRecords(bad));
    await expectRefused(
      () => guarded,
      'bad.parquet',
      /its footer is damaged: a list of \d+ elements is longer than/,
      quoted,
    );
  });

  it('a schema whose num_children overruns its elements is refused by name (parquetSchema threw a TypeError)', async () => {
    const bad = damaged([
      { op: 'delete', at: 363, length: 53 },
      { op: 'set', at: 463, value: 48 },
    ]);
    await expectRefused(() => readRecords(bad), 'bad.parquet', /not a readable Parquet file/, quoted);
  });

  it('a v2 page header without repetition_levels_byte_length is refused (hyparquet looped forever at offset NaN)', async () => {
    const v2 = parquetFile([
      { name: 'instruction', kind: 'string', values: rows.map((r) => r.instruction), v2: true },
      { name: 'input', kind: 'string', values: rows.map((r) => r.input || null), optional: true, v2: true },
      { name: 'output', kind: 'string', values: rows.map((r) => r.output), v2: true },
      { name: 'id', kind: 'int64', values: rows.map((_, i) => i), v2: true },
    ]);
    // One byte inserted into the input column's page header turns its last field into another field id.
    const bad = { name: 'bad.parquet', bytes: applyByteMutations(v2, [{ op: 'insert', at: 201, bytes: [230] }]) };
    await expectRefused(() => readRecords(bad), 'bad.parquet', /has no repetition_levels_byte_length/, quoted);
  });

  it('an RLE run of 2^28 definition levels in a 4-value page is refused at once (decoding took 23 s)', async () => {
    const bad = damaged([
      { op: 'flip', at: 296, bit: 1 },
      { op: 'insert', at: 199, bytes: [35, 176, 161, 175, 97] },
    ]);
    const started = performance.now();
    await expectRefused(
      () => readRecords(bad),
      'bad.parquet',
      /column input: a run of \d+ definition levels in a page of 4 values/,
      quoted,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('PEFT adapter configs', () => {
  const spec = (model: string) => parseConfig(json(`${GOLDEN}/models/${model}/config.json`), `${model}/config.json`);
  const folder = async (model: string, kind: string) => {
    const dir = `${GOLDEN}/adapters/${model}/${kind}`;
    return { config: json(`${dir}/adapter_config.json`), store: await openCheckpoint(await nodeDir(dir)) };
  };
  const where = 'fuzzed-peft';
  const cfgFile = `${where}/adapter_config.json`;

  it('an adapter_config.json of null is refused by name (reading peft_type threw a TypeError)', async () => {
    const dir = memoryDir(where, { 'adapter_config.json': 'null', 'adapter_model.safetensors': new Uint8Array(8) });
    // The config is read before any weight or GPU is touched.
    const load = () => loadPeftFolder(null as unknown as Gpu, null as unknown as ModelWeights, dir);
    await expectRefused(load, cfgFile, /must be a JSON object, got null/);
  });

  it('lora_alpha or an alpha_pattern value that is not a number is refused (the scale was NaN)', async () => {
    const { config, store } = await folder('gpt2', 'lora_pattern');
    const lora = (c: Record<string, unknown>) =>
      importPeftLora(spec('gpt2'), c, store, where, { baseWeightsApplied: true });
    await expectRefused(() => lora({ ...config, lora_alpha: 'megatron.core' }), cfgFile, /lora_alpha must be a number/);
    await expectRefused(
      () => lora({ ...config, alpha_pattern: { c_attn: 'x' } }),
      cfgFile,
      /alpha_pattern\["c_attn"\] must be a number/,
    );
  });

  it('AdaLoRA lora_alpha that is not a number is refused (it silently became init_r)', async () => {
    const { config, store } = await folder('gpt2', 'adalora');
    await expectRefused(
      () => importPeftAdalora(spec('gpt2'), { ...config, lora_alpha: 'x' }, store, where),
      cfgFile,
      /lora_alpha must be a number/,
    );
  });

  it('GraLoRA alpha that is not a number is refused', async () => {
    const store = await memoryStore('adapter_model.safetensors', []);
    const config = { peft_type: 'GRALORA', r: 2, gralora_k: 2, alpha: '64' };
    await expectRefused(() => importPeftGralora(spec('gpt2'), config, store, where), cfgFile, /alpha must be a number/);
  });

  it('an unreadable layers_pattern is refused by name (new RegExp threw a raw SyntaxError)', async () => {
    const { config, store } = await folder('llama_tied_bf16', 'lora_pattern');
    const c = { ...config, layers_to_transform: [0, 1], layers_pattern: '(' };
    await expectRefused(
      () => importPeftLora(spec('llama_tied_bf16'), c, store, where, { baseWeightsApplied: true }),
      cfgFile,
      /layers_pattern "\(" is not a regular expression/,
    );
  });

  it('modules_to_save given as a string is refused (saved.map threw a TypeError)', async () => {
    const { config, store } = await folder('llama_tied_bf16', 'lora_pattern');
    await expectRefused(
      () => importPeftLora(spec('llama_tied_bf16'), { ...config, modules_to_save: 'lm_head' }, store, where),
      cfgFile,
      /modules_to_save must be a list of module names/,
    );
  });

  it('rank-0 LoRA modules are refused (alpha / 0 made every logit NaN)', async () => {
    const store = await memoryStore('adapter_model.safetensors', [
      {
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
        shape: [0, 64],
        data: new Float32Array(0),
      },
      {
        name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
        shape: [64, 0],
        data: new Float32Array(0),
      },
    ]);
    await expectRefused(
      () => importPeftLora(spec('llama_tied_bf16'), { peft_type: 'LORA', r: 0, lora_alpha: 8 }, store, where),
      where,
      /has rank 0; a LoRA module needs rank >= 1/,
    );
  });
});
