/**
 * Base-model weights on the GPU, uploaded tensor by tensor from a checkpoint (never the whole file at once).
 * Names are canonical checkpoint names (expectedTensors): GPT-2 without its optional `transformer.` prefix.
 */
import type { Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import type { ModelSpec } from './config';
import { expectedTensors } from './config';

/** Anything that yields a checkpoint's tensors by canonical name, as f32. */
export interface TensorSource {
  load(name: string): Promise<Float32Array>;
}

export class ModelWeights {
  private constructor(
    readonly spec: ModelSpec,
    private readonly tensors: Map<string, Tensor>,
  ) {}

  static async upload(gpu: Gpu, spec: ModelSpec, source: TensorSource, onProgress?: (done: number, total: number) => void): Promise<ModelWeights> {
    const expected = expectedTensors(spec);
    const map = new Map<string, Tensor>();
    let done = 0;
    for (const { name, shape } of expected) {
      const data = await source.load(name);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.length !== n) throw new Error(`${name}: expected ${n} values for shape [${shape.join(', ')}], got ${data.length}`);
      map.set(name, gpu.tensorFrom(data, shape, name));
      onProgress?.(++done, expected.length);
    }
    return new ModelWeights(spec, map);
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
}
