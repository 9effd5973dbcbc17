/**
 * Whole-model finite-difference gradient check, one verdict per trainable tensor.
 *
 * For a tensor with analytic gradient g (from the backward pass) and true gradient g* (what the loss does), the
 * check estimates ‖g − g*‖ and ‖g*‖ by central differences along random ±1 directions d_k: for any vector e,
 * E[<e, d>²] = ‖e‖², so with D_k = (L(p + h·d_k) − L(p − h·d_k)) / 2h ≈ <g*, d_k>,
 *
 *   ‖g*‖²      ≈ mean_k D_k²                  (the finite-difference gradient's norm)
 *   ‖g − g*‖²  ≈ mean_k (<g, d_k> − D_k)²     (the error's norm, whatever its direction)
 *
 * and one more difference along g's own direction checks its length precisely. A tensor passes when
 *
 *   error / max(‖g*‖, FLOOR) <= REL_TOL   and   ‖g*‖ > FLOOR, ‖g‖ > FLOOR   (its gradient must not vanish).
 *
 * So an analytic gradient of zero fails (relative error 1) however small the true gradient is, and so does one
 * that misses a part of the gradient (a row, a block, a term) of more than a few percent of its norm.
 *
 * Differences (float32): each element moves by h = DISPLACEMENT/√n, so the whole tensor moves by DISPLACEMENT, and
 * every derivative is Richardson's extrapolation of the central differences at h and h/2, (4·D(h/2) − D(h)) / 3,
 * which cancels their h² truncation term (measured on GoRA x GraLoRA tensors perturbed to gradient norms of ~5:
 * 1.1e-2 relative at 0.02 without it, 8e-4 with it). The loss (≈ ln V ≈ 3.5–4.8 for the tiny models) is an f32
 * number whose ulp is 4.8e-7, and evaluations at nearby points differ by ~1 ulp (measured: 2.4e-7 to 9.5e-7), so a
 * difference carries noise ≈ ulp/h = ulp·√n/DISPLACEMENT, ≈ 3·ulp·√n/DISPLACEMENT after the extrapolation:
 * ≤ 2.3e-3 for the largest tensor (n = 1024). FLOOR = 1e-2 is above that noise; the trainable tensors of the tiny
 * test models (with B perturbed, see the callers) have gradient norms of 3e-2 to 7.
 * REL_TOL = 1e-2: a correct backward measures up to ~1e-3; a gradient 2% too long or too short fails, and so does
 * one that lacks a part of more than a few percent of its norm.
 */
import { expect } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { ModelSpec } from '../../src/model/config';
import { allLinearTargets } from '../../src/model/layout';
import type { LinearAdapter, Trainable } from '../../src/model/adapter';
import type { Gpu } from '../../src/gpu/gpu';
import { TransformerGraph, type GraphOptions } from '../../src/model/transformer';
import type { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { randomBatch } from './tiny-models';

/** Norm of the whole-tensor displacement per finite difference. */
const DISPLACEMENT = 0.02;
/** Gradient norms below this are finite-difference noise (see above). */
export const GRADCHECK_FLOOR = 1e-2;
/** Largest accepted ‖g − g*‖ / max(‖g*‖, FLOOR). */
export const GRADCHECK_REL_TOL = 1e-2;
/** The displacement along g's own direction, relative to DISPLACEMENT (the loss curves most along its gradient). */
const ALONG_G = 0.5;
/** Random ±1 directions per tensor. */
const PROBES = 6;

export interface TensorGradCheck {
  name: string;
  size: number;
  /** ‖g‖ of the backward pass's gradient. */
  analyticNorm: number;
  /** ‖g*‖ estimated by finite differences. */
  numericNorm: number;
  /** ‖g − g*‖ / max(‖g*‖, FLOOR), estimated from the random directions. */
  relError: number;
  /** |‖g‖ − <g*, g/‖g‖>| / max(‖g*‖, FLOOR): the length along g's own direction. */
  relErrorAlong: number;
}

/** The verdict on one tensor: null when it passes, else the reason. */
export function gradCheckFailure(r: TensorGradCheck): string | null {
  const nums =
    `‖g‖ ${r.analyticNorm.toExponential(3)}, finite differences ‖g*‖ ${r.numericNorm.toExponential(3)}, ` +
    `relative error ${r.relError.toExponential(2)} (along g: ${r.relErrorAlong.toExponential(2)})`;
  if (!(r.numericNorm > GRADCHECK_FLOOR))
    return `${r.name}: the loss does not move with this tensor (${nums}); the check cannot tell a zero gradient from a right one`;
  if (!(r.analyticNorm > GRADCHECK_FLOOR)) return `${r.name}: zero analytic gradient (${nums})`;
  if (!(r.relError <= GRADCHECK_REL_TOL) || !(r.relErrorAlong <= GRADCHECK_REL_TOL))
    return `${r.name}: ${nums} > ${GRADCHECK_REL_TOL}`;
  return null;
}

/**
 * Measures every trainable tensor of a training graph (the graph's batch must be set). `tamper` edits the
 * analytic gradients read back before they are compared (the checker's own tests break them on purpose).
 */
export async function measureGradients(
  gpu: Gpu,
  graph: TransformerGraph,
  supervised: number,
  seed: number,
  tamper?: (name: string, g: Float32Array) => void,
): Promise<TensorGradCheck[]> {
  const rng = new Rng(seed);
  graph.backwardList!.run();
  const grads = new Map<Trainable, Float32Array>();
  for (const t of graph.trainables) {
    const g = await gpu.read(t.grad);
    tamper?.(t.name, g);
    grads.set(t, g);
  }
  gpu.checkErrors('backward');

  // Every loss of one tensor's differences is queued (upload, forward, copy of the loss sum into its slot) and read
  // back at once: per direction, L(p0 ± h·d) and L(p0 ± h/2·d).
  const directions = PROBES + 1;
  const slots = 4 * directions;
  const results = gpu.tensor([slots], 'gradcheck.losses');
  const copies = Array.from({ length: slots }, (_, i) => {
    const list = gpu.list(`gradcheck.loss${i}`);
    list.copy(graph.lossSum, results, 1, 0, i);
    return list;
  });

  const out: TensorGradCheck[] = [];
  for (const t of graph.trainables) {
    const g = grads.get(t)!;
    const n = g.length;
    const p0 = await gpu.read(t.param);
    let analyticNormSq = 0;
    for (let i = 0; i < n; i++) analyticNormSq += g[i] * g[i];
    const analyticNorm = Math.sqrt(analyticNormSq);
    // PROBES random ±1 directions, then g's own direction u = g/‖g‖ scaled to ‖d‖ = √n like them.
    const dirs: { d: Float64Array; h: number }[] = [];
    const h = DISPLACEMENT / Math.sqrt(n);
    for (let k = 0; k < PROBES; k++)
      dirs.push({ d: Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1)), h });
    dirs.push({
      d: Float64Array.from(g, (x) => (analyticNorm > 0 ? x / analyticNorm : 0) * Math.sqrt(n)),
      h: h * ALONG_G,
    });
    // <g, ·> over the displacement the f32 parameters really took, per evaluation pair.
    const analytic: number[] = [];
    let slot = 0;
    for (const { d, h: step } of dirs) {
      for (const hh of [step, step / 2]) {
        const up = p0.map((p, i) => p + hh * d[i]);
        const down = p0.map((p, i) => p - hh * d[i]);
        for (const x of [up, down]) {
          gpu.upload(t.param, x);
          graph.forwardList.run();
          copies[slot++].run();
        }
        let a = 0;
        for (let i = 0; i < n; i++) a += (g[i] * (up[i] - down[i])) / (2 * hh);
        analytic.push(a);
      }
    }
    gpu.upload(t.param, p0);
    const losses = Array.from(await gpu.read(results), (sum) => sum / supervised);
    // Central differences at h and h/2, then Richardson's extrapolation (4·D(h/2) − D(h)) / 3.
    const central = (j: number, hh: number) => (losses[2 * j] - losses[2 * j + 1]) / (2 * hh);
    const extrapolated = dirs.map(({ h: step }, k) => ({
      numeric: (4 * central(2 * k + 1, step / 2) - central(2 * k, step)) / 3,
      analytic: (4 * analytic[2 * k + 1] - analytic[2 * k]) / 3,
    }));
    let numericSq = 0;
    let errorSq = 0;
    for (const { numeric, analytic: a } of extrapolated.slice(0, PROBES)) {
      numericSq += numeric * numeric;
      errorSq += (numeric - a) ** 2;
    }
    const numericNorm = Math.sqrt(numericSq / PROBES);
    const along = extrapolated[PROBES];
    out.push({
      name: t.name,
      size: n,
      analyticNorm,
      numericNorm,
      relError: Math.sqrt(errorSq / PROBES) / Math.max(numericNorm, GRADCHECK_FLOOR),
      // Along u: D ≈ √n·<g*, u>, analytic √n·‖g‖ (no direction, and no verdict, for a zero g).
      relErrorAlong:
        analyticNorm > 0
          ? Math.abs(along.numeric - along.analytic) / Math.sqrt(n) / Math.max(numericNorm, GRADCHECK_FLOOR)
          : Infinity,
    });
  }
  for (const list of copies) await list.release();
  await gpu.freeTensors([results]);
  gpu.checkErrors('gradient check');
  return out;
}

/** The graph is batch 2 x seq 5 on a fixed random batch; any other graph option (recompute, chunking, ...) passes through. */
export type GradCheckOptions = {
  mode: 'adapters' | 'full';
  adapters?: Map<string, LinearAdapter>;
  seed?: number;
} & Omit<GraphOptions, 'batch' | 'seq' | 'train' | 'adapters'>;

export async function checkModelGradients(
  gpu: Gpu,
  weights: ModelWeights,
  opts: GradCheckOptions,
): Promise<TensorGradCheck[]> {
  const { mode, adapters, seed, ...graphOptions } = opts;
  const graph = new TransformerGraph(gpu, weights, { ...graphOptions, batch: 2, seq: 5, train: mode, adapters });
  expect(graph.trainables.length).toBeGreaterThan(0);
  const batch = randomBatch(weights.spec, 2, 5, 4);
  graph.setBatch(batch);
  const results = await measureGradients(gpu, graph, batch.supervised, seed ?? 2);
  const failures = results.map(gradCheckFailure).filter((f) => f !== null);
  expect(failures, failures.join('\n')).toEqual([]);
  return results;
}

/**
 * Rank-3 LoRA on every linear layer with random B: B = 0 at init would make every dA vanish, so both gradients are
 * exercised.
 */
export function randomLora(gpu: Gpu, spec: ModelSpec): Map<string, LinearAdapter> {
  const rng = new Rng(2);
  const layers = createLoraLayers(
    gpu,
    spec,
    { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 },
    3,
  );
  for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
  return new Map(layers);
}
