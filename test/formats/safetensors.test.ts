import { describe, expect, it } from 'vitest';
import {
  loadTensor,
  memoryStore,
  openCheckpoint,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type NamedTensor,
} from '../../src/model/formats/safetensors';
import { f16BitsToF32 } from '../../src/gpu/half';
import { bytesSource, memoryDir } from '../../src/model/formats/source';
import { nodeDir, nodeFile } from '../../src/model/formats/node-source';
import { blobSource, filesDir } from '../../src/model/formats/blob-source';
import { Rng } from '../../src/util/random';
import { readFile } from 'node:fs/promises';

const FIXTURES = 'test/fixtures/models';

/** A safetensors file from a raw header (object or literal text) and data bytes; `lengthField` overrides N. */
function rawFile(header: object | string, data: Uint8Array | number, lengthField?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(text);
  const dataBytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + headerBytes.length + dataBytes.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(dataBytes, 8 + headerBytes.length);
  return out;
}

const open = (bytes: Uint8Array, name = 'bad.safetensors') => readSafetensors(bytesSource(name, bytes));

function randomTensor(rng: Rng, name: string, shape: number[]): NamedTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape, data: rng.normals(n) };
}

describe('safetensors writer', () => {
  const rng = new Rng(7);
  const tensors = [
    randomTensor(rng, 'zeta.weight', [3, 5]),
    randomTensor(rng, 'alpha.bias', [7]),
    randomTensor(rng, 'scalar', []),
    randomTensor(rng, 'empty', [0, 4]),
    randomTensor(rng, 'mid.weight', [2, 3, 1]),
  ];

  it('round-trips tensors exactly, sorted by name, with format metadata', async () => {
    const bytes = writeSafetensors(tensors);
    const { tensors: infos, metadata, dataStart } = await open(bytes, 'out.safetensors');
    expect(metadata).toEqual({ format: 'pt' });
    expect(dataStart % 8).toBe(0);
    expect([...infos.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
    // Data is laid out in name order with no holes.
    const byOffset = [...infos.values()].sort((a, b) => a.begin - b.begin || a.end - b.end).map((t) => t.name);
    expect(byOffset.filter((n) => n !== 'empty')).toEqual(['alpha.bias', 'mid.weight', 'scalar', 'zeta.weight']);
    for (const t of tensors) {
      const info = infos.get(t.name)!;
      expect(info.dtype).toBe('F32');
      expect(info.shape).toEqual(t.shape);
      expect(Array.from(await loadTensor(info))).toEqual(Array.from(t.data));
    }
  });

  it('pads the header with spaces to a multiple of 8 and tiles the data section', () => {
    for (let extra = 0; extra < 9; extra++) {
      const bytes = writeSafetensors([{ name: 'x'.repeat(extra + 1), shape: [1], data: new Float32Array([1]) }]);
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(header.startsWith('{')).toBe(true);
      expect(header.trimEnd().endsWith('}')).toBe(true);
      expect(/^ *$/.test(header.slice(header.trimEnd().length))).toBe(true);
      expect(bytes.length).toBe(8 + n + 4);
    }
  });

  it('writes custom metadata and rejects bad input', async () => {
    const bytes = writeSafetensors([{ name: 'a', shape: [2], data: new Float32Array([1, 2]) }], {
      format: 'pt',
      note: 'hi',
    });
    expect((await open(bytes)).metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(() => writeSafetensors([{ name: 'a', shape: [3], data: new Float32Array(2) }])).toThrow(
      /"a" has shape \[3\] but 2 values/,
    );
    expect(() =>
      writeSafetensors([
        { name: 'a', shape: [1], data: new Float32Array(1) },
        { name: 'a', shape: [1], data: new Float32Array(1) },
      ]),
    ).toThrow(/"a" is given twice/);
  });

  it('memoryStore serves tensors by name', async () => {
    const store = await memoryStore('mem', tensors);
    expect(store.names()).toEqual([...tensors.map((t) => t.name)].sort());
    expect(Array.from(await store.load('alpha.bias'))).toEqual(Array.from(tensors[1].data));
    await expect(store.load('nope')).rejects.toThrow(/mem has no tensor "nope"/);
  });
});

describe('safetensors reader rejects corrupt files with specific errors', () => {
  const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

  it('too small', async () => {
    await expect(open(new Uint8Array(5))).rejects.toThrow(/bad\.safetensors: 5 bytes is too small/);
  });

  it('header length past the end of the file', async () => {
    await expect(open(rawFile({ a: f32([1], 0, 4) }, 4, 1n << 40n))).rejects.toThrow(
      /bad\.safetensors: header length 1099511627776 goes past the end of the file/,
    );
  });

  it('truncated file', async () => {
    const good = writeSafetensors([
      { name: 'first', shape: [4], data: new Float32Array(4) },
      { name: 'second', shape: [2, 2], data: new Float32Array(4) },
    ]);
    await expect(open(good.subarray(0, good.length - 4), 'cut.safetensors')).rejects.toThrow(
      /cut\.safetensors: tensor "second": data_offsets \[16, 32\] are out of range \(the data section has 28 bytes\).*truncated/,
    );
  });

  it('offsets out of range', async () => {
    await expect(open(rawFile({ w: f32([2], 8, 16) }, 8))).rejects.toThrow(
      /tensor "w": data_offsets \[8, 16\] are out of range/,
    );
  });

  it('invalid JSON, non-object JSON, bad entries', async () => {
    await expect(open(rawFile('{"a": ', 0))).rejects.toThrow(/header is not valid JSON/);
    await expect(open(rawFile('[1, 2]', 0))).rejects.toThrow(/header must be a JSON object of tensors, got an array/);
    await expect(open(rawFile({ w: [1] }, 0))).rejects.toThrow(/tensor "w" must be an object/);
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4))).rejects.toThrow(
      /tensor "w" has invalid shape/,
    );
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4))).rejects.toThrow(
      /tensor "w" has invalid data_offsets/,
    );
    await expect(open(rawFile({ __metadata__: { format: 1 } }, 0))).rejects.toThrow(
      /__metadata__\.format must be a string/,
    );
  });

  it('unknown dtype', async () => {
    await expect(open(rawFile({ w: { dtype: 'F7', shape: [1], data_offsets: [0, 4] } }, 4))).rejects.toThrow(
      /bad\.safetensors: tensor "w" has unknown dtype "F7" \(expected one of BOOL, .*F32/,
    );
  });

  it('size that does not match shape x dtype', async () => {
    await expect(open(rawFile({ w: f32([2, 2], 0, 12) }, 12))).rejects.toThrow(
      /tensor "w": data_offsets \[0, 12\] span 12 bytes, but shape \[2, 2\] of F32 needs 16/,
    );
  });

  it('holes, overlaps and trailing bytes', async () => {
    await expect(open(rawFile({ a: f32([2], 0, 8), b: f32([2], 12, 20) }, 20))).rejects.toThrow(
      /4 unused bytes \(a hole\) after tensor "a", before tensor "b" at 12/,
    );
    await expect(open(rawFile({ b: f32([2], 4, 12) }, 12))).rejects.toThrow(
      /4 unused bytes \(a hole\) at the start of the data section/,
    );
    await expect(open(rawFile({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12))).rejects.toThrow(
      /tensor "b" .* overlaps tensor "a"/,
    );
    await expect(open(rawFile({ a: f32([2], 0, 8) }, 12))).rejects.toThrow(/4 bytes after the last tensor/);
  });

  it('duplicate tensor names', async () => {
    const text =
      '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}';
    await expect(open(rawFile(text, 4))).rejects.toThrow(/tensor "a" appears twice/);
    // Nested keys with the same name are fine.
    const nested = '{"__metadata__": {"x": "1"}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}';
    expect((await open(rawFile(nested, 4))).tensors.has('x')).toBe(true);
  });
});

describe('dtype widening', () => {
  function fileOf(dtype: string, words: number[], bytesPer: number): Uint8Array {
    const data = new Uint8Array(words.length * bytesPer);
    const view = new DataView(data.buffer);
    words.forEach((w, i) =>
      bytesPer === 2 ? view.setUint16(i * 2, w, true) : view.setBigInt64(i * 8, BigInt(w), true),
    );
    return rawFile({ t: { dtype, shape: [words.length], data_offsets: [0, data.length] } }, data);
  }

  it('F16 is exact on known values', async () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504],
      [0x0400, 2 ** -14],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
    ];
    const { tensors } = await open(
      fileOf(
        'F16',
        cases.map((c) => c[0]),
        2,
      ),
    );
    const values = await loadTensor(tensors.get('t')!);
    expect(Array.from(values)).toEqual(cases.map((c) => c[1]));
    const special = await loadTensor((await open(fileOf('F16', [0x7e00, 0x8000], 2))).tensors.get('t')!);
    expect(Number.isNaN(special[0])).toBe(true);
    expect(Object.is(special[1], -0)).toBe(true);
    for (const [h, v] of cases) expect(f16BitsToF32(h)).toBe(v);
  });

  it('BF16 is exact on known values', async () => {
    const cases: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x4049, 3.140625],
      [0x7f7f, 3.3895313892515355e38],
      [0x0080, 2 ** -126],
      [0x0001, 2 ** -133],
      [0x7f80, Infinity],
      [0xff80, -Infinity],
      [0x3dcd, 0.10009765625],
    ];
    const { tensors } = await open(
      fileOf(
        'BF16',
        cases.map((c) => c[0]),
        2,
      ),
    );
    expect(Array.from(await loadTensor(tensors.get('t')!))).toEqual(cases.map((c) => c[1]));
  });

  it('accepts I64 in a header but refuses it as weights', async () => {
    const { tensors } = await open(fileOf('I64', [1, 2, 3], 8), 'ids.safetensors');
    const info = tensors.get('t')!;
    expect(info.dtype).toBe('I64');
    expect(info.shape).toEqual([3]);
    await expect(loadTensor(info)).rejects.toThrow(
      /ids\.safetensors: tensor "t" has dtype I64; only F32, F16, BF16 can be loaded/,
    );
  });
});

describe('checkpoints', () => {
  const rng = new Rng(11);
  const a = randomTensor(rng, 'model.a.weight', [3, 2]);
  const b = randomTensor(rng, 'model.b.weight', [5]);
  const c = randomTensor(rng, 'lm_head.weight', [2, 2]);

  it('opens a sharded checkpoint through its index', async () => {
    const index = {
      metadata: { total_size: 60 },
      weight_map: {
        'model.a.weight': 'model-00001-of-00002.safetensors',
        'model.b.weight': 'model-00002-of-00002.safetensors',
        'lm_head.weight': 'model-00002-of-00002.safetensors',
      },
    };
    const dir = memoryDir('sharded', {
      'config.json': '{}',
      'model.safetensors.index.json': JSON.stringify(index),
      'model-00001-of-00002.safetensors': writeSafetensors([a]),
      'model-00002-of-00002.safetensors': writeSafetensors([b, c]),
    });
    const store = await openCheckpoint(dir);
    expect(store.names()).toEqual(['lm_head.weight', 'model.a.weight', 'model.b.weight']);
    expect(store.info('model.b.weight')!.source.name).toBe('sharded/model-00002-of-00002.safetensors');
    for (const t of [a, b, c]) expect(Array.from(await store.load(t.name))).toEqual(Array.from(t.data));
  });

  it('reports a missing shard and a tensor missing from its shard', async () => {
    const index = (map: Record<string, string>) => JSON.stringify({ weight_map: map });
    const missingShard = memoryDir('m', {
      'model.safetensors.index.json': index({ 'model.a.weight': 'gone.safetensors' }),
    });
    await expect(openCheckpoint(missingShard)).rejects.toThrow(
      /m\/model\.safetensors\.index\.json names shard gone\.safetensors, which is not in m/,
    );
    const wrongShard = memoryDir('w', {
      'model.safetensors.index.json': index({ 'model.b.weight': 's1.safetensors' }),
      's1.safetensors': writeSafetensors([a]),
    });
    await expect(openCheckpoint(wrongShard)).rejects.toThrow(
      /maps tensor "model\.b\.weight" to s1\.safetensors, but that shard has no such tensor/,
    );
  });

  it('explains folders without safetensors', async () => {
    await expect(openCheckpoint(memoryDir('pt', { 'pytorch_model.bin': new Uint8Array(4) }))).rejects.toThrow(
      /pt has no model\.safetensors or model\.safetensors\.index\.json; pytorch_model\.bin are PyTorch pickles/,
    );
  });

  it('reads the fixtures from disk lazily (Node sources)', async () => {
    const store = await openCheckpoint(await nodeDir(`${FIXTURES}/tiny-gpt2-vocab100_hf`));
    expect(store.info('transformer.wte.weight')!.shape).toEqual([100, 16]);
    const wte = await store.load('transformer.wte.weight');
    expect(wte.length).toBe(1600);
    // Same values as a whole-file read.
    const whole = await readFile(`${FIXTURES}/tiny-gpt2-vocab100_hf/model.safetensors`);
    const info = store.info('transformer.wte.weight')!;
    const expected = new Float32Array(whole.buffer.slice(whole.byteOffset + info.begin, whole.byteOffset + info.end));
    expect(Array.from(wte)).toEqual(Array.from(expected));
    const file = await nodeFile(`${FIXTURES}/tiny-gpt2-vocab100_hf/model.safetensors`);
    await expect(file.read(file.size - 2, 4)).rejects.toThrow(/goes past the end of the file/);
  });

  it('reads Blob/File sources the same way', async () => {
    const dirPath = `${FIXTURES}/tiny-random-LlamaForCausalLM_hf`;
    const names = ['config.json', 'model.safetensors'];
    const files = await Promise.all(names.map(async (n) => new File([await readFile(`${dirPath}/${n}`)], n)));
    const dir = filesDir(files, 'dropped');
    expect(dir.list()).toEqual(names);
    expect(JSON.parse(await dir.text('config.json')).model_type).toBe('llama');
    const fromBlob = await openCheckpoint(dir);
    const fromDisk = await openCheckpoint(await nodeDir(dirPath));
    expect(fromBlob.names()).toEqual(fromDisk.names());
    const name = 'model.layers.1.self_attn.q_proj.weight';
    expect(Array.from(await fromBlob.load(name))).toEqual(Array.from(await fromDisk.load(name)));
    const header = await readSafetensorsHeader(blobSource(files[1]));
    expect(header.get(name)!.source.name).toBe('model.safetensors');
  });
});
