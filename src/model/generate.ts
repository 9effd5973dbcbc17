/**
 * Decoding over a KV cache (decode.ts): the prompt is prefilled once, then every new token costs one pass of the
 * layer stack over that token alone, one submit and a 4-byte readback. Greedy decoding takes the decoder's GPU
 * argmax; sampling (sampling.ts) appends the sample kernel to the same submit (sampler.ts).
 */
import type { LinearAdapter } from './adapter';
import type { Gpu } from '../gpu/gpu';
import { Decoder } from './decode';
import { Sampler } from './sampler';
import { isPlainGreedy, samplingProblems, type SamplingSettings } from './sampling';
import type { ModelWeights } from './weights';

export interface GenerateOptions {
  maxNewTokens: number;
  /** Stop at this token (usually EOS). */
  stopId?: number | null;
  /** More tokens that stop generation (a chat template's end-of-turn marker). */
  stopIds?: readonly number[];
  /** Adapters for this call instead of the generator's own. */
  adapters?: Map<string, LinearAdapter>;
  /** Temperature, top-k/p, min-p, repetition penalty and seed; absent (or greedy without a penalty): the argmax. */
  sampling?: SamplingSettings;
  onToken?: (id: number) => void;
  /** Asked after each token (after onToken): true ends the output there (stop strings, a Stop button). */
  shouldStop?: () => boolean;
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
  /** Each decoder's sampler, made the first time a call samples with it. */
  private readonly samplers = new Map<Decoder, Sampler>();
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
  greedy(prompt: number[], opts: Omit<GenerateOptions, 'sampling'>): Promise<number[]> {
    return this.generate(prompt, { ...opts, sampling: undefined });
  }

  /** As greedy, drawing each token with opts.sampling: the same seed, prompt and settings give the same tokens. */
  generate(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    if (opts.sampling) {
      const problems = samplingProblems(opts.sampling, (key) => key);
      if (problems.length) return Promise.reject(new Error(`sampling: ${problems.join('; ')}`));
    }
    const run = this.queue.then(() => this.run(prompt, opts));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Frees every decoder's buffers (after the GPU is done with them). */
  async dispose(): Promise<void> {
    await this.queue;
    const all = [...this.decoders.values()];
    const samplers = [...this.samplers.values()];
    this.decoders.clear();
    this.samplers.clear();
    for (const d of all) await d.dispose();
    for (const s of samplers) await s.dispose();
  }

  private async run(prompt: number[], opts: GenerateOptions): Promise<number[]> {
    if (prompt.length === 0) throw new Error('generate needs at least one prompt token (BOS for an empty prompt)');
    const total = Math.min(this.maxPositions, prompt.length + opts.maxNewTokens);
    const out: number[] = [];
    if (prompt.length >= total) return out;
    // The last generated token is never fed back: the cache needs one position less than the sequence.
    const decoder = await this.decoder(opts.adapters ?? this.adapters, total - 1);
    const sampler = opts.sampling && !isPlainGreedy(opts.sampling) ? this.sampler(decoder) : null;
    sampler?.start(prompt, opts.sampling!);
    const stops = new Set(opts.stopIds ?? []);
    if (opts.stopId != null) stops.add(opts.stopId);
    decoder.reset();
    decoder.prefill(prompt.slice(0, -1));
    let next = prompt[prompt.length - 1];
    while (prompt.length + out.length < total) {
      if (sampler) {
        sampler.prepare(out.length);
        next = await decoder.stepThen(next, sampler.list, sampler.token);
        // A row of NaNs leaves no token to draw: say so rather than hand out an id past the vocabulary.
        if (next >= this.weights.spec.vocabSize)
          throw new Error(`sampling at position ${decoder.length - 1}: the model produced non-finite logits`);
      } else next = await decoder.step(next);
      if (stops.has(next)) break;
      out.push(next);
      opts.onToken?.(next);
      if (opts.shouldStop?.()) break;
    }
    return out;
  }

  private sampler(decoder: Decoder): Sampler {
    let sampler = this.samplers.get(decoder);
    if (!sampler) {
      sampler = new Sampler(this.gpu, decoder);
      this.samplers.set(decoder, sampler);
    }
    return sampler;
  }

  /** A decoder for these adapters whose cache holds `positions`; a smaller one is replaced. */
  private async decoder(adapters: Map<string, LinearAdapter> | undefined, positions: number): Promise<Decoder> {
    const existing = this.decoders.get(adapters);
    if (existing && existing.capacity >= positions) return existing;
    if (existing) {
      this.decoders.delete(adapters);
      await this.samplers.get(existing)?.dispose();
      this.samplers.delete(existing);
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
