/**
 * GoRA's preparation phase, end to end (METHODS.md §2): accumulate Ḡ over N batches, compute importance,
 * allocate ranks under the uniform-LoRA budget, and initialize B from Ḡ. Returns a plan (per-module rank,
 * scale and weights) for the dense LoRA structure, and the analysis the studio charts.
 */
import type { Batch } from '../../data/index';
import type { Gpu } from '../../gpu/gpu';
import type { LinearInfo } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import { lowRankFrobenius } from '../../util/linalg';
import { Rng } from '../../util/random';
import { kaimingUniformA } from '../lora/init';
import type { LoraPlan } from '../lora/model';
import { allocateRanks, normalizeImportance } from './allocate';
import { ADAPTIVE_MIN_STEPS, ADAPTIVE_TAU, goraScale, validateGoraConfig, type GoraConfig } from './config';
import { GradientAccumulator } from './gradients';
import { importanceStats, pickImportance, type ImportanceStats } from './importance';
import { compressInit } from './init';

export interface GoraModuleReport {
  path: string;
  layer: number;
  kind: string;
  in: number;
  out: number;
  /** The chosen importance I_l and its normalized share a_l. */
  importance: number;
  share: number;
  stats: ImportanceStats;
  rank: number;
  scale: number;
  /** ‖ΔW₀‖_F = ‖s·B₀·A₀‖_F (≈ γ‖Ḡ‖_F). */
  initNorm: number;
}

export interface GoraPreparation {
  plan: Required<LoraPlan>;
  modules: GoraModuleReport[];
  /** Batches accumulated (N, or fewer when adaptive N stopped early). */
  steps: number;
  /** Σ r_ref·(in+out) and Σ r_l·(in+out): the budget and what the allocation used. */
  budgetParameters: number;
  allocatedParameters: number;
}

export interface GoraProgress {
  phase: 'gradients' | 'init';
  done: number;
  total: number;
}

export async function prepareGora(
  gpu: Gpu, weights: ModelWeights, targets: LinearInfo[], nextBatch: () => Batch, shape: { batch: number; seq: number },
  cfg: GoraConfig, seed: number, onProgress?: (p: GoraProgress) => void,
): Promise<GoraPreparation> {
  validateGoraConfig(cfg);
  if (targets.length === 0) throw new Error('GoRA: no target modules');
  const mark = gpu.mark();
  const acc = new GradientAccumulator(gpu, weights, targets, shape);
  const grads = () => targets.map((info) => ({ info, grad: acc.probes.get(info.path)!.grad }));
  let previous: number[] | null = null;
  for (let t = 0; t < cfg.steps; t++) {
    acc.add(nextBatch());
    await gpu.sync();
    gpu.checkErrors('GoRA gradient accumulation');
    onProgress?.({ phase: 'gradients', done: t + 1, total: cfg.steps });
    if (cfg.adaptiveSteps) {
      // Importance of the running mean; stop once no matrix changes by more than τ (never before t_min).
      const now = (await importanceStats(gpu, weights, grads(), acc.steps)).map((s) => pickImportance(s, cfg.importance));
      const settled = previous !== null && now.every((v, i) => Math.abs(v - previous![i]) / (previous![i] + 1e-8) <= ADAPTIVE_TAU);
      previous = now;
      if (settled && acc.steps >= ADAPTIVE_MIN_STEPS) break;
    }
  }
  acc.finish();
  const stats = await importanceStats(gpu, weights, grads());
  const importances = stats.map((s) => pickImportance(s, cfg.importance));
  if (importances.some((v) => !Number.isFinite(v))) {
    throw new Error('GoRA: the accumulated gradients are not finite (the model diverges on these batches); lower the learning rate or check the data.');
  }
  const shares = normalizeImportance(importances);
  const ranks = allocateRanks(targets.map((info, i) => ({ in: info.in, out: info.out, importance: importances[i] })), cfg);

  const plan: Required<LoraPlan> = { ranks: new Map(), scales: new Map(), weights: new Map() };
  const modules: GoraModuleReport[] = [];
  const rng = new Rng(seed);
  for (const [i, info] of targets.entries()) {
    const rank = ranks[i];
    const scale = goraScale(rank, cfg.alpha);
    const A = kaimingUniformA(rank, info.in, rng);
    const B = await compressInit(gpu, acc.probes.get(info.path)!.grad, A, { out: info.out, in: info.in, rank }, scale, cfg.gamma);
    plan.ranks.set(info.path, rank);
    plan.scales.set(info.path, scale);
    plan.weights.set(info.path, { A, B });
    modules.push({
      path: info.path, layer: info.layer, kind: info.kind, in: info.in, out: info.out,
      importance: importances[i], share: shares[i], stats: stats[i], rank, scale,
      initNorm: lowRankFrobenius(B, A, info.out, rank, info.in, scale),
    });
    onProgress?.({ phase: 'init', done: i + 1, total: targets.length });
  }
  // Ḡ and the probe graph are not needed for training: give their memory back.
  await gpu.freeSince(mark);
  const params = (r: (i: number) => number) => targets.reduce((n, info, i) => n + r(i) * (info.in + info.out), 0);
  return {
    plan, modules, steps: acc.steps,
    budgetParameters: params(() => cfg.rankRef), allocatedParameters: params((i) => ranks[i]),
  };
}
