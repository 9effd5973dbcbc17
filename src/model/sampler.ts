/**
 * The GPU side of sampled decoding for one Decoder: the sample dispatch recorded once over the decoder's step
 * logits, the seen-token bits it penalizes and updates, and the drawn token. Per step the host writes the
 * uniform number (the dispatch's parameters); per run, the prompt's bits.
 */
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { sample, seenWords, type SampleHandle } from '../kernels/sample';
import type { Decoder } from './decode';
import { GREEDY, uniformAt, type SamplingSettings } from './sampling';

export class Sampler {
  readonly list: CommandList;
  /** u32 [1]: the token the last step drew. */
  readonly token: Tensor;
  private readonly seen: Tensor;
  private readonly bits: Uint32Array;
  private readonly handle: SampleHandle;
  private settings: SamplingSettings = GREEDY;

  constructor(
    private readonly gpu: Gpu,
    decoder: Decoder,
  ) {
    const vocab = decoder.logits.shape[1];
    this.bits = new Uint32Array(seenWords(vocab));
    this.seen = gpu.tensor([this.bits.length], 'sample.seen', 'u32');
    this.token = gpu.tensor([1], 'sample.token', 'u32');
    this.list = gpu.list('sample');
    this.handle = sample(this.list, {
      logits: decoder.logits,
      seen: this.seen,
      out: this.token,
      vocab,
      settings: this.settings,
      u: 0,
    });
  }

  /** Starts a run: the prompt's tokens are the seen ones (the kernel adds each drawn token). */
  start(prompt: readonly number[], settings: SamplingSettings): void {
    this.settings = settings;
    this.bits.fill(0);
    for (const id of prompt) this.bits[id >> 5] |= 1 << (id & 31);
    this.gpu.upload(this.seen, this.bits);
  }

  /** Sets the uniform number that draws generated token `step` (0 = the first). */
  prepare(step: number): void {
    this.handle.setUniform(uniformAt(this.settings.seed, step), this.settings);
  }

  /** Frees the sampler's buffers once the GPU is done with them. */
  async dispose(): Promise<void> {
    await this.list.release();
    await this.gpu.free([this.seen.buffer, this.token.buffer]);
  }
}
