/**
 * Vocabulary shards (issue 17, item 4): an embedding or lm_head larger than one storage binding is stored as row
 * ranges, each its own tensor, and every reader runs per shard. Under a tiny forced limit (UploadOptions.shardBytes:
 * 8 rows per shard, so 29..37-row vocabularies split into 4-5 uneven shards) the model must compute what the
 * unsharded one does: logits (f32 and bf16 storage; tied and untied heads; GPT-2's embedding with positions),
 * LoRA's gradients (finite differences, and equal to the unsharded backward), greedy generation, and an adapter
 * folder's replacements of the embedding and lm_head. Full fine-tuning over a sharded vocabulary is refused.
 */
import { describe, expect, it } from 'vitest';
import { bufferLimitProblem } from '../../src/app/budget';
import { buildMethod } from '../../src/engine/methods';
import { mergedModelFiles } from '../../src/engine/export';
import { embedForward } from '../../src/kernels/embed';
import { embedForwardRef } from '../../src/kernels/embed.ref';
import { expectedTensors, parseConfig, type ModelSpec } from '../../src/model/config';
import { openSafetensors } from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { Generator } from '../../src/model/generate';
import { TransformerGraph } from '../../src/model/transformer';
import { planVocabShards, tensorByteLimit, vocabTensorNames, weightRowsBytes } from '../../src/model/vocab-shards';
import {
  ModelWeights,
  plannedWeightBytes,
  storagePlan,
  type BaseWeightChanges,
  type TensorSource,
  type WeightDType,
} from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { checkModelGradients, randomLora } from '../helpers/gradcheck';
import { runOnce, testGpu } from '../helpers/gpu';
import { bf16Source, logitsOf, randomBatch, randomSource, tinySpec, TINY_CONFIGS } from '../helpers/tiny-models';

/** Rows per shard under the forced limit: no tiny vocabulary (29, 33, 37 rows) is a multiple of it. */
const SHARD_ROWS = 8;

type Model = 'llama' | 'llama-tied' | 'qwen2' | 'gpt2';

function specOf(model: Model): ModelSpec {
  if (model === 'llama-tied')
    return parseConfig({ ...TINY_CONFIGS.llama, tie_word_embeddings: true }, 'llama-tied/config.json');
  return tinySpec(model);
}

/** The random checkpoint, its matrices rounded to bf16 (and declared so) when `dtype` is bf16. */
function sourceOf(spec: ModelSpec, dtype: WeightDType): Promise<TensorSource> {
  return dtype === 'f32' ? Promise.resolve(randomSource(spec, 1)) : bf16Source(spec, 1);
}

/** The same checkpoint uploaded whole and in vocabulary shards of SHARD_ROWS rows. */
async function pair(model: Model, dtype: WeightDType = 'f32') {
  const gpu = await testGpu();
  const spec = specOf(model);
  const source = await sourceOf(spec, dtype);
  const whole = await ModelWeights.upload(gpu, spec, source);
  const shardBytes = weightRowsBytes(SHARD_ROWS, spec.hidden, dtype);
  const sharded = await ModelWeights.upload(gpu, spec, source, { shardBytes });
  for (const name of vocabTensorNames(spec)) {
    expect(whole.isSharded(name)).toBe(false);
    const shards = sharded.vocabShards(name);
    expect(shards.length).toBeGreaterThanOrEqual(4);
    expect(shards.map((s) => s.rows)).toEqual(
      planVocabShards(spec.vocabSize, shardBytes, (r) => weightRowsBytes(r, spec.hidden, dtype)).map((r) => r.rows),
    );
    expect(shards[shards.length - 1].rows).toBeLessThan(SHARD_ROWS);
    for (const s of shards) expect(s.tensor.dtype).toBe(dtype);
  }
  return { gpu, spec, source, whole, sharded };
}

const loraOf = randomLora;

describe('shard planning', () => {
  const f32 = (width: number) => (rows: number) => weightRowsBytes(rows, width, 'f32');
  it('one shard when the tensor fits; else the most rows that fit, rounded down to a multiple of 4, and a shorter last', () => {
    expect(planVocabShards(37, 37 * 64, f32(16))).toEqual([{ rowStart: 0, rows: 37 }]);
    // 11 rows fit 704 bytes of 64-byte rows: 8 per shard.
    expect(planVocabShards(37, 11 * 64, f32(16))).toEqual([
      { rowStart: 0, rows: 8 },
      { rowStart: 8, rows: 8 },
      { rowStart: 16, rows: 8 },
      { rowStart: 24, rows: 8 },
      { rowStart: 32, rows: 5 },
    ]);
    // Fewer than 4 rows fit: as many as do.
    expect(planVocabShards(7, 3 * 64, f32(16)).map((r) => r.rows)).toEqual([3, 3, 1]);
    expect(() => planVocabShards(7, 63, f32(16), 'wte.weight')).toThrow(/wte\.weight: one row takes 64 bytes/);
  });

  it("16-bit rows are sized by whole words, and a storage format's own sizes plug in", () => {
    // Width 5 in bf16: r rows take ceil(5r / 2) words. 9 rows = 92 bytes, 8 rows = 80 bytes.
    const bf16 = (rows: number) => weightRowsBytes(rows, 5, 'bf16');
    const shards = planVocabShards(30, 90, bf16);
    expect(shards.map((r) => r.rows)).toEqual([8, 8, 8, 6]);
    for (const s of shards) expect(bf16(s.rows)).toBeLessThanOrEqual(90);
    // A format with a per-tensor header and per-row scales (as a quantized layout has).
    const quantized = (rows: number) => 64 + rows * (16 + 4);
    const q = planVocabShards(100, 64 + 20 * 20, quantized);
    expect(q.map((r) => r.rows)).toEqual([20, 20, 20, 20, 20]);
    expect(q.every((r) => quantized(r.rows) <= 64 + 20 * 20)).toBe(true);
  });

  it('the per-tensor limit is the smaller of the binding and buffer limits (buffers in 16-byte multiples)', () => {
    expect(tensorByteLimit({ maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 })).toBe(
      128 * 2 ** 20,
    );
    expect(tensorByteLimit({ maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 1000 + 7 })).toBe(1008 - 16);
  });

  it('Qwen2.5-1.5B: the 151936 x 1536 bf16 embedding (467 MB) in 4 shards of at most 128 MiB', () => {
    const limit = 128 * 2 ** 20;
    const shards = planVocabShards(151936, limit, (r) => weightRowsBytes(r, 1536, 'bf16'));
    expect(shards.length).toBe(4);
    expect(shards[0].rows % 4).toBe(0);
    expect(shards.reduce((n, s) => n + s.rows, 0)).toBe(151936);
    for (const s of shards) expect(weightRowsBytes(s.rows, 1536, 'bf16')).toBeLessThanOrEqual(limit);
  });

  it('plannedWeightBytes with a shard limit counts the shards as uploaded (each rounded to whole words)', async () => {
    const gpu = await testGpu();
    // Width 5 in bf16, 3 rows per shard: 15 values, so every shard rounds up to whole words.
    const spec = parseConfig({ ...TINY_CONFIGS.gpt2, n_embd: 5, n_head: 1, vocab_size: 31 }, 'gpt2-narrow/config.json');
    const source = await sourceOf(spec, 'bf16');
    const shardBytes = weightRowsBytes(3, spec.hidden, 'bf16');
    const weights = await ModelWeights.upload(gpu, spec, source, { shardBytes });
    expect(weights.vocabShards('wte.weight').length).toBe(11);
    const planned = plannedWeightBytes(spec, storagePlan(spec, source), shardBytes);
    const uploaded = weights
      .allTensors()
      .reduce((n, t) => n + (t.dtype === 'f32' ? t.size * 4 : Math.ceil(t.size / 2) * 4), 0);
    expect(planned.bytes).toBe(uploaded);
    expect(planned.bytes).toBeGreaterThan(plannedWeightBytes(spec, storagePlan(spec, source)).bytes);
  });
});

describe('the embedding gather over vocabulary shards', () => {
  it('each shard fills the rows whose ids it holds; ids outside every shard read 0 (plus positions)', async () => {
    const gpu = await testGpu();
    const rng = new Rng(5);
    const [rows, width, vocab, maxPos] = [9, 6, 11, 4];
    const ids = [0, 10, 4, 3, 11, 7, 5, 1000, 8];
    const pos = [0, 1, 2, 3, 0, 1, 2, 3, 9];
    const table = rng.normals(vocab * width, 1);
    const posTable = rng.normals(maxPos * width, 1);
    const tokens = gpu.tensor([rows], 'tokens', 'u32');
    gpu.upload(tokens, Uint32Array.from(ids));
    const positions = gpu.tensor([rows], 'positions', 'u32');
    gpu.upload(positions, Uint32Array.from(pos));
    const posT = gpu.tensorFrom(posTable, [maxPos, width], 'wpe');
    const ranges = planVocabShards(vocab, 4 * width * 4, (r) => r * width * 4);
    expect(ranges.map((r) => r.rows)).toEqual([4, 4, 3]);
    const shards = ranges.map((r) =>
      gpu.tensorFrom(table.slice(r.rowStart * width, (r.rowStart + r.rows) * width), [r.rows, width], 'shard'),
    );
    for (const withPositions of [false, true]) {
      const out = gpu.tensor([rows, width], 'out');
      await runOnce(gpu, (list) =>
        ranges.forEach((r, k) =>
          embedForward(list, {
            tokens,
            table: shards[k],
            out,
            rows,
            width,
            vocab: r.rows,
            rowStart: r.rowStart,
            accumulate: k > 0,
            ...(withPositions && k === 0 ? { positions, posTable: posT } : {}),
          }),
        ),
      );
      const want = withPositions
        ? embedForwardRef(ids, table, rows, width, vocab, pos, posTable, maxPos)
        : embedForwardRef(ids, table, rows, width, vocab);
      expect(Array.from(await gpu.read(out))).toEqual(Array.from(want, Math.fround));
    }
  });
});

describe('a sharded vocabulary computes what the whole one does', () => {
  for (const model of ['llama', 'llama-tied', 'qwen2', 'gpt2'] as const) {
    for (const dtype of ['f32', 'bf16'] as const) {
      it(`${model}, ${dtype} storage: the same logits and loss, with and without LoRA`, async () => {
        const { gpu, spec, whole, sharded } = await pair(model, dtype);
        for (const adapters of [undefined, loraOf(gpu, spec)]) {
          const a = await logitsOf(gpu, whole, adapters);
          const b = await logitsOf(gpu, sharded, adapters);
          expect(b.logits).toEqual(a.logits);
          expect(b.loss).toBe(a.loss);
        }
      });
    }
  }

  for (const model of ['llama', 'qwen2', 'gpt2'] as const) {
    it(`${model}: LoRA's gradients through the sharded LM head pass the finite-difference check and equal the whole head's`, async () => {
      const { gpu, spec, whole, sharded } = await pair(model);
      const adapters = loraOf(gpu, spec);
      await checkModelGradients(gpu, sharded, { mode: 'adapters', adapters, logitsChunkRows: 3 });
      // The same backward on both: the head's input gradient summed over shards instead of in one product.
      const grads = async (weights: ModelWeights) => {
        const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 5, train: 'adapters', adapters });
        graph.setBatch(randomBatch(spec, 2, 5, 4));
        graph.backwardList!.run();
        return Promise.all(graph.trainables.map(async (t) => [t.name, await gpu.read(t.grad)] as const));
      };
      const [a, b] = [await grads(whole), await grads(sharded)];
      for (let i = 0; i < a.length; i++) {
        const scale = Math.max(...a[i][1].map(Math.abs));
        const worst = Math.max(...a[i][1].map((x, j) => Math.abs(x - b[i][1][j])));
        expect(worst / scale, a[i][0]).toBeLessThan(1e-5);
      }
    });
  }

  it('greedy generation (KV-cache decoding) picks the same tokens', async () => {
    for (const model of ['llama', 'gpt2'] as const) {
      const { gpu, spec, whole, sharded } = await pair(model, 'bf16');
      const adapters = loraOf(gpu, spec);
      const rng = new Rng(3);
      const prompt = Array.from({ length: 5 }, () => rng.int(spec.vocabSize));
      const [a, b] = [new Generator(gpu, whole, adapters), new Generator(gpu, sharded, adapters)];
      const want = await a.greedy(prompt, { maxNewTokens: 10 });
      expect(new Set(want).size).toBeGreaterThan(1);
      expect(await b.greedy(prompt, { maxNewTokens: 10 })).toEqual(want);
      await a.dispose();
      await b.dispose();
    }
  });
});

describe('readers of the whole tensor', () => {
  it('get() refuses a sharded tensor by name; read() and a merged export concatenate the shards', async () => {
    const { gpu, spec, source, sharded } = await pair('llama');
    expect(() => sharded.get('model.embed_tokens.weight')).toThrow(
      /model\.embed_tokens\.weight is stored in 5 vocabulary shards/,
    );
    expect(() => sharded.lmHead).toThrow(/lm_head\.weight is stored in 5 vocabulary shards/);
    expect(sharded.get('model.norm.weight').shape).toEqual([spec.hidden]);
    expect(await sharded.read(gpu, 'lm_head.weight')).toEqual(await source.load('lm_head.weight'));
    expect(sharded.parameterCount()).toBe(
      expectedTensors(spec).reduce((n, t) => n + t.shape[0] * (t.shape[1] ?? 1), 0),
    );
    const merged = (await mergedModelFiles(gpu, sharded))['model.safetensors'] as Uint8Array;
    const file = await openSafetensors(bytesSource('model.safetensors', merged));
    expect(file.info('model.embed_tokens.weight')!.shape).toEqual([spec.vocabSize, spec.hidden]);
    expect(await file.load('model.embed_tokens.weight')).toEqual(await source.load('model.embed_tokens.weight'));
  });

  it('full fine-tuning over a sharded vocabulary is refused by name (the graph and the method)', async () => {
    const { gpu, sharded } = await pair('gpt2');
    expect(() => new TransformerGraph(gpu, sharded, { batch: 1, seq: 4, train: 'full' })).toThrow(
      /Full fine-tuning is not supported when a tensor is larger than one GPU storage binding: wte\.weight is stored in 5 vocabulary shards/,
    );
    await expect(
      buildMethod(
        gpu,
        sharded,
        { method: 'full', rank: 8, alpha: 16, targets: [], seed: 0 },
        { nextBatch: () => ({ ...randomBatch(sharded.spec, 1, 4, 1), batch: 1, seq: 4 }), shape: { batch: 1, seq: 4 } },
      ),
    ).rejects.toThrow(/Full fine-tuning is not supported .* wte\.weight/);
  });

  it("the studio's estimate names full fine-tuning's embedding copy, not the batch, as what exceeds the limit", () => {
    const limits = { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 1000 };
    const estimate = { peak: 0, training: 0, preparation: null };
    const vocab = bufferLimitProblem(
      { ...estimate, largest: { what: "embedding (the run's f32 copy)", bytes: 2000, vocab: true } },
      limits,
    );
    expect(vocab?.text).toBe(
      "Full fine-tuning keeps the embedding (the run's f32 copy) in one buffer, which needs more than this GPU's maxStorageBufferBindingSize",
    );
    expect(vocab?.advice).toMatch(/adapter method/);
    expect(
      bufferLimitProblem({ ...estimate, largest: { what: 'logits', bytes: 2000 } }, limits)?.advice,
    ).toBeUndefined();
  });
});

describe("an adapter folder's replacements of the embedding and lm_head, sharded", () => {
  /** Logits of both weight sets after the same changes: equal, and the changed tensors sharded again. */
  async function same(model: Model, changes: (spec: ModelSpec) => BaseWeightChanges, changed: string) {
    const { gpu, spec, whole, sharded } = await pair(model, 'bf16');
    const c = changes(spec);
    const a = await whole.withReplacements(gpu, c);
    const b = await sharded.withReplacements(gpu, c);
    expect(b.isSharded(changed)).toBe(true);
    expect(b.vocabShards(changed)[0].tensor.dtype).toBe('f32');
    expect(await b.read(gpu, changed)).toEqual(await a.read(gpu, changed));
    const [la, lb] = [await logitsOf(gpu, a), await logitsOf(gpu, b)];
    expect(lb.logits).toEqual(la.logits);
    expect(await logitsOf(gpu, b)).not.toEqual(await logitsOf(gpu, sharded));
    return { a, b };
  }
  const rng = new Rng(8);

  it('trainable token rows of the tied embedding (rows in several shards)', async () => {
    const rows = [0, 9, 17, 28];
    await same(
      'qwen2',
      (spec) => ({
        replacements: [{ name: 'model.embed_tokens.weight', rows, data: rng.normals(rows.length * spec.hidden, 0.3) }],
        untie: false,
      }),
      'model.embed_tokens.weight',
    );
  });

  it('trainable token rows of an untied lm_head', async () => {
    const rows = [3, 12, 36];
    await same(
      'llama',
      (spec) => ({
        replacements: [{ name: 'lm_head.weight', rows, data: rng.normals(rows.length * spec.hidden, 0.3) }],
        untie: false,
      }),
      'lm_head.weight',
    );
  });

  it('modules_to_save lm_head on a tied model: lm_head unties into its own shards, the embedding keeps the base shards', async () => {
    const { b } = await same(
      'llama-tied',
      (spec) => ({
        replacements: [{ name: 'lm_head.weight', data: rng.normals(spec.vocabSize * spec.hidden, 0.3) }],
        untie: true,
      }),
      'lm_head.weight',
    );
    expect(b.spec.tieWordEmbeddings).toBe(false);
    expect(b.vocabShards('model.embed_tokens.weight')[0].tensor.dtype).toBe('bf16');
  });
});
