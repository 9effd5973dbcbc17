/**
 * A forward pass over a fixed number of new tokens that attends over a KV cache, recorded once: the prefill
 * chunk (many rows, no lm head) and the decode step (one row, lm head and argmax) are two of these. Only the
 * token ids and positions change between runs, written into two small u32 tensors.
 *
 * Blocks run one after another and nothing is kept for a backward pass, so every layer shares one set of
 * buffers except the residual stream, which alternates between two (a block reads one and writes the other).
 */
import type { LinearAdapter } from './adapter';
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { argmax } from '../kernels/argmax';
import type { KvCache } from './decode-cache';
import { allocateFinalBuffers, allocateLayerBuffers, ForwardPass, type LayerBuffers } from './transformer';
import type { ModelWeights } from './weights';

export interface DecodeGraphOptions {
  rows: number;
  /** Final norm, lm head and argmax after the last block (the decode step); without, the pass only fills the cache. */
  head: boolean;
  adapters?: Map<string, LinearAdapter>;
  label: string;
}

export class DecodeGraph {
  readonly rows: number;
  /** u32 [rows]: the new tokens and their positions (padding rows: position = cache capacity). */
  readonly tokens: Tensor;
  readonly positions: Tensor;
  /** [rows, vocab] and u32 [rows], with the head. */
  readonly logits: Tensor | null;
  readonly next: Tensor | null;
  readonly list: CommandList;

  constructor(gpu: Gpu, weights: ModelWeights, cache: KvCache, opts: DecodeGraphOptions) {
    const spec = weights.spec;
    const R = (this.rows = opts.rows);
    const p = opts.label;
    this.tokens = gpu.tensor([R], `${p}.tokens`, 'u32');
    this.positions = gpu.tensor([R], `${p}.positions`, 'u32');
    const shared = allocateLayerBuffers(gpu, spec, R, p);
    const resid = [shared.resid, gpu.tensor([R, spec.hidden], `${p}.resid_b`)];
    const layers: LayerBuffers[] = Array.from({ length: spec.layers }, (_, l) => ({ ...shared, resid: resid[l % 2] }));
    const final = allocateFinalBuffers(gpu, spec, R, `${p}.final`, resid[spec.layers % 2]);
    this.logits = opts.head ? gpu.tensor([R, spec.vocabSize], `${p}.logits`) : null;
    this.next = opts.head ? gpu.tensor([R], `${p}.next`, 'u32') : null;

    const pass = new ForwardPass(gpu, weights, R, { tokens: this.tokens, positions: this.positions }, opts.adapters);
    this.list = gpu.list(p);
    pass.record(this.list, layers, final, cache.attention(this.positions, R), this.logits);
    if (this.logits && this.next)
      argmax(this.list, { x: { t: this.logits, ld: spec.vocabSize }, out: this.next, rows: R, vocab: spec.vocabSize });
  }
}
