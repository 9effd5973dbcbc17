/**
 * float64 references for attention against a KV cache (incremental decoding) on dense row-major arrays:
 * q and out [rows, H*HD], the cache's k and v [keyRows, KVH*HD] (row j = the token at position j).
 */
export interface DecodeAttentionDims {
  rows: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Rows the cache holds; a query at position p sees keys 0 ..= min(p, keyRows - 1). */
  keyRows: number;
  scale: number;
}

export function decodeAttentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  positions: ArrayLike<number>,
  d: DecodeAttentionDims,
): Float64Array {
  const { rows, heads: H, kvHeads: KVH, headDim: HD } = d;
  const group = H / KVH;
  const out = new Float64Array(rows * H * HD);
  for (let r = 0; r < rows; r++) {
    const keys = Math.min(positions[r], d.keyRows - 1) + 1;
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      const scores = new Float64Array(keys);
      let max = -Infinity;
      for (let j = 0; j < keys; j++) {
        let s = 0;
        for (let x = 0; x < HD; x++) s += q[r * H * HD + h * HD + x] * k[j * KVH * HD + kvh * HD + x];
        scores[j] = s * d.scale;
        max = Math.max(max, scores[j]);
      }
      let sum = 0;
      for (let j = 0; j < keys; j++) sum += scores[j] = Math.exp(scores[j] - max);
      for (let x = 0; x < HD; x++) {
        let o = 0;
        for (let j = 0; j < keys; j++) o += scores[j] * v[j * KVH * HD + kvh * HD + x];
        out[r * H * HD + h * HD + x] = o / sum;
      }
    }
  }
  return out;
}

/** The cache after storing `rows` rows of `width` at their positions (positions >= keyRows are dropped). */
export function cacheStoreRef(
  cache: ArrayLike<number>,
  src: ArrayLike<number>,
  positions: ArrayLike<number>,
  rows: number,
  width: number,
  keyRows: number,
): Float64Array {
  const out = Float64Array.from(cache);
  for (let r = 0; r < rows; r++) {
    if (positions[r] >= keyRows) continue;
    for (let c = 0; c < width; c++) out[positions[r] * width + c] = src[r * width + c];
  }
  return out;
}
