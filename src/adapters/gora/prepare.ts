/**
 * GoRA's preparation phase (docs/METHODS.md, GoRA): accumulate Ḡ over N batches, compute importance and allocate
 * ranks under the uniform-LoRA budget. The caller builds the adapters with those ranks (any structure), then
 * `initialize`s their B from Ḡ, then `release`s Ḡ and the probe graph.
 */
import type { Batch } from '../../data/index';
import type { Gpu } from '../../gpu/gpu';
import type { Recompute } from '../../model/transformer';
import type { Tensor } from '../../gpu/tensor';
import type { LinearInfo } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import { allocateRanks, normalizeImportance } from './allocate';
import { ADAPTIVE_MIN_STEPS, ADAPTIVE_TAU, type GoraConfig } from './config';
import { GradientAccumulator } from './gradients';
import { importanceStats, pickImportance, type ImportanceStats } from './importance';

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
  /** The allocated rank r_l (before any structure rounding the caller applies). */
  rank: number;
}

export interface GoraAllocation {
  modules: GoraModuleReport[];
  /** Ḡ per target path, alive until release(). */
  grads: Map<string, Tensor>;
  /** Batches accumulated (N, or fewer when adaptive N stopped early). */
  steps: number;
  /** Σ r_ref·(in+out): a uniform rank-r_ref LoRA's parameter count. */
  budgetParameters: number;
  /** Frees Ḡ and the accumulation graph. */
  release(): Promise<void>;
}

export interface GoraProgress {
  phase: 'gradients' | 'init';
  done: number;
  total: number;
}

export async function allocateGora(
  gpu: Gpu,
  weights: ModelWeights,
  targets: LinearInfo[],
  nextBatch: () => Batch,
  shape: { batch: number; seq: number; recompute?: Recompute },
  cfg: GoraConfig,
  onProgress?: (p: GoraProgress) => void,
): Promise<GoraAllocation> {
  if (targets.length === 0) throw new Error('GoRA: no target modules');
  const mark = gpu.mark();
  try {
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
        const now = (await importanceStats(gpu, weights, grads(), acc.steps)).map((s) =>
          pickImportance(s, cfg.importance),
        );
        const settled =
          previous !== null && now.every((v, i) => Math.abs(v - previous![i]) / (previous![i] + 1e-8) <= ADAPTIVE_TAU);
        previous = now;
        if (settled && acc.steps >= ADAPTIVE_MIN_STEPS) break;
      }
    }
    await acc.finish();
    const stats = await importanceStats(gpu, weights, grads());
    const importances = stats.map((s) => pickImportance(s, cfg.importance));
    if (importances.some((v) => !Number.isFinite(v))) {
      throw new Error(
        'GoRA: the accumulated gradients are not finite (the model diverges on these batches); check the data and the model.',
      );
    }
    const shares = normalizeImportance(importances);
    const temporaries = gpu.createdSince(mark);
    const ranks = allocateRanks(
      targets.map((info, i) => ({ in: info.in, out: info.out, importance: importances[i] })),
      cfg,
    );
    return {
      modules: targets.map((info, i) => ({
        path: info.path,
        layer: info.layer,
        kind: info.kind,
        in: info.in,
        out: info.out,
        importance: importances[i],
        share: shares[i],
        stats: stats[i],
        rank: ranks[i],
      })),
      grads: new Map(grads().map(({ info, grad }) => [info.path, grad])),
      steps: acc.steps,
      budgetParameters: targets.reduce((n, info) => n + cfg.rankRef * (info.in + info.out), 0),
      release: () => gpu.free(temporaries),
    };
  } catch (e) {
    await gpu.freeSince(mark);
    throw e;
  }
}
