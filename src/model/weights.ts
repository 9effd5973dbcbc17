/**
 * Base-model weights on the GPU, uploaded tensor by tensor from a checkpoint (never the whole file at once).
 * Names are canonical checkpoint names (expectedTensors): GPT-2 without its optional `transformer.` prefix.
 *
 * Storage: the matrices that only matmul's B operand, the embedding gather and GoRA's importance read (every
 * linear weight, the token embedding, lm_head) may be kept as packed 16-bit floats: half the memory and
 * bandwidth. 'auto' keeps each tensor in the checkpoint's own precision (bf16 and f16 checkpoints stay
 * 16-bit: lossless), so the model computes exactly what it would with f32 copies. Norms, biases and GPT-2's
 * position table stay f32. Full fine-tuning trains the weights and needs them in f32.
 *
 * Vocabulary shards (vocab-shards.ts): a token embedding or lm_head larger than one storage binding (or buffer) is
 * stored as contiguous row ranges, each its own tensor; `vocabShards(name)` lists them and `get(name)` refuses a
 * sharded tensor, so no reader takes one shard for the whole.
 */
import { firstF16Overflow, type HalfDType } from '../gpu/half';
import type { Gpu } from '../gpu/gpu';
import { isHalf, isQuantized, numel, storageBytes, type QuantDType, type Tensor } from '../gpu/tensor';
import type { ModelSpec } from './config';
import { expectedTensors } from './config';
import { allLinears } from './layout';
import { storeWeight, type StoreOptions } from '../quant/store';
import {
  planVocabShards,
  shardLabel,
  tensorByteLimit,
  vocabTensorNames,
  weightRowsBytes,
  type ShardRange,
} from './vocab-shards';

/** Bytes of uploads the queue may hold before upload waits for the GPU to take them. */
const UPLOAD_DRAIN_BYTES = 256 * 2 ** 20;

export type WeightDType = 'f32' | HalfDType | QuantDType;
/** 'nf4' and 'int8' quantize the blocks' linear weights (QLoRA); the vocabulary tensors stay as stored. */
export type WeightStorage = 'auto' | 'f32' | HalfDType | 'nf4' | 'int8';
export const WEIGHT_STORAGES: readonly WeightStorage[] = ['auto', 'f32', 'bf16', 'f16', 'nf4', 'int8'];

/** Anything that yields a checkpoint's tensors by canonical name, as f32. */
export interface TensorSource {
  load(name: string): Promise<Float32Array>;
  /** The precision the checkpoint stores a tensor in (absent: f32). */
  dtype?(name: string): WeightDType;
  /**
   * A pre-quantized checkpoint's packed layout of `name` (src/quant/layout.ts), uploaded as it is when the storage
   * plan keeps that precision; null for tensors the checkpoint stores as floats.
   */
  quantized?(name: string): Promise<{ words: Uint32Array; dtype: QuantDType } | null>;
}

export interface UploadOptions {
  /** Default 'auto': the checkpoint's precision for the 16-bit-capable matrices, f32 for the rest. */
  storage?: WeightStorage;
  /**
   * The most bytes one vocabulary tensor (embedding, lm_head) may take before it is split by rows into shards
   * (vocab-shards.ts). Default: the device's limit per binding and per buffer; tests force a tiny one.
   */
  shardBytes?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * A base tensor that an adapter folder replaces (PEFT modules_to_save, saved biases, trainable token rows), under
 * its canonical name; 'lm_head.weight' on a tied model needs `untie`.
 */
export interface WeightReplacement {
  name: string;
  /** The whole tensor, or with `rows` one row per listed row, in that order. */
  data: Float32Array;
  rows?: readonly number[];
}

export interface BaseWeightChanges {
  replacements: WeightReplacement[];
  /** A tied model gets its own lm_head: the embedding tensor itself (shared) unless a replacement names it. */
  untie: boolean;
}

/** One row range of a tensor stored in vocabulary shards; an unsharded tensor is one shard of all its rows. */
export interface VocabShard extends ShardRange {
  tensor: Tensor;
}

export class ModelWeights {
  private constructor(
    readonly spec: ModelSpec,
    /** Every tensor by canonical name, as its shards (one for all but a too-large embedding or lm_head). */
    private readonly tensors: Map<string, readonly VocabShard[]>,
    /** The most bytes one vocabulary tensor may take before it is sharded (UploadOptions.shardBytes). */
    readonly shardBytes: number,
  ) {}

  static async upload(
    gpu: Gpu,
    spec: ModelSpec,
    source: TensorSource,
    opts: UploadOptions = {},
  ): Promise<ModelWeights> {
    const storage = opts.storage ?? 'auto';
    if (!WEIGHT_STORAGES.includes(storage))
      throw new Error(`weight storage "${storage}" is not one of ${WEIGHT_STORAGES.join(', ')}`);
    const plan = storagePlan(spec, source, storage);
    const expected = expectedTensors(spec);
    const map = new Map<string, readonly VocabShard[]>();
    const limit = shardLimit(gpu, opts.shardBytes);
    const vocab = new Set(vocabTensorNames(spec));
    let done = 0;
    const conv1d = new Set(
      allLinears(spec)
        .filter((l) => l.conv1d)
        .map((l) => l.weight),
    );
    // Uploads wait in the queue's staging memory until the GPU takes them: draining it every UPLOAD_DRAIN_BYTES keeps
    // the host's peak near one tensor instead of the whole model (a 3B model is 6 GB in bf16).
    let pending = 0;
    const stored = async (name: string, shards: VocabShard[]) => {
      map.set(name, shards);
      pending += shards.reduce((n, s) => n + s.tensor.buffer.size, 0);
      if (pending >= UPLOAD_DRAIN_BYTES) {
        pending = 0;
        await gpu.sync();
      }
      opts.onProgress?.(++done, expected.length);
    };
    for (const { name, shape } of expected) {
      const dtype = plan.get(name)!;
      // A bnb-4bit checkpoint's own codes, kept when the plan keeps its precision (never requantized).
      const own = isQuantized(dtype) ? await source.quantized?.(name) : null;
      if (own && own.dtype === dtype) {
        await stored(name, [{ rowStart: 0, rows: shape[0], tensor: gpu.tensorWords(own.words, shape, name, dtype) }]);
        continue;
      }
      const data = await source.load(name);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n)
        throw new Error(`${name}: expected ${n} values for shape [${shape.join(', ')}], got ${data.length}`);
      if (dtype === 'f16') checkF16Range(name, data);
      const how = { sourceDtype: source.dtype?.(name), conv1d: conv1d.has(name) };
      await stored(name, await storeShards(gpu, data, shape, name, dtype, vocab.has(name) ? limit : Infinity, how));
    }
    return new ModelWeights(spec, map, limit);
  }

  /**
   * These weights with an adapter folder's replacements: every tensor is shared except the replaced ones, which are
   * new f32 tensors (so a replacement is exact whatever the base precision; kept rows of a 16-bit base widen
   * exactly). Nothing is freed here: the new tensors belong to the caller's allocation scope, the shared ones to this
   * object. Without changes, returns this object.
   */
  async withReplacements(gpu: Gpu, changes: BaseWeightChanges): Promise<ModelWeights> {
    if (changes.replacements.length === 0 && !changes.untie) return this;
    if (changes.untie && !this.spec.tieWordEmbeddings)
      throw new Error("untie: this model's lm_head is not tied to its embedding");
    const spec: ModelSpec = changes.untie ? { ...this.spec, tieWordEmbeddings: false } : this.spec;
    const tensors = new Map(this.tensors);
    if (changes.untie) tensors.set('lm_head.weight', this.vocabShards(this.embedName));
    const vocab = new Set(vocabTensorNames(spec));
    const shapes = new Map(expectedTensors(spec).map((t) => [t.name, t.shape]));
    for (const r of changes.replacements) {
      const shape = shapes.get(r.name);
      if (!shape)
        throw new Error(
          `Cannot replace ${r.name}: this ${spec.modelType} model has no such tensor${r.name === 'lm_head.weight' ? ' (its lm_head is tied to the embedding)' : ''}`,
        );
      const data = r.rows ? await withRows(gpu, tensors.get(r.name)!, r.name, r.rows, r.data) : r.data;
      if (data.length !== numel(shape))
        throw new Error(`${r.name}: ${data.length} replacement values for shape [${shape.join(', ')}]`);
      const limit = vocab.has(r.name) ? this.shardBytes : Infinity;
      tensors.set(r.name, await storeShards(gpu, data, shape, r.name, 'f32', limit));
    }
    return new ModelWeights(spec, tensors, this.shardBytes);
  }

  /**
   * The tensor `name` as one GPU tensor. A tensor stored in vocabulary shards has none: its readers go through
   * vocabShards, and this throws rather than hand out one shard as if it were the whole.
   */
  get(name: string): Tensor {
    const shards = this.vocabShards(name);
    if (shards.length > 1)
      throw new Error(
        `${name} is stored in ${shards.length} vocabulary shards (it is larger than one storage binding); read it shard by shard (ModelWeights.vocabShards)`,
      );
    return shards[0].tensor;
  }

  /** The row ranges `name` is stored in, in order (one shard of every row when it fits one binding). */
  vocabShards(name: string): readonly VocabShard[] {
    const s = this.tensors.get(name);
    if (!s) throw new Error(`Model has no tensor ${name}`);
    return s;
  }

  /** The tensor `name` read back whole (widened to f32), shards concatenated. */
  read(gpu: Gpu, name: string): Promise<Float32Array> {
    return readShards(gpu, this.vocabShards(name));
  }

  /** True when `name` is split into more than one vocabulary shard. */
  isSharded(name: string): boolean {
    return this.vocabShards(name).length > 1;
  }

  /** Every GPU tensor of these weights, shards included (to free them, count their bytes, keep them alive). */
  allTensors(): Tensor[] {
    return [...new Set([...this.tensors.values()].flatMap((s) => s.map((x) => x.tensor)))];
  }

  /** The output projection's shards: lm_head's, or the token embedding's when tied. */
  get lmHeadShards(): readonly VocabShard[] {
    return this.vocabShards(this.lmHeadName);
  }

  /** Throws unless every tensor is one GPU tensor (what training the base weights needs). */
  requireUnsharded(why: string): void {
    const name = [...this.tensors.keys()].find((n) => this.isSharded(n));
    if (name) {
      const n = this.vocabShards(name).length;
      throw new Error(
        `${why} is not supported when a tensor is larger than one GPU storage binding: ${name} is stored in ${n} vocabulary shards (limit ${this.shardBytes} bytes per tensor). Train an adapter method instead.`,
      );
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** The output projection: lm_head, or the token embedding when tied. */
  get lmHead(): Tensor {
    return this.get(this.lmHeadName);
  }

  /** lm_head's canonical name, or the token embedding's when tied. */
  get lmHeadName(): string {
    return this.spec.tieWordEmbeddings ? this.embedName : 'lm_head.weight';
  }

  get embedName(): string {
    return this.spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.allTensors()) n += t.size;
    return n;
  }

  /** GPU bytes per storage precision, e.g. { bf16: 988e6, f32: 1.2e5 }. */
  bytesByDtype(): Partial<Record<WeightDType, number>> {
    const out: Partial<Record<WeightDType, number>> = {};
    for (const t of this.allTensors()) out[t.dtype as WeightDType] = (out[t.dtype as WeightDType] ?? 0) + t.buffer.size;
    return out;
  }

  /** One line for logs and the studio: "bf16 (942 MB) + f32 (0.1 MB)". */
  storageSummary(): string {
    return Object.entries(this.bytesByDtype())
      .sort((a, b) => b[1] - a[1])
      .map(([d, bytes]) => `${d} (${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB)`)
      .join(' + ');
  }

  /** Throws unless every tensor is f32 (what training the base weights needs). */
  requireF32(why: string): void {
    const half = this.allTensors().find((t) => isHalf(t.dtype) || isQuantized(t.dtype));
    if (half) {
      throw new Error(
        `${why} needs the base weights in f32, but ${half.label} is stored as ${half.dtype}. Load the model with weight storage f32 (--weights f32).`,
      );
    }
  }
}

/** The precision each tensor is kept in on the GPU (see the file comment). */
export function storagePlan(
  spec: ModelSpec,
  source: Pick<TensorSource, 'dtype'>,
  storage: WeightStorage = 'auto',
): Map<string, WeightDType> {
  const halfCapable = halfCapableTensors(spec);
  const quantizable = new Set(allLinears(spec).map((l) => l.weight));
  const asStored = (name: string) => source.dtype?.(name) ?? 'f32';
  return new Map(
    expectedTensors(spec).map(({ name }): [string, WeightDType] => {
      if (!halfCapable.has(name)) return [name, 'f32'];
      if (storage === 'auto') return [name, asStored(name)];
      // QLoRA practice (and bitsandbytes'): only the blocks' linear weights are quantized.
      if (storage === 'nf4' || storage === 'int8') return [name, quantizable.has(name) ? storage : asStored(name)];
      return [name, storage];
    }),
  );
}

/**
 * GPU bytes of the base weights under a storage plan, and the plan's precisions from most to least bytes.
 * `shardBytes`: the device's limit per tensor, beyond which the vocabulary tensors are stored in shards (each
 * rounded to whole words on its own); default none.
 */
export function plannedWeightBytes(
  spec: ModelSpec,
  plan: Map<string, WeightDType>,
  shardBytes = Infinity,
): { bytes: number; dtypes: WeightDType[] } {
  const byDtype = new Map<WeightDType, number>();
  const vocab = new Set(vocabTensorNames(spec));
  for (const { name, shape } of expectedTensors(spec)) {
    const dtype = plan.get(name) ?? 'f32';
    const bytes = vocab.has(name)
      ? shardRanges(shape, name, dtype, shardBytes).reduce((n, r) => n + weightRowsBytes(r.rows, shape[1], dtype), 0)
      : storageBytes(numel(shape), dtype, shape[shape.length - 1]);
    byDtype.set(dtype, (byDtype.get(dtype) ?? 0) + bytes);
  }
  const dtypes = [...byDtype.keys()].sort((a, b) => byDtype.get(b)! - byDtype.get(a)!);
  return { bytes: [...byDtype.values()].reduce((a, b) => a + b, 0), dtypes };
}

/** The tensors only 16-bit-aware kernels read: every linear weight, the token embedding and lm_head. */
export function halfCapableTensors(spec: ModelSpec): Set<string> {
  const names = new Set(allLinears(spec).map((l) => l.weight));
  names.add(spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight');
  if (!spec.tieWordEmbeddings) names.add('lm_head.weight');
  return names;
}

/** The row ranges a [rows, width] tensor is stored in under a per-tensor byte limit (vocab-shards.ts). */
function shardRanges(shape: readonly number[], name: string, dtype: WeightDType, limit: number): ShardRange[] {
  if (shape.length !== 2 || limit === Infinity) return [{ rowStart: 0, rows: shape[0] ?? 1 }];
  return planVocabShards(shape[0], limit, (rows) => weightRowsBytes(rows, shape[1], dtype), name);
}

/** The device's limit per tensor (vocab-shards.ts), or a forced one. */
function shardLimit(gpu: Gpu, forced?: number): number {
  if (forced === undefined) return tensorByteLimit(gpu.limits);
  if (!(forced > 0)) throw new Error(`shardBytes must be positive, got ${forced}`);
  return forced;
}

/** A tensor onto the GPU through storeWeight, as one tensor or, beyond `limit` bytes, one per row range. */
async function storeShards(
  gpu: Gpu,
  data: Float32Array,
  shape: readonly number[],
  name: string,
  dtype: WeightDType,
  limit: number,
  how: StoreOptions = {},
): Promise<VocabShard[]> {
  const ranges = shardRanges(shape, name, dtype, limit);
  if (ranges.length === 1) return [{ ...ranges[0], tensor: await storeWeight(gpu, data, shape, name, dtype, how) }];
  const width = shape[1];
  const out: VocabShard[] = [];
  for (const r of ranges) {
    const rows = data.subarray(r.rowStart * width, (r.rowStart + r.rows) * width);
    const label = shardLabel(name, r, ranges.length);
    out.push({ ...r, tensor: await storeWeight(gpu, rows, [r.rows, width], label, dtype, how) });
  }
  return out;
}

/** A tensor read back whole (widened to f32): its shards' rows concatenated. */
export async function readShards(gpu: Gpu, shards: readonly VocabShard[]): Promise<Float32Array> {
  if (shards.length === 1) return gpu.read(shards[0].tensor);
  const width = shards[0].tensor.shape[1];
  const last = shards[shards.length - 1];
  const out = new Float32Array((last.rowStart + last.rows) * width);
  for (const s of shards) out.set(await gpu.read(s.tensor), s.rowStart * width);
  return out;
}

/** `base` read back (widened to f32) with the listed rows replaced (PEFT trainable tokens: index_copy, not a sum). */
async function withRows(
  gpu: Gpu,
  base: readonly VocabShard[],
  name: string,
  rows: readonly number[],
  data: Float32Array,
): Promise<Float32Array> {
  const whole = base[0].tensor.shape;
  const width = whole[1];
  const height = base.reduce((n, s) => n + s.rows, 0);
  if (whole.length !== 2 || data.length !== rows.length * width) {
    throw new Error(
      `${name}: ${rows.length} replacement rows need ${rows.length} x ${width} values, got ${data.length}`,
    );
  }
  const out = await readShards(gpu, base);
  rows.forEach((row, i) => {
    if (!Number.isInteger(row) || row < 0 || row >= height)
      throw new Error(`${name}: row ${row} is outside 0..${height - 1}`);
    out.set(data.subarray(i * width, (i + 1) * width), row * width);
  });
  return out;
}

function checkF16Range(name: string, data: Float32Array): void {
  const i = firstF16Overflow(data);
  if (i >= 0) {
    throw new Error(
      `${name}: value ${data[i]} at element ${i} is beyond f16's range (±65504); store the weights as bf16 or f32 instead.`,
    );
  }
}
