/**
 * Fuzzing safetensors reading: generated files (every dtype, odd shapes, shuffled header order) with their header
 * JSON and bytes mutated, real checkpoints with bytes mutated, and sharded folders with a mutated index. Each input
 * loads (and then its tensors tile the data section and decode to numel values) or fails naming the file.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { roundToHalf } from '../../src/gpu/half';
import {
  DTYPE_BYTES,
  loadTensor,
  openCheckpoint,
  readSafetensors,
  WEIGHT_DTYPES,
  writeSafetensors,
  type Dtype,
  type NamedTensor,
  type SafetensorsHeader,
} from '../../src/model/formats/safetensors';
import {
  applyByteMutations,
  applyJsonMutations,
  byteMutations,
  expectReadsInside,
  fuzz,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  jsonMutations,
  loadsOrRefuses,
  recordingDir,
  recordingSource,
  utf8,
} from '../helpers/fuzz';

const HEADER_KEYS = ['dtype', 'shape', 'data_offsets', '__metadata__', 'format'];
/** Decoding widens to f32 (2x for 16-bit dtypes, plus BF16's bit buffer); the rest is the f16 table and slack. */
const allocationLimit = (size: number) => 8 * size + (1 << 20);

interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
}

const tensorSpec: fc.Arbitrary<TensorSpec> = fc.record({
  name: fc.oneof(fc.constantFrom('w', 'model.embed_tokens.weight', 'a.b.c'), fc.string({ minLength: 1, maxLength: 6 })),
  dtype: fc.constantFrom(...(Object.keys(DTYPE_BYTES) as Dtype[])),
  shape: fc.array(fc.nat(5), { maxLength: 3 }),
});

interface FileSpec {
  tensors: TensorSpec[];
  metadata: Record<string, string> | null;
  reversed: boolean;
  padding: number;
}

const fileSpec: fc.Arbitrary<FileSpec> = fc.record({
  tensors: fc.uniqueArray(tensorSpec, { selector: (t) => t.name, maxLength: 5 }),
  metadata: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 })),
  reversed: fc.boolean(),
  padding: fc.nat(9),
});

/** A header object and the data section a generated file has (tensors packed in list order). */
function generatedHeader(spec: FileSpec): { header: Record<string, unknown>; data: number } {
  const header: Record<string, unknown> = {};
  if (spec.metadata) header.__metadata__ = spec.metadata;
  let offset = 0;
  const entries: [string, unknown][] = [];
  for (const t of spec.tensors.filter((t) => t.name !== '__metadata__')) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    entries.push([t.name, { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] }]);
    offset += bytes;
  }
  for (const [k, v] of spec.reversed ? entries.reverse() : entries)
    Object.defineProperty(header, k, { value: v, enumerable: true });
  return { header, data: offset };
}

/** The file: u64 header length, header JSON padded with spaces, data bytes (a counting pattern). */
function fileBytes(header: unknown, data: number, padding: number): Uint8Array {
  const json = utf8(JSON.stringify(header) + ' '.repeat(padding));
  const out = new Uint8Array(8 + json.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < data; i++) out[8 + json.length + i] = (i * 37) & 0xff;
  return out;
}

/** What a loaded header must satisfy, and every weight tensor decoding to numel values within the file. */
async function verifyHeader(parsed: SafetensorsHeader, size: number, file: string): Promise<void> {
  const tensors = [...parsed.tensors.values()];
  let covered = 0;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    expect(t.end - t.begin, t.name).toBe(numel * DTYPE_BYTES[t.dtype]);
    expect(t.begin).toBeGreaterThanOrEqual(parsed.dataStart);
    expect(t.end).toBeLessThanOrEqual(size);
    covered += t.end - t.begin;
    if (WEIGHT_DTYPES.includes(t.dtype)) {
      expect((await loadTensor(t)).length).toBe(numel);
    } else {
      await expect(loadTensor(t)).rejects.toThrow(file);
    }
  }
  // The tensors tile the data section: nothing unread, nothing read twice.
  expect(covered).toBe(size - parsed.dataStart);
}

async function checkFile(bytes: Uint8Array, file = 'fuzz.safetensors'): Promise<'loaded' | 'refused'> {
  const src = recordingSource(file, bytes);
  const outcome = await guardAllocations(allocationLimit(bytes.length), () =>
    loadsOrRefuses(() => readSafetensors(src), [file], { verify: (h) => verifyHeader(h, bytes.length, file) }),
  );
  expectReadsInside([src]);
  return outcome;
}

describe('fuzz: safetensors', () => {
  it('generated files load with every tensor in place', { timeout: FUZZ_TIMEOUT }, async () => {
    const tally = await fuzz('safetensors generated', fileSpec, fuzzRuns(200, 0.5), async (spec) => {
      const { header, data } = generatedHeader(spec);
      const outcome = await checkFile(fileBytes(header, data, spec.padding));
      // Unmutated generated files are valid: refusing one is a bug too.
      if (outcome !== 'loaded') throw new Error('a valid generated file was refused');
      return outcome;
    });
    expect(tally.loaded).toBe(tally.cases);
  });

  it('written tensors read back as written (F32 exactly, F16/BF16 rounded once)', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const tensor = fc.record({
      name: fc.string({ minLength: 1, maxLength: 5 }).filter((n) => n !== '__metadata__'),
      dtype: fc.constantFrom('F32' as const, 'F16' as const, 'BF16' as const),
      values: fc.array(fc.float({ noNaN: true, min: -1e4, max: 1e4 }), { maxLength: 12 }),
    });
    await fuzz(
      'safetensors round trip',
      fc.uniqueArray(tensor, { selector: (t) => t.name, maxLength: 4 }),
      fuzzRuns(100),
      async (list) => {
        const tensors: NamedTensor[] = list.map((t) => ({
          name: t.name,
          dtype: t.dtype,
          shape: [t.values.length],
          data: Float32Array.from(t.values),
        }));
        const parsed = await readSafetensors(recordingSource('rt.safetensors', writeSafetensors(tensors)));
        for (const t of tensors) {
          const want = t.dtype === 'F32' ? t.data : roundToHalf(t.data, t.dtype === 'F16' ? 'f16' : 'bf16');
          expect(Array.from(await loadTensor(parsed.tensors.get(t.name)!))).toEqual(Array.from(want));
        }
        return 'loaded';
      },
    );
  });

  it('generated files with a mutated header JSON or mutated bytes load consistently or are refused by name', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const mutated = fileSpec.chain((spec) => {
      const { header, data } = generatedHeader(spec);
      const headerEnd = 8 + utf8(JSON.stringify(header)).length + spec.padding;
      return fc.record({
        header: fc.constant(header),
        data: fc.constant(data),
        padding: fc.constant(spec.padding),
        json: fc.option(jsonMutations(header, HEADER_KEYS, 3), { nil: undefined }),
        bytes: fc.option(byteMutations(headerEnd + data, [0, headerEnd], 3), { nil: undefined }),
      });
    });
    const tally = await fuzz('safetensors mutated', mutated, fuzzRuns(400), async (c) => {
      const header = c.json ? applyJsonMutations(c.header, c.json) : c.header;
      const bytes = fileBytes(header, c.data, c.padding);
      return checkFile(c.bytes ? applyByteMutations(bytes, c.bytes) : bytes);
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('real checkpoints and adapters with mutated bytes', { timeout: FUZZ_TIMEOUT }, async () => {
    const fixtures = [
      'test/fixtures/models/tiny-gpt2-vocab100_hf/model.safetensors',
      'test/fixtures/hf-golden/adapters/llama_gqa/lora_pattern/adapter_model.safetensors',
      'test/fixtures/hf-golden/adapters/gpt2/adalora/adapter_model.safetensors',
    ].map((path) => new Uint8Array(readFileSync(path)));
    // Cases name a fixture by index: a case stays small to print (and to keep for the hang watchdog).
    const cases = fc.nat(fixtures.length - 1).chain((i) => {
      const headerEnd = 8 + Number(new DataView(fixtures[i].buffer).getBigUint64(0, true));
      return fc.tuple(fc.constant(i), byteMutations(fixtures[i].length, [0, headerEnd]));
    });
    const tally = await fuzz('safetensors real files', cases, fuzzRuns(200), ([i, mutations]) =>
      checkFile(applyByteMutations(fixtures[i], mutations)),
    );
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('sharded folders with a mutated index load every mapped tensor or are refused by name', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const shard = (names: string[]) =>
      writeSafetensors(names.map((name, i) => ({ name, shape: [2, i + 1], data: new Float32Array(2 * (i + 1)) })));
    const shards = { 's-1.safetensors': shard(['a', 'b']), 's-2.safetensors': shard(['c']) };
    const index = {
      metadata: { total_size: 40 },
      weight_map: { a: 's-1.safetensors', b: 's-1.safetensors', c: 's-2.safetensors' },
    };
    const keys = ['weight_map', 'metadata', 'a', 'b', 'c', 's-1.safetensors', 's-2.safetensors'];
    const cases = fc.record({
      json: jsonMutations(index, keys, 3),
      shard: fc.option(byteMutations(shards['s-2.safetensors'].length, [0, 80], 2), { nil: undefined }),
      text: fc.option(byteMutations(JSON.stringify(index).length, undefined, 2), { nil: undefined }),
    });
    const tally = await fuzz('safetensors sharded index', cases, fuzzRuns(200), async (c) => {
      let indexBytes = utf8(JSON.stringify(applyJsonMutations(index, c.json)));
      if (c.text) indexBytes = applyByteMutations(indexBytes, c.text);
      const s2 = c.shard ? applyByteMutations(shards['s-2.safetensors'], c.shard) : shards['s-2.safetensors'];
      const dir = recordingDir('sharded', {
        'model.safetensors.index.json': indexBytes,
        's-1.safetensors': shards['s-1.safetensors'],
        's-2.safetensors': s2,
      });
      const outcome = await guardAllocations(1 << 20, () =>
        loadsOrRefuses(() => openCheckpoint(dir), ['sharded'], {
          async verify(store) {
            for (const name of store.names()) expect((await store.load(name)).length).toBeGreaterThanOrEqual(0);
          },
        }),
      );
      expectReadsInside(dir.sources);
      return outcome;
    });
    expect(tally.loaded).toBeGreaterThan(0);
  });
});
