/**
 * Incremental decoding with a KV cache. A Decoder holds one sequence: prefill() runs the prompt through the
 * layer stack in chunks, storing every layer's k|v; step() runs one token, attending over the cache, and
 * returns the greedy next token (argmax on the GPU, one u32 read back). Everything is allocated and recorded
 * at construction; a step writes the token and its position (8 bytes) and submits once.
 */
import type { LinearAdapter } from './adapter';
import { mapForRead } from '../gpu/device-lost';
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { KvCache } from './decode-cache';
import { DecodeGraph } from './decode-graph';
import type { ModelWeights } from './weights';

export interface DecoderOptions {
  /** Positions the cache holds (prompt + generated tokens); default: the model's maxPositions. */
  capacity?: number;
  /** Prompt tokens per prefill pass; default 64 (at most the capacity). */
  prefillRows?: number;
  adapters?: Map<string, LinearAdapter>;
}

const DEFAULT_PREFILL_ROWS = 64;

export class Decoder {
  readonly capacity: number;
  private readonly cache: KvCache;
  private readonly prefillGraph: DecodeGraph;
  private readonly stepGraph: DecodeGraph;
  private readonly nextStaging: GPUBuffer;
  private logitsStaging: GPUBuffer | null = null;
  /** Every buffer this decoder created (dispose frees them). */
  private readonly buffers: GPUBuffer[];
  private readonly prefillTokens: Uint32Array;
  private readonly prefillPositions: Uint32Array;
  private readonly stepToken = new Uint32Array(1);
  private readonly stepPosition = new Uint32Array(1);
  private filled = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly weights: ModelWeights,
    opts: DecoderOptions = {},
  ) {
    const spec = weights.spec;
    const capacity = (this.capacity = opts.capacity ?? spec.maxPositions);
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > spec.maxPositions) {
      throw new Error(
        `decoder capacity must be an integer in [1, ${spec.maxPositions}] (the model's maxPositions), got ${capacity}`,
      );
    }
    const chunk = Math.min(opts.prefillRows ?? DEFAULT_PREFILL_ROWS, capacity);
    if (!Number.isInteger(chunk) || chunk < 1)
      throw new Error(`prefillRows must be a positive integer, got ${opts.prefillRows}`);
    // Construction is synchronous: the buffers created from here on are this decoder's alone.
    const mark = gpu.mark();
    try {
      this.cache = new KvCache(gpu, spec, capacity);
      this.prefillGraph = new DecodeGraph(gpu, weights, this.cache, {
        rows: chunk,
        head: false,
        adapters: opts.adapters,
        label: 'prefill',
      });
      this.stepGraph = new DecodeGraph(gpu, weights, this.cache, {
        rows: 1,
        head: true,
        adapters: opts.adapters,
        label: 'decode',
      });
      this.nextStaging = gpu.createBuffer(4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'decode.next.staging');
    } catch (err) {
      // Nothing was submitted with them yet: a shape the kernels reject leaves no half-built decoder behind.
      gpu.destroyBuffers(gpu.createdSince(mark));
      throw err;
    }
    this.buffers = gpu.createdSince(mark);
    this.prefillTokens = new Uint32Array(chunk);
    this.prefillPositions = new Uint32Array(chunk);
  }

  /** Positions filled so far: the next token goes to this position. */
  get length(): number {
    return this.filled;
  }

  /** Starts a new sequence (the cache's old rows are overwritten before anything reads them). */
  reset(): void {
    this.filled = 0;
  }

  /** Appends tokens to the sequence without computing logits: one submit per chunk of prefillRows. */
  prefill(tokens: readonly number[]): void {
    this.checkRoom(tokens.length);
    tokens.forEach((id, i) => this.checkToken(id, this.filled + i));
    const g = this.prefillGraph;
    for (let start = 0; start < tokens.length; start += g.rows) {
      const n = Math.min(g.rows, tokens.length - start);
      // Padding rows sit at position `capacity`: the cache store skips them, and nothing reads their outputs.
      this.prefillTokens.fill(0);
      this.prefillPositions.fill(this.capacity);
      for (let i = 0; i < n; i++) {
        this.prefillTokens[i] = tokens[start + i];
        this.prefillPositions[i] = this.filled + start + i;
      }
      this.write(g, this.prefillTokens, this.prefillPositions);
      g.list.run();
    }
    this.filled += tokens.length;
  }

  /** Appends one token and returns the greedy next one (the argmax of its logits). One submit, 4 bytes back. */
  async step(token: number): Promise<number> {
    this.submitStep(token, this.stepGraph.next!.buffer, this.nextStaging, 4);
    const next = new Uint32Array(await this.readStaging(this.nextStaging, 4))[0];
    // argmax finds no index in a row of NaNs: say so rather than hand out a token id past the vocabulary.
    if (next >= this.weights.spec.vocabSize)
      throw new Error(`decoding at position ${this.filled - 1}: the model produced non-finite logits (no largest one)`);
    return next;
  }

  /** The step's logits [1, vocab], for work recorded over them that runs after the step (the GPU sampler). */
  get logits(): Tensor {
    return this.stepGraph.logits!;
  }

  /** Appends one token, runs `after` in the same submit, and returns the u32 it leaves in `result` (4 bytes back). */
  async stepThen(token: number, after: CommandList, result: Tensor): Promise<number> {
    this.submitStep(token, result.buffer, this.nextStaging, 4, after);
    return new Uint32Array(await this.readStaging(this.nextStaging, 4))[0];
  }

  /** Appends one token and returns its logits row (for tests: vocab floats back instead of one). */
  async stepLogits(token: number): Promise<Float32Array> {
    const bytes = this.weights.spec.vocabSize * 4;
    if (!this.logitsStaging) {
      this.logitsStaging = this.gpu.createBuffer(
        bytes,
        GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        'decode.logits.staging',
      );
      this.buffers.push(this.logitsStaging);
    }
    this.submitStep(token, this.stepGraph.logits!.buffer, this.logitsStaging, bytes);
    return new Float32Array(await this.readStaging(this.logitsStaging, bytes));
  }

  /** Frees every buffer once the GPU is done with them; the decoder must not be used again. */
  async dispose(): Promise<void> {
    await this.gpu.free(this.buffers);
  }

  private submitStep(token: number, src: GPUBuffer, staging: GPUBuffer, bytes: number, after?: CommandList): void {
    this.checkRoom(1);
    this.checkToken(token, this.filled);
    const g = this.stepGraph;
    this.stepToken[0] = token;
    this.stepPosition[0] = this.filled;
    this.write(g, this.stepToken, this.stepPosition);
    const enc = this.gpu.device.createCommandEncoder({ label: `decode ${this.filled}` });
    g.list.encode(enc);
    after?.encode(enc);
    enc.copyBufferToBuffer(src, 0, staging, 0, bytes);
    this.gpu.submit([enc.finish()]);
    this.filled++;
  }

  private async readStaging(staging: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    await mapForRead(this.gpu.device, staging, 0, bytes);
    const out = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    return out;
  }

  private write(g: DecodeGraph, tokens: Uint32Array, positions: Uint32Array): void {
    const q = this.gpu.device.queue;
    q.writeBuffer(g.tokens.buffer, 0, tokens.buffer, tokens.byteOffset, tokens.byteLength);
    q.writeBuffer(g.positions.buffer, 0, positions.buffer, positions.byteOffset, positions.byteLength);
  }

  private checkRoom(n: number): void {
    if (this.filled + n > this.capacity) {
      throw new Error(
        `the sequence would reach ${this.filled + n} positions; this decoder's cache holds ${this.capacity}`,
      );
    }
  }

  private checkToken(id: number, position: number): void {
    const V = this.weights.spec.vocabSize;
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new Error(`token id ${id} at position ${position} is outside the model's vocabulary (${V})`);
  }
}
