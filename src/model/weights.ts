/**
 * Base-model weights on the GPU, uploaded tensor by tensor from a checkpoint (never the whole file at once).
 * Names are canonical checkpoint names (expectedTensors): GPT-2 without its optional `transformer.` prefix.
 *
 * Storage: the matrices that only matmul's B operand, the embedding gather and GoRA's importance read (every
 * linear weight, the token embedding, lm_head) may be kept as packed 16-bit floats: half the memory and
 * bandwidth. 'auto' keeps each tensor in the checkpoint's own precision (bf16 and f16 checkpoints stay
 * 16-bit: lossless), so the model computes exactly what it would with f32 copies. Norms, biases and GPT-2's
 * position table stay f32. Full fine-tuning trains the weights and needs them in f32.
 */
import { firstF16Overflow, type HalfDType } from '../gpu/half';
import type { Gpu } from '../gpu/gpu';
import { isHalf, numel, storageBytes, type Tensor } from '../gpu/tensor';
import type { ModelSpec } from './config';
import { expectedTensors } from './config';
import { allLinears } from './layout';

export type WeightDType = 'f32' | HalfDType;
export type WeightStorage = 'auto' | WeightDType;
export const WEIGHT_STORAGES: readonly WeightStorage[] = ['auto', 'f32', 'bf16', 'f16'];

/** Anything that yields a checkpoint's tensors by canonical name, as f32. */
export interface TensorSource {
  load(name: string): Promise<Float32Array>;
  /** The precision the checkpoint stores a tensor in (absent: f32). */
  dtype?(name: string): WeightDType;
}

export interface UploadOptions {
  /** Default 'auto': the checkpoint's precision for the 16-bit-capable matrices, f32 for the rest. */
  storage?: WeightStorage;
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

export class ModelWeights {
  private constructor(
    readonly spec: ModelSpec,
    private readonly tensors: Map<string, Tensor>,
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
    const map = new Map<string, Tensor>();
    let done = 0;
    for (const { name, shape } of expected) {
      const data = await source.load(name);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n)
        throw new Error(`${name}: expected ${n} values for shape [${shape.join(', ')}], got ${data.length}`);
      const dtype = plan.get(name)!;
      if (dtype === 'f16') checkF16Range(name, data);
      map.set(name, gpu.tensorFrom(data, shape, name, dtype));
      opts.onProgress?.(++done, expected.length);
    }
    return new ModelWeights(spec, map);
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
    if (changes.untie) tensors.set('lm_head.weight', this.get(this.embedName));
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
      tensors.set(r.name, gpu.tensorFrom(data, shape, r.name));
    }
    return new ModelWeights(spec, tensors);
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`Model has no tensor ${name}`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** The output projection: lm_head, or the token embedding when tied. */
  get lmHead(): Tensor {
    return this.get(this.spec.tieWordEmbeddings ? this.embedName : 'lm_head.weight');
  }

  get embedName(): string {
    return this.spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.size;
    return n;
  }

  /** GPU bytes per storage precision, e.g. { bf16: 988e6, f32: 1.2e5 }. */
  bytesByDtype(): Partial<Record<WeightDType, number>> {
    const out: Partial<Record<WeightDType, number>> = {};
    for (const t of this.tensors.values())
      out[t.dtype as WeightDType] = (out[t.dtype as WeightDType] ?? 0) + t.buffer.size;
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
    const half = [...this.tensors.values()].find((t) => isHalf(t.dtype));
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
  return new Map(
    expectedTensors(spec).map(({ name }) => [
      name,
      !halfCapable.has(name) ? 'f32' : storage === 'auto' ? (source.dtype?.(name) ?? 'f32') : storage,
    ]),
  );
}

/** GPU bytes of the base weights under a storage plan, and the plan's precisions from most to least bytes. */
export function plannedWeightBytes(
  spec: ModelSpec,
  plan: Map<string, WeightDType>,
): { bytes: number; dtypes: WeightDType[] } {
  const byDtype = new Map<WeightDType, number>();
  for (const { name, shape } of expectedTensors(spec)) {
    const dtype = plan.get(name) ?? 'f32';
    byDtype.set(dtype, (byDtype.get(dtype) ?? 0) + storageBytes(numel(shape), dtype));
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

/** `base` read back (widened to f32) with the listed rows replaced (PEFT trainable tokens: index_copy, not a sum). */
async function withRows(
  gpu: Gpu,
  base: Tensor,
  name: string,
  rows: readonly number[],
  data: Float32Array,
): Promise<Float32Array> {
  const [height, width] = base.shape;
  if (base.shape.length !== 2 || data.length !== rows.length * width) {
    throw new Error(
      `${name}: ${rows.length} replacement rows need ${rows.length} x ${width} values, got ${data.length}`,
    );
  }
  const out = await gpu.read(base);
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
