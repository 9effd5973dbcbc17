/**
 * Greedy decoding over a KV cache (decode.ts): the prompt is prefilled once, then every new token costs one
 * pass of the layer stack over that token alone, one submit and a 4-byte readback.
 */
import type { LinearAdapter } from './adapter';
import type { Gpu } from '../gpu/gpu';
import { Decoder } from './decode';
import type { ModelWeights } from './weights';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Stop at this token (usually EOS). */
  stopId?: number | null;
  /** Adapters for this call instead of the generator's own. */
  adapters?: Map<string, LinearAdapter>;
  onToken?: (id: number) => void;
}

export interface GeneratorOptions {
  /**
   * Longest sequence (prompt + generated tokens) to generate, at most the model's maxPositions: the KV cache
   * is allocated once at this size. Default: the model's maxPositions, with the cache sized to each call's
   * need (rounded up to a power of two) and grown when a later call needs more.
   */
  maxPositions?: number;
}

/** The smallest cache the growing policy allocates. */
const MIN_CAPACITY = 64;

export class Generator {
  private readonly decoders = new Map<Map<string, LinearAdapter> | undefined, Decoder>();
  private readonly maxPositions: number;
  /** Calls run one after another: they share each decoder's cache. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly gpu: Gpu,
    private readonly weights: ModelWeights,
    private readonly adapters?: Map<string, LinearAdapter>,
    private readonly options: GeneratorOptions = {},
  ) {
    const max = weights.spec.maxPositions;
    const requested = options.maxPositions ?? max;
    if (!Number.isInteger(requested) || requested < 1)
      throw new Error(`maxPositions must be a positive integer, got ${options.maxPositions}`);
    this.maxPositions = Math.min(requested, max);
  }

  /**
   * Returns the generated ids (without the prompt): up to maxNewTokens, stopping before stopId, and never
   * making the sequence longer than maxPositions.
   */
  greedy(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    const run = this.queue.then(() => this.run(prompt, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Frees every decoder's buffers (after the GPU is done with them). */
  async dispose(): Promise<void> {
    await this.queue;
    const all = [...this.decoders.values()];
    this.decoders.clear();
    for (const d of all) await d.dispose();
  }

  private async run(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    if (prompt.length === 0) throw new Error('generate needs at least one prompt token (BOS for an empty prompt)');
    const total = Math.min(this.maxPositions, prompt.length + opts.maxNewTokens);
    const out: number[] = [];
    if (prompt.length >= total) return out;
    // The last generated token is never fed back: the cache needs one position less than the sequence.
    const decoder = await this.decoder(opts.adapters ?? this.adapters, total - 1);
    decoder.reset();
    decoder.prefill(prompt.slice(0, -1));
    let next = prompt[prompt.length - 1];
    while (prompt.length + out.length < total) {
      next = await decoder.step(next);
      if (opts.stopId != null && next === opts.stopId) break;
      out.push(next);
      opts.onToken?.(next);
    }
    return out;
  }

  /** A decoder for these adapters whose cache holds `positions`; a smaller one is replaced. */
  private async decoder(adapters: Map<string, LinearAdapter> | undefined, positions: number): Promise<Decoder> {
    const existing = this.decoders.get(adapters);
    if (existing && existing.capacity >= positions) return existing;
    if (existing) {
      this.decoders.delete(adapters);
      await existing.dispose();
    }
    const capacity =
      this.options.maxPositions !== undefined
        ? this.maxPositions
        : Math.min(this.maxPositions, powerOfTwoAtLeast(Math.max(positions, MIN_CAPACITY)));
    const decoder = new Decoder(this.gpu, this.weights, { capacity, adapters });
    this.decoders.set(adapters, decoder);
    return decoder;
  }
}

function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
