/**
 * Methods as composition (docs/METHODS.md): a method is a structure (dense B·A or GraLoRA's k x k blocks) x a
 * rank allocation (uniform, GoRA's gradient importance, GeLoRA's intrinsic dimensions) x an initialization
 * (LoRA's, or GoRA's gradient compression) x a scale rule. The named methods are recipes, registered with their
 * options in src/adapters/registry.ts; the structure option swaps the structure of an allocating method (GoRA or
 * GeLoRA ranks with GraLoRA blocks) without new code.
 */
import { analyzeGelora } from '../adapters/gelora/analyze';
import { geloraConfigOf } from '../adapters/gelora/method';
import { goraConfigOf } from '../adapters/gora/method';
import { goraScale, type GoraConfig } from '../adapters/gora/config';
import { goraInitGralora, goraInitLora } from '../adapters/gora/init-layers';
import { allocateGora, type GoraModuleReport } from '../adapters/gora/prepare';
import { graloraScale } from '../adapters/gralora/config';
import type { GraloraLayer } from '../adapters/gralora/layer';
import { createGraloraLayers } from '../adapters/gralora/model';
import { loraScale } from '../adapters/lora/config';
import type { AdapterStructure, Allocation, Init, OptionValues, Recipe, Structure } from '../adapters/options';
import {
  allMethodOptions,
  cliMessages,
  formMessages,
  isMethodId,
  METHOD_IDS,
  methodDescriptor,
  methodProblems,
  unknownMethodProblem,
  resolveMethodOptions,
  type MethodId,
  type MethodOptionValues,
  type MethodProblem,
} from '../adapters/registry';
import { STRUCTURES } from '../adapters/structure';
import type { LoraLayer } from '../adapters/lora/layer';
import { createLoraLayers } from '../adapters/lora/model';
import type { LinearAdapter } from '../model/adapter';
import type { Batch } from '../data/index';
import type { Gpu } from '../gpu/gpu';
import type { ModelSpec } from '../model/config';
import { allLinearTargets, defaultTargets, selectTargets, type LinearInfo } from '../model/layout';
import type { Recompute, TrainMode } from '../model/transformer';
import type { ModelWeights } from '../model/weights';
import type { StepWork } from '../train/trainer';
import { moduleAllocation } from './module-allocation';
import { OWN_METHOD_BUILDERS } from './own-methods';

export { METHOD_IDS, STRUCTURES };
export type { AdapterStructure, Allocation, Init, MethodId, Structure };

/**
 * What every adapter method is given (method, rank, alpha, targets, seed, LoRA+ ratio) and each method's own
 * options by key, declared beside its descriptor in src/adapters/<method>/method.ts (MethodOptionValues).
 */
export interface MethodOptions extends MethodOptionValues {
  method: string;
  /** LoRA rank; r_ref (the budget) for GoRA and GeLoRA; the block part's r for GraLoRA. */
  rank: number;
  alpha: number;
  /** Target names; 'all-linear' selects every projection. Empty = PEFT's default for the family. */
  targets: string[];
  seed: number;
  lrRatioB?: number;
}

/** One adapted matrix in the analysis (allocation.json and the studio's heatmap). */
export interface ModuleAllocation {
  path: string;
  layer: number;
  kind: string;
  in: number;
  out: number;
  rank: number;
  scale: number;
  parameters: number;
  /** GraLoRA's k for this module and the hybrid rank. */
  k?: number;
  hybridRank?: number;
  /** GoRA: importance I_l, its share a_l, ‖Ḡ‖_F and ‖ΔW₀‖_F. */
  importance?: number;
  share?: number;
  gradNorm?: number;
  initNorm?: number;
  /** PiSSA and LoRA-GA: the singular values their init captured (of W, or of the accumulated gradient), largest first. */
  singularValues?: number[];
  /** DoRA: ‖W‖ per output row at the start, summarized (the magnitude vector starts there). */
  weightNormMean?: number;
  /** AdaLoRA: the rank it starts with (init_r); `rank` is what it keeps. */
  initRank?: number;
}

/**
 * What changes while a run trains, measured at each evaluation (and at the end): AdaLoRA's ranks per module,
 * DoRA's magnitude drift ‖m − ‖W‖_row‖ / ‖‖W‖_row‖ per module. Module order is the analysis' `modules` order.
 */
export interface MethodSnapshot {
  step: number;
  ranks?: number[];
  magnitudeDrift?: number[];
}

export interface MethodAnalysis {
  method: MethodId;
  structure: AdapterStructure | 'full';
  allocation: Allocation | 'none';
  init: Init | 'none';
  modules: ModuleAllocation[];
  trainableParameters: number;
  /** A uniform rank-r LoRA's parameter count on the same targets (the budget of GoRA and GeLoRA). */
  loraEquivalentParameters: number;
  preparationMs: number;
  gora?: { steps: number; importance: string; gamma: number; alpha: number; rankMin: number; rankMax: number };
  /** GeLoRA: d_0..d_L of the residual streams, raw ranks per block, the budget factor and samples. */
  gelora?: {
    dims: number[];
    rawRanks: number[];
    ranks: number[];
    budgetFactor: number;
    samples: number;
    scale: number;
  };
  /** PiSSA / LoRA-GA: how the SVD was computed ('exact', or PEFT's randomized 'niter_N'). */
  svd?: string;
  /** AdaLoRA: PEFT's schedule as resolved for the run, and the budget (total kept ranks) per step. */
  adalora?: { initR: number; targetR: number; tinit: number; tfinal: number; deltaT: number; totalStep: number };
  /** Snapshots taken during training (MethodState.snapshot), oldest first. */
  timeline?: MethodSnapshot[];
  /**
   * The run's batch as trained (set by trainRun; absent in analyses saved before it): rows per micro-batch,
   * micro-batches per optimizer step, and their product.
   */
  training?: { batch: number; gradAccum: number; effectiveBatch: number };
  warnings: string[];
}

/** A run's layers by structure: what export reads back (the graph only needs `adapters`). */
export type AdapterLayers =
  | { structure: 'dense'; layers: Map<string, LoraLayer> }
  | { structure: 'gralora'; layers: Map<string, GraloraLayer> }
  | { structure: 'full' }
  /** A method whose folder reads its own layers back for export (DoRA, PiSSA, LoRA-GA, AdaLoRA). */
  | { structure: 'own'; export(gpu: Gpu, spec: ModelSpec, opts: OwnExportOptions): Promise<OwnExport> };

export interface OwnExportOptions {
  baseModel: string;
  /** PiSSA and LoRA-GA: write the raw adapter (for the modified base) instead of the rank-2r LoRA on the original base. */
  raw?: boolean;
}

/** A PEFT folder a method's own export writes: its format, and why it is not the method's native one (null if it is). */
export interface OwnExport {
  config: Record<string, unknown>;
  tensors: { name: string; shape: number[]; data: Float32Array }[];
  format: 'lora' | 'adalora';
  note: string | null;
}

export interface MethodState {
  method: MethodId;
  train: TrainMode;
  /** The one adapter map: module path -> adapter, whatever the structure. */
  adapters: Map<string, LinearAdapter>;
  layers: AdapterLayers;
  /** For export: the configured alpha and whether dense scales are alpha/√r (rsLoRA convention). */
  alpha: number;
  rslora: boolean;
  analysis: MethodAnalysis;
  /** GPU work the method adds to every step, host writes before it, and the step state a checkpoint carries. */
  training?: StepWork;
  /** What changed since the start (AdaLoRA's ranks, DoRA's magnitudes), read back between steps. */
  snapshot?(step: number): Promise<MethodSnapshot>;
}

/** What a preparation phase reads: training batches (the first N of the training order) and progress. */
export interface PreparationContext {
  /** The training stream's batches in order, from a copy of the stream (training still starts at batch 0). */
  nextBatch(): Batch;
  /** The training shape (and recomputation) preparation graphs use. */
  shape: { batch: number; seq: number; recompute?: Recompute };
  padId?: number;
  /** The run's optimizer steps (AdaLoRA's total_step when not given). */
  totalSteps?: number;
  /**
   * Micro-batches per optimizer step (default 1): a gradient a layer adds in every backward pass (AdaLoRA's
   * orthogonal regularizer) is divided by it, so it counts once per step.
   */
  gradAccum?: number;
  onProgress?(p: { phase: string; done: number; total: number }): void;
}

/** What a method that builds itself (its folder's build.ts) is given: the run's resolved options and targets. */
export interface OwnBuildContext extends PreparationContext {
  /** Every option resolved (defaults filled in). */
  options: MethodOptions;
  /** The PEFT target names (defaults and 'all-linear' resolved) and the modules they select, in model order. */
  targetNames: string[];
  targets: LinearInfo[];
  /** performance.now() when building started (the analysis' preparationMs). */
  t0: number;
}

export type OwnMethodBuilder = (gpu: Gpu, weights: ModelWeights, c: OwnBuildContext) => Promise<MethodState>;

export function resolveTargets(spec: ModelSpec, targets: string[]): string[] {
  if (targets.length === 0) return defaultTargets(spec);
  if (targets.length === 1 && targets[0] === 'all-linear') return allLinearTargets(spec);
  return targets;
}

/**
 * The method options among `o` (which may carry a whole run's settings) as given; absent ones take their defaults
 * in resolveMethodOptions.
 */
function givenOptions(o: MethodOptions): OptionValues {
  const given: OptionValues = {};
  const fields = o as unknown as Record<string, OptionValues[string]>;
  for (const option of allMethodOptions()) if (fields[option.key] !== undefined) given[option.key] = fields[option.key];
  return given;
}

/** The options a run reads, every default applied (the registry's resolveMethodOptions). */
function resolvedOptions(o: MethodOptions): MethodOptions {
  const { values } = resolveMethodOptions(o.method as MethodId, o.rank, givenOptions(o));
  return {
    method: o.method,
    rank: o.rank,
    alpha: o.alpha,
    targets: o.targets,
    seed: o.seed,
    lrRatioB: o.lrRatioB ?? 1,
    ...values,
  };
}

function recipeOf(o: MethodOptions): Recipe {
  const base = methodDescriptor(o.method as MethodId).recipe!;
  return o.structure === undefined ? base : { ...base, structure: o.structure as Structure };
}

/** What is wrong with a method's options (the registry's checks), before any model is loaded. */
export function methodOptionProblems(o: MethodOptions): MethodProblem[] {
  if (!isMethodId(o.method)) return [unknownMethodProblem(o.method)];
  return methodProblems(o.method, { rank: o.rank, alpha: o.alpha, lrRatioB: o.lrRatioB, given: givenOptions(o) });
}

/**
 * Checks a method's options without a model and throws the first problem: worded with the CLI's flags for the
 * CLI, else with the options' own names (what the engine says to any surface).
 */
export function validateMethodOptions(o: MethodOptions, wording: 'cli' | 'neutral' = 'neutral'): void {
  const problems = methodOptionProblems(o);
  if (problems.length === 0) return;
  // The studio's words (the options' own names) are what the engine says to any surface but the CLI.
  throw new Error((wording === 'cli' ? cliMessages(problems) : formMessages(o.method, problems))[0]);
}

/**
 * Builds a run's adapters: runs the method's preparation phase (GoRA's gradients, GeLoRA's intrinsic
 * dimensions) on the GPU, allocates, initializes. Everything the step loop needs is allocated here.
 */
export async function buildMethod(
  gpu: Gpu,
  weights: ModelWeights,
  given: MethodOptions,
  ctx: PreparationContext,
): Promise<MethodState> {
  validateMethodOptions(given);
  const o = resolvedOptions(given);
  const spec = weights.spec;
  const t0 = performance.now();
  if (o.method === 'full') {
    weights.requireF32('Full fine-tuning');
    weights.requireUnsharded('Full fine-tuning');
    return {
      method: 'full',
      train: 'full',
      adapters: new Map(),
      layers: { structure: 'full' },
      alpha: o.alpha,
      rslora: false,
      analysis: {
        method: 'full',
        structure: 'full',
        allocation: 'none',
        init: 'none',
        modules: [],
        warnings: [],
        preparationMs: 0,
        trainableParameters: weights.parameterCount(),
        loraEquivalentParameters: 0,
      },
    };
  }
  const method = o.method as Exclude<MethodId, 'full'>;
  const recipe = recipeOf(o);
  const targetNames = resolveTargets(spec, o.targets);
  const targets = selectTargets(spec, targetNames);
  const own = OWN_METHOD_BUILDERS[method];
  if (own) return own(gpu, weights, { ...ctx, options: o, targetNames, targets, t0 });
  if (recipe.structure !== 'dense' && recipe.structure !== 'gralora')
    throw new Error(`${method}: its structure (${recipe.structure}) has no builder in src/engine/own-methods.ts`);
  const warnings: string[] = [];
  const hybridRank = recipe.structure === 'gralora' ? o.hybridRank! : 0;
  const k = recipe.structure === 'gralora' ? o.graloraK! : 1;

  // 1. Ranks (and the analysis behind them).
  let ranks = new Map(targets.map((t) => [t.path, o.rank]));
  let gora: Awaited<ReturnType<typeof allocateGora>> | null = null;
  let goraCfg: GoraConfig | null = null;
  let geloraInfo: MethodAnalysis['gelora'];
  let constantScale: number | null = null;
  if (recipe.allocation === 'gora') {
    goraCfg = goraConfigOf(o, o.rank, o.alpha);
    gora = await allocateGora(
      gpu,
      weights,
      targets,
      () => ctx.nextBatch(),
      ctx.shape,
      goraCfg,
      (p) =>
        ctx.onProgress?.({
          phase: p.phase === 'gradients' ? 'GoRA: accumulating gradients' : 'GoRA: initializing',
          done: p.done,
          total: p.total,
        }),
    );
    ranks = new Map(gora.modules.map((m) => [m.path, m.rank]));
  } else if (recipe.allocation === 'gelora') {
    const cfg = geloraConfigOf(o, o.rank, o.alpha, targetNames);
    const batches: Batch[] = [];
    const perBatch = ctx.shape.batch * Math.max(1, Math.min(cfg.perSequence, ctx.shape.seq - 1));
    for (let n = 0; n < Math.ceil(cfg.samples / perBatch) + 2; n++) batches.push(ctx.nextBatch());
    const mark = gpu.mark();
    try {
      const a = await analyzeGelora(gpu, weights, batches, cfg, {
        seed: o.seed,
        padId: ctx.padId,
        onProgress: (phase, done, total) =>
          ctx.onProgress?.({
            phase: phase === 'collect' ? 'GeLoRA: collecting hidden states' : 'GeLoRA: intrinsic dimensions',
            done,
            total,
          }),
      });
      warnings.push(...a.warnings);
      ranks = a.ranksByModule;
      constantScale = a.scale;
      geloraInfo = {
        dims: a.dims,
        rawRanks: a.rawRanks,
        ranks: a.ranks,
        budgetFactor: a.budgetFactor,
        samples: a.samples,
        scale: a.scale,
      };
    } finally {
      await gpu.freeSince(mark);
    }
  }
  if (recipe.structure === 'gralora' && recipe.allocation !== 'uniform') {
    // Every block gets rank r/k: round allocated ranks to a multiple of k (at least k).
    for (const [path, r] of ranks) ranks.set(path, Math.max(k, Math.round(r / k) * k));
  }

  // 2. Scales: the allocation's rule.
  const scaleOf = (rank: number): number => {
    if (constantScale !== null) return constantScale;
    if (recipe.allocation === 'gora') return goraScale(rank + hybridRank, o.alpha);
    if (recipe.structure === 'gralora') return graloraScale(o.alpha, rank, hybridRank);
    return loraScale(rank, o.alpha, method === 'rslora');
  };
  const scales = new Map([...ranks].map(([path, r]) => [path, scaleOf(r)]));

  // 3. Structure.
  let dense = new Map<string, LoraLayer>();
  let blocks = new Map<string, GraloraLayer>();
  const lrRatioB = o.lrRatioB ?? 1;
  try {
    if (recipe.structure === 'dense') {
      dense = createLoraLayers(
        gpu,
        spec,
        { rank: o.rank, alpha: o.alpha, targets: targetNames, rslora: method === 'rslora', lrRatioB },
        o.seed,
        { ranks, scales },
      );
    } else {
      const built = createGraloraLayers(
        gpu,
        spec,
        { rank: o.rank, k, hybridRank, alpha: o.alpha, targets: targetNames, lrRatioB },
        o.seed,
        { ranks, scales },
      );
      blocks = built.layers;
      warnings.push(...built.warnings);
    }

    // 4. Initialization from the gradient.
    const initNorms = new Map<string, number>();
    if (gora && goraCfg) {
      ctx.onProgress?.({ phase: 'GoRA: initializing', done: 0, total: 1 });
      const items = targets.map((info) => ({ info, grad: gora!.grads.get(info.path)! }));
      const norms =
        recipe.structure === 'dense'
          ? await goraInitLora(
              gpu,
              items.map(({ info, grad }) => ({ layer: dense.get(info.path)!, grad })),
              goraCfg.gamma,
            )
          : await goraInitGralora(
              gpu,
              items.map(({ info, grad }) => ({ layer: blocks.get(info.path)!, grad })),
              goraCfg.gamma,
            );
      targets.forEach((info, i) => initNorms.set(info.path, norms[i]));
      ctx.onProgress?.({ phase: 'GoRA: initializing', done: 1, total: 1 });
    }
    const goraReports = new Map<string, GoraModuleReport>(gora?.modules.map((m) => [m.path, m]) ?? []);
    const modules = targets.map((info) =>
      describeModule(
        info,
        dense.get(info.path),
        blocks.get(info.path),
        goraReports.get(info.path),
        initNorms.get(info.path),
      ),
    );
    const adapters = new Map<string, LinearAdapter>([...dense, ...blocks]);
    return {
      method,
      train: 'adapters',
      adapters,
      alpha: o.alpha,
      layers:
        recipe.structure === 'dense' ? { structure: 'dense', layers: dense } : { structure: 'gralora', layers: blocks },
      rslora: method === 'rslora' || recipe.allocation === 'gora',
      analysis: {
        method,
        structure: recipe.structure,
        allocation: recipe.allocation,
        init: recipe.init,
        modules,
        warnings,
        trainableParameters: modules.reduce((n, m) => n + m.parameters, 0),
        loraEquivalentParameters: targets.reduce((n, t) => n + o.rank * (t.in + t.out), 0),
        preparationMs: performance.now() - t0,
        ...(gora && goraCfg
          ? {
              gora: {
                steps: gora.steps,
                importance: goraCfg.importance,
                gamma: goraCfg.gamma,
                alpha: o.alpha,
                rankMin: goraCfg.rankMin,
                rankMax: goraCfg.rankMax,
              },
            }
          : {}),
        ...(geloraInfo ? { gelora: geloraInfo } : {}),
      },
    };
  } finally {
    await gora?.release();
  }
}

function describeModule(
  info: LinearInfo,
  dense?: LoraLayer,
  block?: GraloraLayer,
  gora?: GoraModuleReport,
  initNorm?: number,
): ModuleAllocation {
  const rank = dense?.rank ?? block!.rank;
  const hybridRank = block?.hybridRank ?? 0;
  return {
    ...moduleAllocation(
      info,
      rank + hybridRank,
      dense?.scale ?? block!.scale,
      (rank + hybridRank) * (info.in + info.out),
    ),
    ...(block ? { k: block.k, hybridRank } : {}),
    ...(gora ? { importance: gora.importance, share: gora.share, gradNorm: gora.stats.gradFrobenius, initNorm } : {}),
  };
}
