/**
 * float64 reference for causal GQA attention (optionally masked to packed documents) on dense row-major arrays:
 * q and dq [B*T, H*HD], k, v, dk and dv [B*T, KVH*HD], probs and dscores [B, H, T, T]. The flash-attention and
 * decode-attention kernels are tested against it (test/kernels/attention.test.ts checks it by finite differences).
 */
export interface AttentionDims {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
  /**
   * Token positions [B*T] of packed rows: a query at position p attends only to the p keys before it (its own
   * document, where positions restarted at 0). Absent: plain causal attention over the whole row.
   */
  positions?: ArrayLike<number>;
}

/** The first key query i of row b may attend to. */
export function firstKey(d: Pick<AttentionDims, 'seq' | 'positions'>, b: number, i: number): number {
  return d.positions ? i - Math.min(d.positions[b * d.seq + i], i) : 0;
}

export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  d: AttentionDims,
): { out: Float64Array; probs: Float64Array } {
  const { batch: B, seq: T, heads: H, kvHeads: KVH, headDim: HD } = d;
  const group = H / KVH;
  const out = new Float64Array(B * T * H * HD);
  const probs = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const row = ((b * H + h) * T + i) * T;
        const lo = firstKey(d, b, i);
        let max = -Infinity;
        for (let j = lo; j <= i; j++) {
          let s = 0;
          for (let x = 0; x < HD; x++)
            s += q[(b * T + i) * H * HD + h * HD + x] * k[(b * T + j) * KVH * HD + kvh * HD + x];
          probs[row + j] = s * d.scale;
          max = Math.max(max, probs[row + j]);
        }
        let sum = 0;
        for (let j = lo; j <= i; j++) sum += probs[row + j] = Math.exp(probs[row + j] - max);
        for (let j = lo; j <= i; j++) probs[row + j] /= sum;
        for (let x = 0; x < HD; x++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += probs[row + j] * v[(b * T + j) * KVH * HD + kvh * HD + x];
          out[(b * T + i) * H * HD + h * HD + x] = s;
        }
      }
    }
  }
  return { out, probs };
}

/** Gradients of sum(out * dout) with respect to q, k and v; dscores is the gradient of the raw q·k. */
export function attentionBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  d: AttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array; dscores: Float64Array } {
  const { batch: B, seq: T, heads: H, kvHeads: KVH, headDim: HD } = d;
  const group = H / KVH;
  const { probs } = attentionForwardRef(q, k, v, d);
  const dq = new Float64Array(B * T * H * HD);
  const dk = new Float64Array(B * T * KVH * HD);
  const dv = new Float64Array(B * T * KVH * HD);
  const dscores = new Float64Array(B * H * T * T);
  const qi = (b: number, t: number, h: number, x: number) => (b * T + t) * H * HD + h * HD + x;
  const ki = (b: number, t: number, h: number, x: number) => (b * T + t) * KVH * HD + h * HD + x;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const row = ((b * H + h) * T + i) * T;
        // dp_j = dout_i · v_j; softmax backward: ds_j = p_j (dp_j - sum_j' p_j' dp_j').
        const dp = new Float64Array(i + 1);
        let dot = 0;
        for (let j = 0; j <= i; j++) {
          for (let x = 0; x < HD; x++) dp[j] += dout[qi(b, i, h, x)] * v[ki(b, j, kvh, x)];
          dot += probs[row + j] * dp[j];
        }
        for (let j = 0; j <= i; j++) {
          const p = probs[row + j];
          const ds = d.scale * p * (dp[j] - dot);
          dscores[row + j] = ds;
          for (let x = 0; x < HD; x++) {
            dv[ki(b, j, kvh, x)] += p * dout[qi(b, i, h, x)];
            dq[qi(b, i, h, x)] += ds * k[ki(b, j, kvh, x)];
            dk[ki(b, j, kvh, x)] += ds * q[qi(b, i, h, x)];
          }
        }
      }
    }
  }
  return { dq, dk, dv, dscores };
}
