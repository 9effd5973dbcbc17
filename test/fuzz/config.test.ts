/**
 * Fuzzing config.json: the real configs of the hf-golden models with their fields mutated (wrong types, extremes,
 * keys removed or added), loaded through the model-folder loader against the real checkpoint and tokenizer. Each
 * either loads a spec the checkpoint matches, or fails naming the folder's file; sizes beyond the checkpoint
 * (a billion layers) are refused without building anything of that size.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadModelDir, type LoadedModel } from '../../src/engine/load-model';
import { expectedTensors } from '../../src/model/config';
import {
  applyJsonMutations,
  expectReadsInside,
  fuzz,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  jsonMutations,
  loadsOrRefuses,
  recordingDir,
  utf8,
} from '../helpers/fuzz';

const ROOT = 'test/fixtures/hf-golden/models';
const MODELS = ['llama_gqa', 'llama_tied_bf16', 'qwen2', 'qwen3', 'gpt2'];
const FILES = ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const folders = MODELS.map((model) => ({
  model,
  config: JSON.parse(readFileSync(`${ROOT}/${model}/config.json`, 'utf8')) as Record<string, unknown>,
  files: Object.fromEntries(FILES.map((f) => [f, new Uint8Array(readFileSync(`${ROOT}/${model}/${f}`))])),
}));
const modelBytes = Math.max(...folders.map((f) => f.files['model.safetensors'].length));

/** Fields the parser reads, for mutations that add a key. */
const CONFIG_KEYS = [
  'model_type',
  'vocab_size',
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'intermediate_size',
  'max_position_embeddings',
  'rms_norm_eps',
  'rope_theta',
  'rope_scaling',
  'rope_parameters',
  'rope_type',
  'type',
  'factor',
  'tie_word_embeddings',
  'attention_bias',
  'mlp_bias',
  'hidden_act',
  'sliding_window',
  'use_sliding_window',
  'bos_token_id',
  'eos_token_id',
  '_name_or_path',
  'quantization_config',
  'n_embd',
  'n_head',
  'n_layer',
  'n_inner',
  'n_positions',
  'n_ctx',
  'activation_function',
  'layer_norm_epsilon',
];

/** Size fields set to a value: mostly plausible, sometimes far beyond any file (a header-sized loop or buffer). */
const SIZE_KEYS = CONFIG_KEYS.filter((k) =>
  /size|layers|heads|head_dim|positions|n_(embd|head|layer|inner|ctx)/.test(k),
);
const sizeValue = fc.oneof(
  fc.integer({ min: 1, max: 400 }),
  fc.constantFrom(0, -1, 0.5, 2 ** 31, 2 ** 32, 1e9, 1e15, 2 ** 53 - 1, 2 ** 53, '64', null, [64], true),
);

/** What a loaded model must satisfy: a consistent spec and a checkpoint that gives every tensor it declares. */
async function verifyLoaded(loaded: LoadedModel): Promise<void> {
  const { spec } = loaded;
  for (const v of [spec.vocabSize, spec.hidden, spec.layers, spec.heads, spec.kvHeads, spec.headDim, spec.intermediate])
    expect(Number.isSafeInteger(v) && v > 0).toBe(true);
  expect(spec.heads % spec.kvHeads).toBe(0);
  const first = expectedTensors(spec)[0];
  expect((await loaded.source.load(first.name)).length).toBe(first.shape.reduce((a, b) => a * b, 1));
  expect(loaded.tokenizer.vocabSize).toBeLessThanOrEqual(spec.vocabSize);
}

async function checkConfig(index: number, config: unknown, raw?: Uint8Array): Promise<'loaded' | 'refused'> {
  const { model, files } = folders[index];
  const dir = recordingDir(model, { ...files, 'config.json': raw ?? utf8(JSON.stringify(config)) });
  const outcome = await guardAllocations(8 * modelBytes + (1 << 20), () =>
    loadsOrRefuses(() => loadModelDir(dir), [model], { verify: verifyLoaded }),
  );
  expectReadsInside(dir.sources);
  return outcome;
}

describe('fuzz: config.json', () => {
  it('mutated fields, through the model-folder loader', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc
      .nat(folders.length - 1)
      .chain((i) => fc.tuple(fc.constant(i), jsonMutations(folders[i].config, CONFIG_KEYS, 3)));
    const tally = await fuzz('config.json mutated', cases, fuzzRuns(250, 0.25), ([i, mutations]) =>
      checkConfig(i, applyJsonMutations(folders[i].config, mutations)),
    );
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('size fields from plausible to absurd are checked against the checkpoint, not trusted', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.record({
      model: fc.nat(folders.length - 1),
      sizes: fc.array(fc.tuple(fc.constantFrom(...SIZE_KEYS), sizeValue), { minLength: 1, maxLength: 2 }),
    });
    const tally = await fuzz('config.json sizes', cases, fuzzRuns(250, 0.25), ({ model, sizes }) => {
      const config = { ...folders[model].config };
      for (const [key, value] of sizes) config[key] = value;
      return checkConfig(model, config);
    });
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('config.json bytes that are not JSON, not UTF-8 or not an object', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc.record({
      model: fc.nat(folders.length - 1),
      bytes: fc.oneof(
        fc.uint8Array({ maxLength: 40 }),
        fc.jsonValue({ maxDepth: 2 }).map((v) => utf8(JSON.stringify(v) ?? 'null')),
        fc.constantFrom('', '{', '{"model_type": "llama",}', '\ufeff{}', '[]', 'null', '{"a": 1} x').map(utf8),
      ),
    });
    const tally = await fuzz('config.json bytes', cases, fuzzRuns(200), ({ model, bytes }) =>
      checkConfig(model, null, bytes),
    );
    expect(tally.refused).toBe(tally.cases);
  });
});
