/**
 * LoRA layers on a model's target modules: created for training, read back for export, rebuilt from weights
 * (imported PEFT folders, checkpoints). GraLoRA's folder has the same three entry points.
 */
import type { Gpu } from '../../gpu/gpu';
import type { ModelSpec } from '../../model/config';
import { allLinears, selectTargets } from '../../model/layout';
import { Rng } from '../../util/random';
import { type LoraConfig, loraScale, validateLoraConfig } from './config';
import { loraInit } from './init';
import { LoraLayer, type LoraWeights } from './layer';
import type { LoraModuleWeights } from './peft';

/** Per-module overrides (ranks, scales, weights) for methods that allocate or initialize differently. */
export interface LoraPlan {
  ranks?: Map<string, number>;
  scales?: Map<string, number>;
  weights?: Map<string, LoraWeights>;
}

export function createLoraLayers(
  gpu: Gpu,
  spec: ModelSpec,
  cfg: LoraConfig,
  seed: number,
  plan: LoraPlan = {},
): Map<string, LoraLayer> {
  validateLoraConfig(cfg);
  const rng = new Rng(seed);
  const layers = new Map<string, LoraLayer>();
  for (const info of selectTargets(spec, cfg.targets)) {
    const rank = plan.ranks?.get(info.path) ?? cfg.rank;
    if (rank < 1) continue;
    const scale = plan.scales?.get(info.path) ?? loraScale(rank, cfg.alpha, cfg.rslora);
    // Draw A for every module in order even when weights are given, so seeds mean the same thing across methods.
    const init = loraInit(rank, info.in, info.out, rng);
    layers.set(info.path, new LoraLayer(gpu, info, rank, scale, plan.weights?.get(info.path) ?? init, cfg.lrRatioB));
  }
  return layers;
}

/** The trained tensors, read back for export (one readback for every module). */
export async function readLoraModules(gpu: Gpu, layers: Map<string, LoraLayer>): Promise<LoraModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.A, l.B]));
  return list.map((l, i) => ({
    path: l.info.path,
    rank: l.rank,
    scale: l.scale,
    A: data[2 * i],
    B: data[2 * i + 1],
    in: l.info.in,
    out: l.info.out,
  }));
}

/** Layers from imported or restored weights (for eval and generate). */
export function loraLayersFromWeights(gpu: Gpu, spec: ModelSpec, modules: LoraModuleWeights[]): Map<string, LoraLayer> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, LoraLayer>();
  for (const m of modules) {
    const info = infos.get(m.path);
    if (!info) throw new Error(`LoRA module ${m.path} does not exist in this ${spec.modelType} model`);
    out.set(m.path, new LoraLayer(gpu, info, m.rank, m.scale, { A: m.A, B: m.B }));
  }
  return out;
}
