/**
 * Fuzzing llama2.c checkpoints and tokenizer .bin files: generated headers (zero, negative and huge fields, files of
 * the right size and not), the real stories260K with its header and tokenizer mutated through the model-folder
 * loader. Each input loads a consistent model or fails naming the file.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadModelDir } from '../../src/engine/load-model';
import { llama2cFileSize, readLlama2c, readLlama2cTokenizer, type Llama2cModel } from '../../src/model/formats/llama2c';
import { llama2cToHfTokenizer } from '../../src/tokenizer/llama2c-to-hf';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import {
  applyByteMutations,
  byteMutations,
  expectReadsInside,
  fuzz,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  loadsOrRefuses,
  recordingDir,
  recordingSource,
} from '../helpers/fuzz';

const DIR = 'test/fixtures/models/stories260K_llama2c';
const MODEL = new Uint8Array(readFileSync(`${DIR}/stories260K.bin`));
const TOKENIZER = new Uint8Array(readFileSync(`${DIR}/tok512.bin`));
const allocationLimit = (size: number) => 8 * size + (1 << 20);

/** A header whose shapes divide (small: files of a few KB), then maybe one field set to what a broken header holds. */
const headerFields = fc
  .record({
    heads: fc.integer({ min: 1, max: 3 }),
    kvDivisor: fc.constantFrom(1, 2, 3),
    halfHead: fc.integer({ min: 1, max: 2 }),
    hidden: fc.integer({ min: 1, max: 8 }),
    layers: fc.integer({ min: 1, max: 2 }),
    vocab: fc.integer({ min: -8, max: 8 }).filter((v) => v !== 0),
    seqLen: fc.integer({ min: 1, max: 4 }),
    broken: fc.option(
      fc.tuple(fc.nat(6), fc.constantFrom(0, -1, -2, 3, 5, -(2 ** 31), 2 ** 31 - 1, 0x616b3432, 1 << 20)),
      { nil: undefined },
    ),
  })
  .map((h) => {
    const kvHeads = h.heads % h.kvDivisor === 0 ? h.heads / h.kvDivisor : h.heads;
    const fields = [h.heads * 2 * h.halfHead, h.hidden, h.layers, h.heads, kvHeads, h.vocab, h.seqLen];
    if (h.broken) fields[h.broken[0]] = h.broken[1];
    return fields;
  });

function verifyModel(model: Llama2cModel): void {
  const { header, spec, tensors } = model;
  for (const v of [header.dim, header.hiddenDim, header.layers, header.heads, header.kvHeads, header.vocabSize])
    expect(Number.isInteger(v) && v > 0).toBe(true);
  expect(spec.headDim * spec.heads).toBe(spec.hidden);
  for (const t of tensors) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
}

describe('fuzz: llama2.c', () => {
  it('generated headers: files of the size the header implies load, others are refused by name', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.record({
      fields: headerFields,
      sizeDelta: fc.oneof(fc.constant(0), fc.integer({ min: -8, max: 8 })),
    });
    const tally = await fuzz('llama2c generated headers', cases, fuzzRuns(300), async ({ fields, sizeDelta }) => {
      const header = new Uint8Array(28);
      const view = new DataView(header.buffer);
      fields.forEach((v, i) => view.setInt32(i * 4, v, true));
      // The size the header implies when it is small enough to build (else a few bytes past the header).
      let size = 28 + Math.abs(sizeDelta);
      try {
        const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = fields;
        const implied = llama2cFileSize({
          dim,
          hiddenDim: hidden,
          layers,
          heads,
          kvHeads,
          vocabSize: Math.abs(vocab),
          sharedClassifier: vocab > 0,
          seqLen,
        });
        if (Number.isSafeInteger(implied) && implied > 28 && implied < 1 << 20)
          size = Math.max(28, implied + sizeDelta);
      } catch {
        // Shapes that do not divide: the parser must refuse them by itself.
      }
      const bytes = new Uint8Array(size);
      bytes.set(header);
      const src = recordingSource('gen.bin', bytes);
      const outcome = await guardAllocations(allocationLimit(size), () =>
        loadsOrRefuses(() => readLlama2c(src), ['gen.bin'], { verify: verifyModel }),
      );
      expectReadsInside([src]);
      return outcome;
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('stories260K with a mutated header or tokenizer, through the model-folder loader', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.record({
      model: fc.option(byteMutations(MODEL.length, [0, 28], 2), { nil: undefined }),
      tokenizer: fc.option(byteMutations(TOKENIZER.length, [0, 200], 3), { nil: undefined }),
    });
    const tally = await fuzz('llama2c stories260K', cases, fuzzRuns(40, 0.05), async (c) => {
      const model = c.model ? applyByteMutations(MODEL, c.model) : MODEL;
      const tok = c.tokenizer ? applyByteMutations(TOKENIZER, c.tokenizer) : TOKENIZER;
      const dir = recordingDir('stories', { 'stories260K.bin': model, 'tok512.bin': tok });
      const outcome = await guardAllocations(allocationLimit(MODEL.length + tok.length), () =>
        loadsOrRefuses(() => loadModelDir(dir), ['stories', 'tokenizer .bin', 'llama2.c tokenizer'], {
          verify(loaded) {
            expect(loaded.tokenizer.vocabSize).toBeLessThanOrEqual(loaded.spec.vocabSize);
            expect(loaded.tokenizer.decode(loaded.tokenizer.encode('Once upon a time'))).toBe('Once upon a time');
          },
        }),
      );
      expectReadsInside(dir.sources);
      return outcome;
    });
    expect(tally.loaded).toBeGreaterThan(0);
  });

  it('tokenizer .bin files with mutated bytes parse to a usable tokenizer or are refused by name', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.record({
      mutations: byteMutations(TOKENIZER.length, [0, 400], 4),
      vocabSize: fc.option(fc.constantFrom(512, 3, 0, 600), { nil: undefined }),
    });
    const tally = await fuzz('llama2c tokenizer', cases, fuzzRuns(300), async ({ mutations, vocabSize }) => {
      const bytes = applyByteMutations(TOKENIZER, mutations);
      return guardAllocations(allocationLimit(bytes.length), () =>
        loadsOrRefuses(
          () => loadTokenizer(llama2cToHfTokenizer(readLlama2cTokenizer(bytes, 'tok.bin', vocabSize))),
          ['tok.bin', 'tokenizer.json', 'llama2.c tokenizer'],
          { verify: (tok) => void tok.decode(tok.encode('hello world')) },
        ),
      );
    });
    expect(tally.loaded).toBeGreaterThan(0);
  });
});
