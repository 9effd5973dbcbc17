/**
 * The KV cache of incremental decoding: per layer, the k|v rows of every position decoded so far, exactly as
 * attention consumes them (after RoPE and Qwen3's qk-norm). Row j holds position j: [capacity, 2 * kvWidth].
 */
import type { Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { cacheStore, decodeAttention } from '../kernels/decode-attention';
import type { ModelSpec } from './config';
import { qkvWidth, type AttentionStep } from './transformer';

export class KvCache {
  readonly layers: Tensor[] = [];
  /** Columns of one cache row: k then v, kvHeads * headDim each. */
  readonly width: number;

  constructor(
    gpu: Gpu,
    private readonly spec: ModelSpec,
    /** Positions the cache holds. */
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`KV cache capacity must be a positive integer, got ${capacity}`);
    this.width = 2 * spec.kvHeads * spec.headDim;
    for (let l = 0; l < spec.layers; l++) this.layers.push(gpu.tensor([capacity, this.width], `kv_cache.${l}`));
  }

  /**
   * The attention of a forward pass over `rows` new tokens at `positions` (u32 [rows]): each layer stores the
   * rows' k|v at their positions, then every row attends over the keys up to its own position. Rows at
   * position `capacity` (padding) store nothing.
   */
  attention(positions: Tensor, rows: number): AttentionStep {
    const { spec, capacity, width } = this;
    const hd = spec.headDim;
    const qWidth = spec.heads * hd;
    const ld = qkvWidth(spec);
    return (list, layer, qkv, att) => {
      const cache = this.layers[layer];
      // k|v are adjacent columns of the fused q|k|v row: one store moves both.
      cacheStore(list, {
        src: { t: qkv, offset: qWidth, ld },
        dst: { t: cache, ld: width },
        positions,
        rows,
        width,
        keyRows: capacity,
      });
      decodeAttention(list, {
        q: { t: qkv, offset: 0, ld },
        k: { t: cache, offset: 0, ld: width },
        v: { t: cache, offset: width / 2, ld: width },
        out: { t: att, ld: qWidth },
        positions,
        rows,
        heads: spec.heads,
        kvHeads: spec.kvHeads,
        headDim: hd,
        keyRows: capacity,
        scale: 1 / Math.sqrt(hd),
      });
    };
  }
}
