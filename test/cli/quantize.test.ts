/**
 * The quantize command: `npm run cli -- quantize --model DIR --to nf4|fp4|int8 --out DIR` writes a folder of
 * config.json (with quantization_config), model.safetensors and the tokenizer files, which readBnb4bit reads back;
 * bad options fail naming the flag and what is supported.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeFolder } from '../../src/cli/quantize';
import { nodeDir } from '../../src/model/formats/node-source';
import { openCheckpoint } from '../../src/model/formats/safetensors';
import { readBnb4bit } from '../../src/quant/bnb-format';
import { cli, lastJson, run } from '../helpers/cli';

const LLAMA = 'test/fixtures/hf-golden/models/llama_tied_bf16';
const GPT2 = 'test/fixtures/hf-golden/models/gpt2';

describe('quantize', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'lora-quantize-'));
  });

  it('writes a bitsandbytes folder that reads back', async () => {
    const out = join(tmp, 'llama-nf4');
    const summary = await quantizeFolder({ model: LLAMA, to: 'nf4', out, blocksize: 64 });
    expect(summary).toMatchObject({ done: true, out, to: 'nf4', quantized: 14, kept: 6 });
    expect((await readdir(out)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toMatchObject({
      quant_method: 'bitsandbytes',
      load_in_4bit: true,
      bnb_4bit_quant_type: 'nf4',
      bnb_4bit_use_double_quant: true,
      bnb_4bit_compute_dtype: 'bfloat16',
    });
    const store = await openCheckpoint(await nodeDir(out));
    const weights = await readBnb4bit(config.quantization_config, store);
    expect(weights.size).toBe(14);
    expect(weights.get('model.layers.1.mlp.down_proj.weight')).toMatchObject({ shape: [64, 160], dtype: 'bfloat16' });
    expect((await readFile(join(out, 'model.safetensors'))).byteLength).toBe(summary.bytes);
  });

  it('4-bit options: --no-double-quant, --blocksize, --compute-dtype', async () => {
    const out = join(tmp, 'gpt2-fp4');
    await quantizeFolder({
      model: GPT2,
      to: 'fp4',
      out,
      blocksize: 128,
      'no-double-quant': true,
      'compute-dtype': 'float16',
    });
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toMatchObject({
      bnb_4bit_quant_type: 'fp4',
      bnb_4bit_use_double_quant: false,
      bnb_4bit_compute_dtype: 'float16',
    });
    const w = (await readBnb4bit(config.quantization_config, await openCheckpoint(await nodeDir(out)))).get(
      'transformer.h.0.mlp.c_fc.weight',
    )!;
    expect(w.parts).toMatchObject({ kind: 'codebook4', blocksize: 128, nested: undefined });
  });

  it('bad options name the flag and what is supported', async () => {
    const out = join(tmp, 'x');
    await expect(quantizeFolder({ model: LLAMA, to: 'q3', out })).rejects.toThrow(
      '--to must be one of nf4, fp4, int8 (got "q3")',
    );
    await expect(quantizeFolder({ model: LLAMA, to: 'nf4', out, blocksize: 48 })).rejects.toThrow(
      /--blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096 \(got 48\)/,
    );
    await expect(quantizeFolder({ model: LLAMA, to: 'nf4', out, 'compute-dtype': 'float64' })).rejects.toThrow(
      /--compute-dtype must be one of float32, bfloat16, float16/,
    );
    await expect(quantizeFolder({ model: LLAMA, to: 'int8', out, 'no-double-quant': true })).rejects.toThrow(
      /4-bit options; --to int8 takes neither/,
    );
    await expect(quantizeFolder({ model: join(tmp, 'nope'), to: 'nf4', out })).rejects.toThrow(
      /--model .*no such folder/,
    );
    await expect(quantizeFolder({ model: LLAMA, to: 'nf4', out: `${LLAMA}/` })).rejects.toThrow(
      /--out .* is the model folder/,
    );
  });

  it('runs as a CLI command: one JSON line on stdout, errors on stderr with exit code 1', async () => {
    await run('node', ['scripts/build-cli.mjs']);
    const out = join(tmp, 'cli-int8');
    const ok = await cli(['quantize', '--model', GPT2, '--to', 'int8', '--out', out]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(lastJson(ok.stdout)).toMatchObject({ done: true, to: 'int8', quantized: 8, kept: 20 });
    const bad = await cli(['quantize', '--model', GPT2, '--to', 'int4', '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--to must be one of nf4, fp4, int8');
    const help = await cli(['quantize', '--help']);
    expect(help.stdout).toContain('--to STRING  nf4 | fp4 | int8');
  }, 60_000);

  it('eval reads the quantized folder with its own codes; train --weights nf4 trains LoRA over NF4', async () => {
    await run('node', ['scripts/build-cli.mjs']);
    const data = join(tmp, 'text.txt');
    await writeFile(data, 'the cat sat on the mat\n\na dog ran in the park\n\nbirds sing in the morning light\n');
    const out = join(tmp, 'llama-nf4-cli');
    expect((await cli(['quantize', '--model', LLAMA, '--to', 'nf4', '--out', out])).code).toBe(0);
    const loss = async (args: string[]) => {
      const r = await cli(['eval', '--data', data, ...args]);
      expect(r.code, r.stderr).toBe(0);
      return lastJson(r.stdout).loss as number;
    };
    const original = await loss(['--model', LLAMA]);
    const kept = await loss(['--model', out]);
    // The same values dequantized to f32 on the host, and quantized at load from the original: the same model.
    expect(await loss(['--model', out, '--weights', 'f32'])).toBeCloseTo(kept, 6);
    expect(await loss(['--model', LLAMA, '--weights', 'nf4'])).toBeCloseTo(kept, 6);
    expect(Math.abs(kept - original) / original).toBeLessThan(0.1);
    const adapter = join(tmp, 'qlora-adapter');
    const train = await cli([
      'train',
      ...['--model', LLAMA, '--weights', 'nf4', '--data', data, '--rank', '2', '--targets', 'all-linear'],
      ...['--steps', '2', '--batch', '1', '--seq-len', '16', '--out', adapter],
    ]);
    expect(train.code, train.stderr).toBe(0);
    const config = JSON.parse(await readFile(join(adapter, 'adapter_config.json'), 'utf8'));
    expect(config.peft_type).toBe('LORA');
    expect(JSON.stringify(config)).not.toMatch(/quant/);
    // Full fine-tuning trains the weights dequantized to f32; the merged model is a plain float model.
    const merged = join(tmp, 'full-from-nf4');
    const full = await cli([
      'train',
      ...['--model', out, '--method', 'full', '--data', data, '--steps', '1', '--batch', '1', '--seq-len', '16'],
      ...['--out', merged],
    ]);
    expect(full.code, full.stderr).toBe(0);
    const mergedConfig = JSON.parse(await readFile(join(merged, 'config.json'), 'utf8'));
    expect(mergedConfig.quantization_config).toBeUndefined();
    expect(mergedConfig.model_type).toBe('llama');
    expect(Number.isFinite(await loss(['--model', merged]))).toBe(true);
    // The adapter applies to the quantized folder as to the original (PEFT adapters are for the original base).
    expect(await loss(['--model', out, '--adapter', adapter])).toBeCloseTo(
      await loss(['--model', LLAMA, '--weights', 'nf4', '--adapter', adapter]),
      6,
    );
  }, 120_000);
});
