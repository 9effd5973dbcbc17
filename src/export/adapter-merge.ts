/**
 * A PEFT adapter folder as changes to its base model, as PEFT's merge_and_unload makes them (in float64 here): per
 * adapted linear layer, how its weight changes, and the base tensors the folder replaces (modules_to_save, saved
 * biases, trainable token rows). The folder is read by the importers loadPeftAdapter uses (src/engine/export.ts),
 * in the same order of formats, so a folder merges exactly when it loads, and is refused with the same message.
 */
import { importPeftAdalora, isAdaloraTensor } from '../adapters/adalora/peft';
import { importPeftDora } from '../adapters/dora/peft';
import { graloraToLora, importPeftGralora, isGraloraTensor } from '../adapters/gralora/peft';
import { type AdapterTensorReader, importPeftLora, isLoraTensor, type LoraModuleWeights } from '../adapters/lora/peft';
import { readLinearWeight } from '../adapters/pissa/init';
import { isDefaultSavedPissa } from '../adapters/pissa/peft';
import { describeBaseWeightChanges, readBaseWeightChanges } from '../engine/peft-base-weights';
import type { Gpu } from '../gpu/gpu';
import { allLinears, type LinearInfo } from '../model/layout';
import type { BaseWeightChanges, ModelWeights } from '../model/weights';
import { svdTop, type Svd } from '../util/svd';
import { addLowRank, applyDora, type LowRankUpdate } from './low-rank-fold';

/** Changes a linear layer's weight in place, given as nn.Linear holds it ([out, in], float64). */
export type WeightFold = (w: Float64Array) => void;

export interface LinearFold {
  info: LinearInfo;
  fold: WeightFold;
}

export interface AdapterMerge {
  /** By the layer's weight name as ModelWeights names it (info.weight). */
  folds: Map<string, LinearFold>;
  /** What ModelWeights.withReplacements applies before the folds. */
  baseWeights: BaseWeightChanges;
  /** One line for logs: modules, ranks, and what the folder replaces. */
  summary: string;
}

export async function readAdapterMerge(
  gpu: Gpu,
  weights: ModelWeights,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  where: string,
): Promise<AdapterMerge> {
  const spec = weights.spec;
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const type = String(config.peft_type ?? '');
  const merge = async (
    folds: [string, WeightFold][],
    ownTensor: (name: string) => boolean,
    summary: string,
    wrapped: Iterable<string> = folds.map(([path]) => path),
  ): Promise<AdapterMerge> => {
    const baseWeights = await readBaseWeightChanges(spec, config, store, ownTensor, new Set(wrapped), where);
    const byWeight = new Map<string, LinearFold>();
    for (const [path, fold] of folds) {
      const info = infos.get(path)!;
      byWeight.set(info.weight, { info, fold });
    }
    return { folds: byWeight, baseWeights, summary: `${summary}${describeBaseWeightChanges(baseWeights)}` };
  };
  const ranksOf = (modules: { rank: number }[]) => [...new Set(modules.map((m) => m.rank))].join('/');
  const lowRank = (m: LoraModuleWeights): [string, WeightFold] => [
    m.path,
    (w) => addLowRank(w, m.out, m.in, { rank: m.rank, scale: m.scale, B: m.B, A: m.A }),
  ];

  if (type === 'ADALORA') {
    const a = await importPeftAdalora(spec, config, store, where, { baseWeightsApplied: true });
    const folds = a.modules.map((m): [string, WeightFold] => [
      m.path,
      (w) => addLowRank(w, m.out, m.in, { rank: m.rank, scale: a.scale, B: m.B, A: m.A, E: m.E }),
    ]);
    // PEFT wraps a module pruned to rank 0 too (its fold adds nothing).
    const summary = `${a.modules.length} AdaLoRA modules, kept ranks ${ranksOf(a.modules)} of init_r ${a.initR}`;
    return merge(folds, isAdaloraTensor, summary);
  }
  if (type !== 'LORA' && type !== 'GRALORA')
    throw new Error(
      `${where}/adapter_config.json: peft_type "${type}" is not supported; LORA, GRALORA and ADALORA adapters are.`,
    );
  if (type === 'GRALORA') {
    const modules = await importPeftGralora(spec, config, store, where, { baseWeightsApplied: true });
    const folds = modules.map((m): [string, WeightFold] => {
      // The exactly equivalent plain LoRA, with the scale kept out of B so it is applied in float64.
      const lora = graloraToLora({ ...m, scale: 1 });
      return [m.path, (w) => addLowRank(w, m.out, m.in, { rank: lora.rank, scale: m.scale, B: lora.B, A: lora.A })];
    });
    const ks = [...new Set(modules.map((m) => m.k))].join('/');
    const summary = `${modules.length} GraLoRA modules, r ${ranksOf(modules)}, k ${ks}, hybrid_r ${modules[0]?.hybridRank ?? 0}`;
    return merge(folds, isGraloraTensor, summary);
  }
  if (isDefaultSavedPissa(config)) return mergeDefaultSavedPissa(gpu, weights, config, store, where, merge);
  if (config.use_dora === true) {
    const modules = await importPeftDora(spec, config, store, where, { baseWeightsApplied: true });
    const folds = modules.map((m): [string, WeightFold] => [
      m.path,
      (w) => applyDora(w, m.out, m.in, { rank: m.rank, scale: m.scale, B: m.B, A: m.A }, m.m),
    ]);
    return merge(folds, isLoraTensor, `${modules.length} DoRA modules, ranks ${ranksOf(modules)}`);
  }
  const modules = await importPeftLora(spec, config, store, where, { baseWeightsApplied: true });
  return merge(modules.map(lowRank), isLoraTensor, `${modules.length} LoRA modules, ranks ${ranksOf(modules)}`);
}

/**
 * PEFT's default PiSSA save (src/adapters/pissa/peft.ts): the trained A and B belong to the residual
 * W − U_r·S_r·V_rᵀ, rebuilt from W's top-r SVD (exact, float64, as this app's import does), so each weight becomes
 * W + s·B·A − U_r·S_r·V_rᵀ.
 */
async function mergeDefaultSavedPissa(
  gpu: Gpu,
  weights: ModelWeights,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  where: string,
  merge: (folds: [string, WeightFold][], own: (n: string) => boolean, summary: string) => Promise<AdapterMerge>,
): Promise<AdapterMerge> {
  const init = String(config.init_lora_weights);
  // The tensors and every other field read as a plain LoRA's (the residual is what the init changes).
  const modules = await importPeftLora(weights.spec, { ...config, init_lora_weights: true }, store, where, {
    baseWeightsApplied: true,
  });
  const infos = new Map(allLinears(weights.spec).map((i) => [i.path, i]));
  const folds: [string, WeightFold][] = [];
  for (const m of modules) {
    const info = infos.get(m.path)!;
    if (m.rank > Math.min(info.in, info.out))
      throw new Error(`${where}: ${m.path} has rank ${m.rank}, more than its ${info.out}x${info.in} weight's SVD has`);
    const initial = topPart(await svdTop(await readLinearWeight(gpu, weights, info), info.out, info.in, m.rank));
    const trained: LowRankUpdate = { rank: m.rank, scale: m.scale, B: m.B, A: m.A };
    folds.push([
      m.path,
      (w) => {
        addLowRank(w, m.out, m.in, trained);
        addLowRank(w, m.out, m.in, initial);
      },
    ]);
  }
  const randomized = init.startsWith('pissa_niter_')
    ? `; init_lora_weights "${init}": PEFT re-runs a randomized SVD at load, the exact SVD used here is its best estimate`
    : '';
  return merge(
    folds,
    isLoraTensor,
    `${modules.length} PiSSA modules (default save: residual W − U_r·S_r·V_rᵀ from the base weights), ranks ${[...new Set(modules.map((m) => m.rank))].join('/')}${randomized}`,
  );
}

/** −U_r·S_r·V_rᵀ as a low-rank update: B = U·S [m, r], A = Vᵀ [r, n]. */
function topPart(svd: Svd): LowRankUpdate {
  const { m, n, k } = svd;
  const B = new Float64Array(m * k);
  const A = new Float64Array(k * n);
  for (let o = 0; o < m; o++) for (let j = 0; j < k; j++) B[o * k + j] = svd.U[o * k + j] * svd.S[j];
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) A[j * n + i] = svd.V[i * k + j];
  return { rank: k, scale: -1, B, A };
}
