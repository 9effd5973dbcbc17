/**
 * float64 reference for sampling one token from a logits row (sample.wgsl), computed directly from the
 * definitions with sorts (the kernel searches thresholds instead):
 * - repetition penalty over the seen tokens, as transformers: logit > 0 ? logit / p : logit * p;
 * - temperature 0: the first index of the largest penalized logit (greedy);
 * - otherwise weights w = exp((logit - max) / temperature) (the softmax before normalizing; 0 below e^-103, where
 *   f32's exp underflows), then
 * - top-k: keep logits >= the k-th largest (ties with it stay);
 * - top-p: over the top-k survivors, keep every group of equal logits whose more likely tokens hold less than
 *   top_p of the mass (transformers' rule with ties kept together, so no sort order decides);
 * - min-p: keep w >= min_p (w of the most likely token is 1);
 * - the draw: the first index, in vocabulary order, where the running sum of kept weights exceeds u times their
 *   total (the last kept index if rounding leaves none).
 */
export interface SampleParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

/** Below this, exp underflows in f32: the kernel and this reference give such tokens weight 0. */
export const MIN_EXPONENT = -103;

export function penalizedRef(logits: ArrayLike<number>, seen: ReadonlySet<number>, penalty: number): Float64Array {
  const out = Float64Array.from(logits);
  if (penalty !== 1) for (const i of seen) out[i] = out[i] > 0 ? out[i] / penalty : out[i] * penalty;
  return out;
}

/** The kept tokens' weights (0 for filtered ones); greedy: 1 at the argmax. Normalize to get probabilities. */
export function keptWeightsRef(logits: ArrayLike<number>, seen: ReadonlySet<number>, s: SampleParams): Float64Array {
  const x = penalizedRef(logits, seen, s.repetitionPenalty);
  const V = x.length;
  const w = new Float64Array(V);
  let best = 0;
  for (let i = 1; i < V; i++) if (x[i] > x[best]) best = i;
  if (s.temperature === 0) {
    w[best] = 1;
    return w;
  }
  const max = x[best];
  for (let i = 0; i < V; i++) {
    const e = (x[i] - max) / s.temperature;
    w[i] = e < MIN_EXPONENT ? 0 : Math.exp(e);
  }
  const keep = new Array<boolean>(V).fill(true);
  if (s.topK > 0 && s.topK < V) {
    const kth = Float64Array.from(x).sort().reverse()[s.topK - 1];
    for (let i = 0; i < V; i++) if (x[i] < kth) keep[i] = false;
  }
  if (s.topP < 1) {
    let total = 0;
    for (let i = 0; i < V; i++) if (keep[i]) total += w[i];
    const values = [...new Set([...x].filter((_, i) => keep[i]))].sort((a, b) => b - a);
    let above = 0;
    const kept = new Set<number>();
    for (const v of values) {
      if (above >= s.topP * total) break;
      kept.add(v);
      for (let i = 0; i < V; i++) if (keep[i] && x[i] === v) above += w[i];
    }
    for (let i = 0; i < V; i++) if (!kept.has(x[i])) keep[i] = false;
  }
  if (s.minP > 0) for (let i = 0; i < V; i++) if (w[i] < s.minP) keep[i] = false;
  for (let i = 0; i < V; i++) if (!keep[i]) w[i] = 0;
  return w;
}

/** The token drawn with uniform number u in [0, 1), and the distribution it was drawn from. */
export function sampleRef(
  logits: ArrayLike<number>,
  seen: ReadonlySet<number>,
  s: SampleParams,
  u: number,
): { token: number; probs: Float64Array } {
  const w = keptWeightsRef(logits, seen, s);
  let total = 0;
  for (const x of w) total += x;
  const probs = w.map((x) => x / total);
  const target = u * total;
  let acc = 0;
  let last = -1;
  for (let i = 0; i < w.length; i++) {
    if (w[i] === 0) continue;
    acc += w[i];
    last = i;
    if (acc > target) return { token: i, probs };
  }
  return { token: last, probs };
}
