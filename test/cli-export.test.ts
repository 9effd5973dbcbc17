/**
 * The export command as other tools drive it: `npm run cli -- export --model DIR [--adapter DIR] --format merged|gguf
 * [--dtype ...] --out PATH`. A merged folder evaluates as the base model with the adapter does (`eval --model OUT`
 * against `eval --model BASE --adapter A`), `generate` runs on it, a llama2.c checkpoint converts to a folder, and
 * bad flags fail naming the flag and what is supported.
 */
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeFolder } from '../src/cli/quantize';
import { openCheckpoint } from '../src/model/formats/safetensors';
import { nodeDir } from '../src/model/formats/node-source';
import { cli, lastJson, run } from './helpers/cli';

const ROOT = 'test/fixtures/hf-golden';
const LLAMA = `${ROOT}/models/llama_tied_bf16`;
const GPT2 = `${ROOT}/models/gpt2`;
const STORIES = 'test/fixtures/models/stories260K_llama2c/stories260K.bin';

describe('export', () => {
  let tmp: string;
  beforeAll(async () => {
    await run('node', ['scripts/build-cli.mjs']);
    tmp = await mkdtemp(join(tmpdir(), 'lora-export-'));
  });

  const ok = async (args: string[]) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    return r;
  };
  const loss = async (args: string[], data: string) =>
    lastJson((await ok(['eval', '--data', data, ...args])).stdout).loss;

  it('merged bf16 folder: eval --model OUT equals eval --model BASE --adapter A (bf16 rounding); generate runs', async () => {
    const adapter = `${ROOT}/adapters/llama_tied_bf16/lora_pattern`;
    const out = join(tmp, 'llama-bf16');
    const r = await ok(
      ['export', '--model', LLAMA, '--adapter', adapter, '--format', 'merged', '--dtype', 'bf16'].concat([
        '--out',
        out,
      ]),
    );
    const summary = lastJson(r.stdout);
    expect(summary).toMatchObject({ done: true, format: 'merged', dtype: 'bf16', out, tensors: 20 });
    expect((await stat(join(out, 'model.safetensors'))).size).toBe(summary.bytes);
    expect((await readdir(out)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const store = await openCheckpoint(await nodeDir(out));
    expect(store.info('model.layers.0.self_attn.q_proj.weight')!.dtype).toBe('BF16');
    const data = `${ROOT}/data/llama_tied_bf16.jsonl`;
    const merged = await loss(['--model', out], data);
    const adapted = await loss(['--model', LLAMA, '--adapter', adapter], data);
    expect(Math.abs(merged - adapted) / adapted).toBeLessThan(2e-3);
    expect(Math.abs(merged - (await loss(['--model', LLAMA], data))) / merged).toBeGreaterThan(1e-3);
    const gen = await ok(['generate', '--model', out, '--prompt', 'ab', '--max-new-tokens', '4']);
    expect(gen.stdout.length).toBeGreaterThan(0);
  }, 120_000);

  it('merged f32 folder of GPT-2 with modules_to_save lm_head: untied, and the same loss and generation', async () => {
    const adapter = `${ROOT}/adapters/gpt2/modules_to_save_lm_head`;
    const out = join(tmp, 'gpt2-f32');
    // gpt2's config.json says float32: the default.
    const summary = lastJson(
      (await ok(['export', '--model', GPT2, '--adapter', adapter, '--format', 'merged', '--out', out])).stdout,
    );
    expect(summary).toMatchObject({ format: 'merged', dtype: 'f32' });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ tie_word_embeddings: false, torch_dtype: 'float32', model_type: 'gpt2' });
    const store = await openCheckpoint(await nodeDir(out));
    expect(store.names()).toContain('lm_head.weight');
    expect(store.names()).toContain('transformer.h.0.attn.c_attn.weight');
    const data = `${ROOT}/data/gpt2.jsonl`;
    const merged = await loss(['--model', out], data);
    expect(Math.abs(merged - (await loss(['--model', GPT2, '--adapter', adapter], data))) / merged).toBeLessThan(1e-5);
    const generated = async (args: string[]) =>
      (await ok(['generate', ...args, '--prompt', 'ab', '--max-new-tokens', '6'])).stdout;
    expect(await generated(['--model', out])).toBe(await generated(['--model', GPT2, '--adapter', adapter]));
  }, 120_000);

  it('without --adapter: a llama2.c checkpoint becomes a Hugging Face folder with the same loss', async () => {
    const out = join(tmp, 'stories');
    const summary = lastJson((await ok(['export', '--model', STORIES, '--format', 'merged', '--out', out])).stdout);
    expect(summary).toMatchObject({ format: 'merged', dtype: 'f32' });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'llama', torch_dtype: 'float32' });
    expect((await readdir(out)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const data = join(tmp, 'story.txt');
    await writeFile(data, 'Once upon a time there was a little girl.\n\nShe liked to play in the park with her dog.\n');
    expect(await loss(['--model', out], data)).toBe(await loss(['--model', STORIES], data));
  }, 120_000);

  it('a bitsandbytes NF4 folder with an adapter: dequantized, merged, quantization_config dropped', async () => {
    const nf4 = join(tmp, 'gpt2-nf4');
    await quantizeFolder({ model: GPT2, to: 'nf4', out: nf4, blocksize: 64 });
    const adapter = `${ROOT}/adapters/gpt2/lora_pattern`;
    const out = join(tmp, 'gpt2-nf4-merged');
    await ok(['export', '--model', nf4, '--adapter', adapter, '--format', 'merged', '--dtype', 'f32', '--out', out]);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toBeUndefined();
    expect(config.torch_dtype).toBe('float32');
    const data = `${ROOT}/data/gpt2.jsonl`;
    const merged = await loss(['--model', out], data);
    // --weights f32: the NF4 codes dequantized at load, the values the NF4 kernels compute with (slow on SwiftShader).
    const adapted = await loss(['--model', nf4, '--weights', 'f32', '--adapter', adapter], data);
    expect(Math.abs(merged - adapted) / merged).toBeLessThan(1e-5);
  }, 120_000);

  it('gguf: one .gguf file (f16 by default) and an Ollama Modelfile beside it', async () => {
    const out = join(tmp, 'gguf', 'tiny.gguf');
    const args = ['export', '--model', LLAMA, '--adapter', `${ROOT}/adapters/llama_tied_bf16/dora`, '--format', 'gguf'];
    const summary = lastJson((await ok([...args, '--out', out])).stdout);
    expect(summary).toMatchObject({ done: true, format: 'gguf', dtype: 'f16', out, tensors: 20 });
    const bytes = await readFile(out);
    expect(bytes.byteLength).toBe(summary.bytes);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(await readFile(join(tmp, 'gguf', 'Modelfile'), 'utf8')).toMatch(/^FROM \.\/tiny\.gguf$/m);
  }, 120_000);

  it('bad flags name the flag and what is supported', async () => {
    const fails = async (args: string[], message: string) => {
      const r = await cli(['export', ...args]);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toContain(message);
    };
    const out = join(tmp, 'bad');
    await fails(
      ['--model', LLAMA, '--format', 'merged', '--dtype', 'q8_0', '--out', out],
      '--dtype q8_0 is not supported with --format merged: choose f32, bf16, f16',
    );
    await fails(
      ['--model', LLAMA, '--format', 'gguf', '--dtype', 'bf16', '--out', join(tmp, 'x.gguf')],
      '--dtype bf16 is not supported with --format gguf: choose f32, f16, q8_0',
    );
    await fails(['--model', LLAMA, '--format', 'merged'], 'export: --out is required');
    await fails(
      ['--model', LLAMA, '--format', 'zip', '--out', out],
      '--format must be one of merged, gguf (got "zip")',
    );
    await fails(['--model', LLAMA, '--format', 'merged', '--out', LLAMA], 'is the model folder');
    await fails(['--model', LLAMA, '--format', 'gguf', '--out', tmp], 'is a folder; --format gguf writes one file');
    await fails(
      ['--model', LLAMA, '--adapter', join(tmp, 'nope'), '--format', 'merged', '--out', out],
      'no such folder (expected a PEFT adapter folder)',
    );
    // A GPT-2 adapter on a Llama model.
    await fails(
      ['--model', LLAMA, '--adapter', `${ROOT}/adapters/gpt2/lora_pattern`, '--format', 'merged', '--out', out],
      'is the adapter for another model?',
    );
  }, 120_000);
});
