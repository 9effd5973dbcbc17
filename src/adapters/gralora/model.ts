/** Attaches GraLoRA layers to a model's target modules, lowering k per module where the shapes require it. */
import type { Gpu } from '../../gpu/gpu';
import type { ModelSpec } from '../../model/config';
import { allLinears, selectTargets } from '../../model/layout';
import { Rng } from '../../util/random';
import { type GraloraConfig, graloraScale, moduleK, validateGraloraConfig } from './config';
import { graloraInit } from './init';
import { GraloraLayer } from './layer';
import type { GraloraModuleWeights } from './peft';

/** Per-module overrides for methods that allocate ranks (the GraLoRA part's r) or scales differently. */
export interface GraloraPlan {
  ranks?: Map<string, number>;
  scales?: Map<string, number>;
}

export interface GraloraLayers {
  layers: Map<string, GraloraLayer>;
  /** One line per module whose k had to be lowered (never padded). */
  warnings: string[];
}

export function createGraloraLayers(
  gpu: Gpu,
  spec: ModelSpec,
  cfg: GraloraConfig,
  seed: number,
  plan: GraloraPlan = {},
): GraloraLayers {
  validateGraloraConfig(cfg);
  const rng = new Rng(seed);
  const layers = new Map<string, GraloraLayer>();
  const warnings: string[] = [];
  for (const info of selectTargets(spec, cfg.targets)) {
    const rank = plan.ranks?.get(info.path) ?? cfg.rank;
    if (rank < 1) continue;
    const { k, warning } = moduleK(info, rank, cfg.k);
    if (warning) warnings.push(warning);
    const shape = { rank, k, hybridRank: cfg.hybridRank };
    const scale = plan.scales?.get(info.path) ?? graloraScale(cfg.alpha, rank, cfg.hybridRank);
    const weights = graloraInit(info, shape, rng);
    layers.set(info.path, new GraloraLayer(gpu, info, { ...shape, scale, weights, lrScaleB: cfg.lrRatioB }));
  }
  return { layers, warnings };
}

export function graloraParameterCount(layers: Map<string, GraloraLayer>): number {
  let n = 0;
  for (const l of layers.values()) n += l.parameterCount;
  return n;
}

/** The trained tensors, read back for export. */
export async function readGraloraModules(gpu: Gpu, layers: Map<string, GraloraLayer>): Promise<GraloraModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.GA, l.GB, ...(l.hybrid ? [l.hybrid.A, l.hybrid.B] : [])]));
  let next = 0;
  return list.map((l) => ({
    path: l.info.path,
    in: l.info.in,
    out: l.info.out,
    rank: l.rank,
    k: l.k,
    hybridRank: l.hybridRank,
    scale: l.scale,
    GA: data[next++],
    GB: data[next++],
    Ag: l.hybrid ? data[next++] : new Float32Array(0),
    Bg: l.hybrid ? data[next++] : new Float32Array(0),
  }));
}

/** Layers from imported PEFT weights (for eval and generate). */
export function graloraLayersFromWeights(
  gpu: Gpu,
  spec: ModelSpec,
  modules: GraloraModuleWeights[],
): Map<string, GraloraLayer> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, GraloraLayer>();
  for (const m of modules) {
    const info = infos.get(m.path);
    if (!info) throw new Error(`GraLoRA module ${m.path} does not exist in this ${spec.modelType} model`);
    out.set(
      m.path,
      new GraloraLayer(gpu, info, {
        rank: m.rank,
        k: m.k,
        hybridRank: m.hybridRank,
        scale: m.scale,
        weights: { GA: m.GA, GB: m.GB, Ag: m.Ag, Bg: m.Bg },
      }),
    );
  }
  return out;
}
