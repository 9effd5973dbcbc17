/**
 * bitsandbytes folders (src/quant/bnb-format.ts): the quant state JSON and tensors against bitsandbytes run on torch
 * (test/fixtures/bnb-torch), config.json's quantization_config as transformers writes it, and folders the writer
 * makes from the tiny fixture models read back by readBnb4bit with identical dequantized values.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/model/config';
import {
  loadTensor,
  openCheckpoint,
  writeSafetensors,
  type RawTensor,
  type WeightStore,
} from '../../src/model/formats/safetensors';
import { memoryDir, type DirSource } from '../../src/model/formats/source';
import { allLinears } from '../../src/model/layout';
import { dequantize4bit, quantize4bit, type QuantType4 } from '../../src/quant/bnb4';
import {
  bnb4bitTensors,
  bnbInt8Tensors,
  bnbQuantizationConfig,
  bnbQuantizedWeights,
  parseBnbQuantizationConfig,
  quantizeModelFolder,
  quantStateJson,
  readBnb4bit,
  readBnbWeight,
  type BnbFormat,
  type QuantizeFolderOptions,
} from '../../src/quant/bnb-format';
import { dequantizeInt8Rows, quantizeInt8Rows } from '../../src/quant/int8';
import { dequantizeLayout } from '../../src/quant/layout';
import { dumpsPythonJson } from '../../src/quant/python-float';
import { bytesOf, f32Of, torchCases } from './bnb-torch-cases';

const MODELS = 'test/fixtures/hf-golden/models';

function fixtureDir(model: string): DirSource {
  const files: Record<string, Uint8Array> = {};
  for (const f of [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'tokenizer.json',
    'tokenizer_config.json',
  ]) {
    files[f] = new Uint8Array(readFileSync(`${MODELS}/${model}/${f}`));
  }
  return memoryDir(model, files);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function quantizedFolder(model: string, options: QuantizeFolderOptions) {
  const result = await quantizeModelFolder(fixtureDir(model), options);
  const dir = memoryDir(`${model}-${options.to}`, { ...result.files, 'model.safetensors': concat(result.weights) });
  return { result, dir, store: await openCheckpoint(dir) };
}

async function storeOf(tensors: RawTensor[]): Promise<WeightStore> {
  return openCheckpoint(memoryDir('synthetic', { 'model.safetensors': writeSafetensors(tensors) }));
}

const f32Bytes = (a: Float32Array) => new Uint8Array(Float32Array.from(a).buffer);

describe('quant state and tensors, against bitsandbytes on torch', () => {
  it('the quant state JSON is json.dumps of QuantState.as_dict’s items, nested_offset in Python’s repr', () => {
    for (const c of torchCases.four_bit) {
      const offset = c.offset ? f32Of(c.offset)[0] : undefined;
      const json = quantStateJson({
        quantType: c.quant_type,
        blocksize: c.blocksize,
        dtype: c.dtype,
        shape: c.shape,
        nested: offset !== undefined ? { blocksize: 256, offset } : undefined,
      });
      expect(json).toBe(c.quant_state);
    }
    expect(
      quantStateJson({
        quantType: 'nf4',
        blocksize: 64,
        dtype: 'bfloat16',
        shape: [64, 32],
        nested: { blocksize: 256, offset: Math.fround(1.25e-5) },
      }),
    ).toBe(
      '{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [64, 32], "nested_blocksize": 256, ' +
        '"nested_dtype": "float32", "nested_offset": 1.249999968422344e-05}',
    );
  });

  it('a 4-bit weight’s tensors: the names, dtypes, shapes and bytes bitsandbytes saves', () => {
    for (const c of torchCases.four_bit.filter((x) => x.input)) {
      const q = quantize4bit(f32Of(c.input!), {
        blocksize: c.blocksize,
        quantType: c.quant_type,
        doubleQuant: c.double_quant,
        nestedMap: f32Of(torchCases.dynamic_map),
      });
      const tensors = bnb4bitTensors('m.weight', q, c.shape, c.dtype);
      expect(tensors.map((t) => t.name)).toEqual([
        'm.weight',
        ...c.state_keys.map((k) => `m.weight.${k}`).filter((k) => !k.includes('quant_state')),
        `m.weight.quant_state.bitsandbytes__${c.quant_type}`,
      ]);
      const byName = new Map(tensors.map((t) => [t.name, t]));
      expect(byName.get('m.weight')).toMatchObject({ dtype: 'U8', shape: c.codes_shape, bytes: bytesOf(c.codes) });
      expect(byName.get('m.weight.absmax')!.bytes).toEqual(bytesOf(c.absmax));
      expect(byName.get('m.weight.quant_map')!.bytes).toEqual(bytesOf(c.quant_map));
      const state = byName.get(`m.weight.quant_state.bitsandbytes__${c.quant_type}`)!;
      expect(new TextDecoder().decode(state.bytes)).toBe(c.quant_state);
      if (c.double_quant) {
        expect(byName.get('m.weight.nested_absmax')!.bytes).toEqual(bytesOf(c.nested_absmax!));
        expect(byName.get('m.weight.nested_quant_map')!.bytes).toEqual(bytesOf(c.nested_quant_map!));
      }
    }
  });
});

describe('quantization_config', () => {
  it('has BitsAndBytesConfig.to_dict()’s keys in its order', () => {
    const q = bnbQuantizationConfig({ to: 'nf4', computeDtype: 'bfloat16' });
    expect(Object.keys(q)).toEqual([
      'quant_method',
      '_load_in_8bit',
      '_load_in_4bit',
      'llm_int8_threshold',
      'llm_int8_skip_modules',
      'llm_int8_enable_fp32_cpu_offload',
      'llm_int8_has_fp16_weight',
      'bnb_4bit_quant_type',
      'bnb_4bit_use_double_quant',
      'bnb_4bit_compute_dtype',
      'bnb_4bit_quant_storage',
      'load_in_4bit',
      'load_in_8bit',
    ]);
    // config.json is written with sort_keys=True and indent=2, as PretrainedConfig.to_json_string does.
    expect(dumpsPythonJson(q, { indent: 2, sortKeys: true })).toBe(
      [
        '{',
        '  "_load_in_4bit": true,',
        '  "_load_in_8bit": false,',
        '  "bnb_4bit_compute_dtype": "bfloat16",',
        '  "bnb_4bit_quant_storage": "uint8",',
        '  "bnb_4bit_quant_type": "nf4",',
        '  "bnb_4bit_use_double_quant": true,',
        '  "llm_int8_enable_fp32_cpu_offload": false,',
        '  "llm_int8_has_fp16_weight": false,',
        '  "llm_int8_skip_modules": null,',
        '  "llm_int8_threshold": 6.0,',
        '  "load_in_4bit": true,',
        '  "load_in_8bit": false,',
        '  "quant_method": "bitsandbytes"',
        '}',
      ].join('\n'),
    );
    expect(bnbQuantizationConfig({ to: 'int8' })).toMatchObject({
      _load_in_8bit: true,
      _load_in_4bit: false,
      load_in_8bit: true,
      bnb_4bit_quant_type: 'fp4',
      bnb_4bit_use_double_quant: false,
      bnb_4bit_compute_dtype: 'float32',
    });
  });

  it('parsing says what is supported', () => {
    expect(
      parseBnbQuantizationConfig({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'nf4' }),
    ).toMatchObject({
      bits: 4,
      quantType: 'nf4',
    });
    expect(parseBnbQuantizationConfig({ quant_method: 'bitsandbytes', _load_in_8bit: true })).toMatchObject({
      bits: 8,
    });
    expect(() => parseBnbQuantizationConfig({ quant_method: 'gptq', bits: 4 }, 'm/config.json')).toThrow(
      /m\/config.json: quantization_config.quant_method "gptq" is not supported; supported: bitsandbytes .*4-bit .*nf4 or fp4.*8-bit/,
    );
    expect(() =>
      parseBnbQuantizationConfig({ quant_method: 'bitsandbytes', load_in_4bit: true, bnb_4bit_quant_type: 'int4' }),
    ).toThrow(/bnb_4bit_quant_type "int4" is not supported; expected nf4 or fp4/);
    expect(() => parseBnbQuantizationConfig({ quant_method: 'bitsandbytes' })).toThrow(/load_in_4bit and load_in_8bit/);
  });
});

describe('a folder written by quantizeModelFolder, read back', () => {
  const cases: [string, BnbFormat, boolean][] = [
    ['llama_tied_bf16', 'nf4', true],
    ['gpt2', 'nf4', true],
    ['qwen2', 'fp4', false],
    ['gpt2', 'int8', false],
  ];
  for (const [model, to, doubleQuant] of cases) {
    it(`${model} as ${to}${doubleQuant ? ' (double quantization)' : ''}: identical dequantized values`, async () => {
      const source = fixtureDir(model);
      const sourceStore = await openCheckpoint(source);
      const { result, dir, store } = await quantizedFolder(model, { to, doubleQuant });
      const configText = result.files['config.json'] as string;
      const config = JSON.parse(configText);
      const spec = parseConfig(config);
      const original = JSON.parse(readFileSync(`${MODELS}/${model}/config.json`, 'utf8'));
      const { quantization_config: qc, ...rest } = config;
      expect(rest).toEqual(original);
      expect(qc).toMatchObject({
        quant_method: 'bitsandbytes',
        load_in_4bit: to !== 'int8',
        load_in_8bit: to === 'int8',
      });
      if (to !== 'int8') expect(qc).toMatchObject({ bnb_4bit_quant_type: to, bnb_4bit_use_double_quant: doubleQuant });
      expect(configText).toContain('"llm_int8_threshold": 6.0');
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
        expect(result.files[f]).toEqual(new Uint8Array(readFileSync(`${MODELS}/${model}/${f}`)));
      }

      const linears = allLinears(spec);
      const prefix = model === 'gpt2' ? 'transformer.' : '';
      expect(result.quantized.sort()).toEqual(linears.map((l) => prefix + l.weight).sort());
      const loaded = await readBnb4bit(qc, store, { conv1d: (name) => model === 'gpt2' && name.includes('.h.') });
      expect([...loaded.keys()].sort()).toEqual(result.quantized.sort());
      const dtypeName = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' } as const;
      for (const l of linears) {
        const info = sourceStore.info(sourceStore.info(l.weight) ? l.weight : `transformer.${l.weight}`)!;
        const stored = await loadTensor(info);
        // [out, in]: Conv1D weights transposed.
        const w = new Float32Array(stored.length);
        if (l.conv1d)
          for (let r = 0; r < l.in; r++) for (let c = 0; c < l.out; c++) w[c * l.in + r] = stored[r * l.out + c];
        else w.set(stored);
        const rounding = info.dtype === 'BF16' ? 'bf16' : info.dtype === 'F16' ? 'f16' : 'f32';
        const expected =
          to === 'int8'
            ? dequantizeInt8Rows(quantizeInt8Rows(w, l.out, l.in, { rounding }))
            : dequantize4bit(quantize4bit(w, { quantType: to as QuantType4, doubleQuant, rounding }));
        const got = loaded.get(prefix + l.weight)!;
        expect(got.format).toBe(to);
        expect(got.shape).toEqual([l.out, l.in]);
        if (to !== 'int8') expect(got.dtype).toBe(dtypeName[info.dtype as 'F32' | 'BF16' | 'F16']);
        expect(got.warnings).toEqual([]);
        const values = dequantizeLayout(got.layout);
        // Conv1D layouts read back in the module's own [in, out] orientation.
        const logical = new Float32Array(expected.length);
        if (l.conv1d)
          for (let r = 0; r < l.in; r++)
            for (let c = 0; c < l.out; c++) logical[r * l.out + c] = expected[c * l.in + r];
        else logical.set(expected);
        expect(Array.from(values), l.weight).toEqual(Array.from(logical));
      }

      // Everything else is copied in its stored dtype, byte for byte.
      for (const name of result.kept) {
        const from = sourceStore.info(name) ?? sourceStore.info(name.replace(/^transformer\./, ''))!;
        const to_ = store.info(name)!;
        expect([to_.dtype, to_.shape]).toEqual([from.dtype, from.shape]);
        expect(await to_.source.read(to_.begin, to_.end - to_.begin)).toEqual(
          await from.source.read(from.begin, from.end - from.begin),
        );
      }
      expect(result.kept.length + result.quantized.length).toBe(sourceStore.names().length);
      expect(dir.list()).toContain('model.safetensors');
    });
  }

  it('8-bit tensors: weight I8 [out, in], SCB F32 [out], weight_format U8 [] = 0', async () => {
    const { store } = await quantizedFolder('gpt2', { to: 'int8' });
    const w = 'transformer.h.0.attn.c_attn';
    expect(store.info(`${w}.weight`)).toMatchObject({ dtype: 'I8', shape: [192, 64] });
    expect(store.info(`${w}.SCB`)).toMatchObject({ dtype: 'F32', shape: [192] });
    const format = store.info(`${w}.weight_format`)!;
    expect(format).toMatchObject({ dtype: 'U8', shape: [] });
    expect(await format.source.read(format.begin, 1)).toEqual(new Uint8Array([0]));
    expect(bnbQuantizedWeights(store).every((r) => r.bits === 8)).toBe(true);
  });

  it('refuses a model that is quantized already, and a format or block size bitsandbytes lacks', async () => {
    const { result } = await quantizedFolder('llama_tied_bf16', { to: 'nf4' });
    const again = memoryDir('q', { ...result.files, 'model.safetensors': concat(result.weights) });
    await expect(quantizeModelFolder(again, { to: 'nf4' })).rejects.toThrow(/already has a quantization_config/);
    await expect(quantizeModelFolder(fixtureDir('gpt2'), { to: 'q3' as BnbFormat })).rejects.toThrow(
      /format "q3" is not supported; supported: nf4, fp4, int8/,
    );
    await expect(quantizeModelFolder(fixtureDir('gpt2'), { to: 'nf4', blocksize: 48 })).rejects.toThrow(/blocksize 48/);
  });
});

describe('readBnbWeight on hand-made checkpoints', () => {
  const nf4 = (n: number, seed: number) => {
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.1);
    return { x, q: quantize4bit(x) };
  };

  it('odd n, and codes stored as another quant_storage dtype (the same bytes)', async () => {
    const { q } = nf4(7 * 9, 1);
    const tensors = bnb4bitTensors('a.weight', q, [7, 9], 'float32');
    const w = await readBnbWeight(await storeOf(tensors), 'a.weight');
    expect(Array.from(dequantizeLayout(w.layout))).toEqual(Array.from(dequantize4bit(q)));
    expect(w.shape).toEqual([7, 9]);

    const { q: q2 } = nf4(64 * 8, 2); // 256 bytes of codes = 128 bf16 values
    const t2 = bnb4bitTensors('b.weight', q2, [8, 64], 'bfloat16');
    t2[0] = { ...t2[0], dtype: 'BF16', shape: [128, 1] };
    const w2 = await readBnbWeight(await storeOf(t2), 'b.weight');
    expect(Array.from(dequantizeLayout(w2.layout))).toEqual(Array.from(dequantize4bit({ ...q2, rounding: 'bf16' })));
  });

  it('errors name the file and the tensor, and say what is supported', async () => {
    const { q } = nf4(64 * 4, 3);
    const base = bnb4bitTensors('m.weight', q, [4, 64], 'float32');
    const without = (name: string) => base.filter((t) => t.name !== name);
    const withState = (state: Record<string, unknown>) =>
      base.map((t) => {
        if (!t.name.includes('quant_state')) return t;
        const bytes = new TextEncoder().encode(JSON.stringify(state));
        return { ...t, shape: [bytes.length], bytes };
      });
    const good = JSON.parse(new TextDecoder().decode(base.find((t) => t.name.includes('quant_state'))!.bytes));

    await expect(readBnbWeight(await storeOf(without('m.weight.nested_absmax')), 'm.weight')).rejects.toThrow(
      /synthetic\/model.safetensors: m.weight: missing m.weight.nested_absmax/,
    );
    await expect(readBnbWeight(await storeOf(withState({ ...good, shape: [4, 32] })), 'm.weight')).rejects.toThrow(
      /m.weight: holds 128 bytes .* shape \[4, 32\] needs 64 bytes/,
    );
    await expect(readBnbWeight(await storeOf(withState({ ...good, blocksize: 128 })), 'm.weight')).rejects.toThrow(
      /m.weight.absmax has 4 values, but 256 values in blocks of 128 \(the quant state's blocksize\) make 2 blocks/,
    );
    await expect(
      readBnbWeight(await storeOf(withState({ ...good, nested_dtype: 'float16' })), 'm.weight'),
    ).rejects.toThrow(/nested_dtype "float16" is not supported/);
    const int4 = base.map((t) =>
      t.name.includes('quant_state') ? { ...t, name: 'm.weight.quant_state.bitsandbytes__int4' } : t,
    );
    await expect(readBnbWeight(await storeOf(int4), 'm.weight')).rejects.toThrow(
      /quant type "int4" .* is not supported; bitsandbytes 4-bit weights are nf4 or fp4/,
    );
    const plain: RawTensor[] = [
      { name: 'p.weight', dtype: 'F32', shape: [2], bytes: f32Bytes(Float32Array.from([1, 2])) },
    ];
    await expect(readBnbWeight(await storeOf(plain), 'p.weight')).rejects.toThrow(
      /p.weight is not a bitsandbytes-quantized weight/,
    );

    const i8 = bnbInt8Tensors('r.weight', quantizeInt8Rows(Float32Array.from([1, 2, 3, 4]), 2, 2));
    const col = i8.map((t) => (t.name.endsWith('weight_format') ? { ...t, bytes: new Uint8Array([1]) } : t));
    await expect(readBnbWeight(await storeOf(col), 'r.weight')).rejects.toThrow(
      /r.weight_format is 1; only 0 \(row-major\)/,
    );
    await expect(readBnb4bit({ quant_method: 'bitsandbytes', load_in_4bit: true }, await storeOf(i8))).rejects.toThrow(
      /r.weight is 8-bit, but quantization_config says 4-bit/,
    );
  });

  it('warns when a stored quant_map is not bitsandbytes’ codebook, and dequantizes with the codebook as bitsandbytes does', async () => {
    const { q } = nf4(64, 4);
    const tensors = bnb4bitTensors('m.weight', q, [64], 'float32').map((t) =>
      t.name === 'm.weight.quant_map' ? { ...t, bytes: f32Bytes(new Float32Array(16).fill(0.5)) } : t,
    );
    const w = await readBnbWeight(await storeOf(tensors), 'm.weight');
    expect(w.warnings[0]).toMatch(/quant_map differs from bitsandbytes' nf4 codebook/);
    expect(Array.from(dequantizeLayout(w.layout))).toEqual(Array.from(dequantize4bit(q)));
  });
});
