/**
 * float64 reference for the memory-efficient attention (flash-attention.ts) on dense row-major arrays:
 * q, out, dout and dq [B*T, H*HD], k, v, dk and dv [B*T, KVH*HD], lse and delta [B, H, T].
 * The forward gives lse (the logsumexp of each query row's scaled, masked scores) beside out; the backward
 * starts from lse, as the kernels do, so a wrong lse shows up as wrong gradients.
 */
import { firstKey, type AttentionDims } from './attention.ref';

/** Scaled scores of query i against keys lo..i (index j - lo). */
function scoreRow(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  d: AttentionDims,
  b: number,
  h: number,
  i: number,
  lo: number,
): Float64Array {
  const { seq: T, heads: H, kvHeads: KVH, headDim: HD } = d;
  const kvh = Math.floor(h / (H / KVH));
  const s = new Float64Array(i - lo + 1);
  for (let j = lo; j <= i; j++) {
    let x = 0;
    for (let c = 0; c < HD; c++) x += q[(b * T + i) * H * HD + h * HD + c] * k[(b * T + j) * KVH * HD + kvh * HD + c];
    s[j - lo] = x * d.scale;
  }
  return s;
}

/** out and lse; lse = max + log(sum exp(s - max)) over the row's allowed keys. */
export function flashForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  d: AttentionDims,
): { out: Float64Array; lse: Float64Array } {
  const { batch: B, seq: T, heads: H, kvHeads: KVH, headDim: HD } = d;
  const out = new Float64Array(B * T * H * HD);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < T; i++) {
        const lo = firstKey(d, b, i);
        const s = scoreRow(q, k, d, b, h, i, lo);
        const max = Math.max(...s);
        let sum = 0;
        for (const x of s) sum += Math.exp(x - max);
        const l = max + Math.log(sum);
        lse[(b * H + h) * T + i] = l;
        for (let j = lo; j <= i; j++) {
          const pj = Math.exp(s[j - lo] - l);
          for (let c = 0; c < HD; c++)
            out[(b * T + i) * H * HD + h * HD + c] += pj * v[(b * T + j) * KVH * HD + kvh * HD + c];
        }
      }
    }
  }
  return { out, lse };
}

/**
 * Gradients of sum(out * dout) from lse: P = exp(s - lse), out = P v, delta = rowsum(dout ∘ out),
 * dS = scale P (dout·v - delta), dq = dS k, dk = dSᵀ q and dv = Pᵀ dout (both summed over the group).
 */
export function flashBackwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dout: ArrayLike<number>,
  lse: ArrayLike<number>,
  d: AttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array; delta: Float64Array } {
  const { batch: B, seq: T, heads: H, kvHeads: KVH, headDim: HD } = d;
  const dq = new Float64Array(B * T * H * HD);
  const dk = new Float64Array(B * T * KVH * HD);
  const dv = new Float64Array(B * T * KVH * HD);
  const delta = new Float64Array(B * H * T);
  const qi = (b: number, t: number, h: number, c: number) => (b * T + t) * H * HD + h * HD + c;
  const ki = (b: number, t: number, h: number, c: number) => (b * T + t) * KVH * HD + h * HD + c;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / KVH));
      for (let i = 0; i < T; i++) {
        const lo = firstKey(d, b, i);
        const s = scoreRow(q, k, d, b, h, i, lo);
        const P = s.map((x) => Math.exp(x - lse[(b * H + h) * T + i]));
        // delta from out (as the kernel does), not from sum_j P_j dp_j: equal when lse is right.
        let dl = 0;
        for (let c = 0; c < HD; c++) {
          let o = 0;
          for (let j = lo; j <= i; j++) o += P[j - lo] * v[ki(b, j, kvh, c)];
          dl += dout[qi(b, i, h, c)] * o;
        }
        delta[(b * H + h) * T + i] = dl;
        for (let j = lo; j <= i; j++) {
          let dp = 0;
          for (let c = 0; c < HD; c++) dp += dout[qi(b, i, h, c)] * v[ki(b, j, kvh, c)];
          const pj = P[j - lo];
          const ds = d.scale * pj * (dp - dl);
          for (let c = 0; c < HD; c++) {
            dv[ki(b, j, kvh, c)] += pj * dout[qi(b, i, h, c)];
            dq[qi(b, i, h, c)] += ds * k[ki(b, j, kvh, c)];
            dk[ki(b, j, kvh, c)] += ds * q[qi(b, i, h, c)];
          }
        }
      }
    }
  }
  return { dq, dk, dv, delta };
}
