/**
 * GeLoRA's preparation phase: hidden states of the frozen model -> TwoNN intrinsic dimension of every
 * residual stream -> one rank per block, optionally fitted to a uniform LoRA's parameter budget, given
 * to every target module of that block (docs/METHODS.md, GeLoRA).
 */
import type { Batch } from '../../data/batches';
import type { Gpu } from '../../gpu/gpu';
import { selectTargets, type LinearInfo } from '../../model/layout';
import { TransformerGraph } from '../../model/transformer';
import type { ModelWeights } from '../../model/weights';
import { collectHiddenStates } from './collect';
import { geloraScale, validateGeloraConfig, type GeloraConfig } from './config';
import { fitGeloraBudget, geloraRanks } from './ranks';
import { estimateIntrinsicDimension, MIN_DISTINCT_POINTS, type IntrinsicDimension } from './twonn';

export type GeloraPhase = 'collect' | 'estimate';

export interface AnalyzeOptions {
  /** Sampling seed (the same seed picks the same tokens). */
  seed?: number;
  /** The tokenizer's pad id (see CollectOptions.padId). */
  padId?: number;
  onProgress?: (phase: GeloraPhase, done: number, total: number) => void;
}

export interface GeloraAnalysis {
  /** d_0..d_L: intrinsic dimension of each residual stream. */
  dims: number[];
  /** Per stream: points used, duplicates removed, points skipped. */
  estimates: IntrinsicDimension[];
  /** r_ℓ from the formula, one per block. */
  rawRanks: number[];
  /** The ranks to train with: rawRanks, or their budget fit. */
  ranks: number[];
  /** The LoRA scale s every module uses. */
  scale: number;
  /** c of the budget fit (1 for 'raw'). */
  budgetFactor: number;
  /** Adapter parameters at `ranks`, and the budget (a rank-rankRef LoRA's count; the same for 'raw', for comparison). */
  params: number;
  budget: number;
  /** Hidden-state points sampled per stream. */
  samples: number;
  ranksByModule: Map<string, number>;
  warnings: string[];
}

export async function analyzeGelora(
  gpu: Gpu,
  weights: ModelWeights,
  batches: Batch[],
  cfg: GeloraConfig,
  opts: AnalyzeOptions = {},
): Promise<GeloraAnalysis> {
  const warnings = validateGeloraConfig(cfg);
  const spec = weights.spec;
  const targets = selectTargets(spec, cfg.targets);
  if (batches.length === 0) throw new Error('GeLoRA needs training batches to sample hidden states from');
  const { batch, seq } = batches[0];
  if (batches.some((b) => b.batch !== batch || b.seq !== seq))
    throw new Error('GeLoRA: all batches must have the same batch x seq shape');

  // The caller frees this graph's buffers after the analysis (Gpu.mark / freeSince).
  const graph = new TransformerGraph(gpu, weights, { batch, seq, train: 'none' });
  const states = await collectHiddenStates(gpu, graph, batches, {
    samples: cfg.samples,
    perSequence: cfg.perSequence,
    seed: opts.seed,
    padId: opts.padId,
    onProgress: (done, total) => opts.onProgress?.('collect', done, total),
  });
  if (states.count < MIN_DISTINCT_POINTS) {
    throw new Error(
      `GeLoRA: the training data gave only ${states.count} usable token positions (position 0 and padding excluded); need at least ${MIN_DISTINCT_POINTS}.`,
    );
  }
  if (states.count < cfg.samples) {
    warnings.push(
      `GeLoRA: the training data gave ${states.count} hidden-state samples, fewer than --gelora-samples ${cfg.samples}.`,
    );
  }

  const estimates: IntrinsicDimension[] = [];
  for (const [l, points] of states.layers.entries()) {
    estimates.push(await estimateIntrinsicDimension(gpu, points, states.count, states.hidden));
    opts.onProgress?.('estimate', l + 1, states.layers.length);
  }
  const dims = estimates.map((e) => e.dimension);
  const rawRanks = geloraRanks(dims, cfg.rounding);

  const widths = layerWidths(targets, spec.layers);
  const budget = targets.reduce((s, m) => s + cfg.rankRef * (m.in + m.out), 0);
  let ranks = rawRanks;
  let budgetFactor = 1;
  if (cfg.budget === 'fit') {
    const fit = fitGeloraBudget(rawRanks, widths, budget, cfg.rankMax);
    if (!fit.withinBudget)
      warnings.push(`GeLoRA: even rank 1 in every block exceeds the budget of ${budget} parameters; using rank 1.`);
    ranks = fit.ranks;
    budgetFactor = fit.factor;
  }
  return {
    dims,
    estimates,
    rawRanks,
    ranks,
    scale: geloraScale(cfg),
    budgetFactor,
    params: ranks.reduce((s, r, l) => s + r * widths[l], 0),
    budget,
    samples: states.count,
    ranksByModule: new Map(targets.map((m) => [m.path, ranks[m.layer]])),
    warnings,
  };
}

/** Σ over block ℓ's target matrices of (in + out): a rank-r adapter on block ℓ costs r times this. */
export function layerWidths(targets: LinearInfo[], layers: number): number[] {
  const widths = new Array<number>(layers).fill(0);
  for (const m of targets) widths[m.layer] += m.in + m.out;
  return widths;
}
