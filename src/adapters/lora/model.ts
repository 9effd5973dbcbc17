/** Attaches LoRA layers to a model's target modules. */
import type { Gpu } from '../../gpu/gpu';
import type { ModelSpec } from '../../model/config';
import { selectTargets } from '../../model/layout';
import { Rng } from '../../util/random';
import { type LoraConfig, loraScale, validateLoraConfig } from './config';
import { loraInit } from './init';
import { LoraLayer, type LoraWeights } from './layer';

/** Per-module overrides (ranks, scales, weights) for methods that allocate or initialize differently. */
export interface LoraPlan {
  ranks?: Map<string, number>;
  scales?: Map<string, number>;
  weights?: Map<string, LoraWeights>;
}

export function createLoraLayers(gpu: Gpu, spec: ModelSpec, cfg: LoraConfig, seed: number, plan: LoraPlan = {}): Map<string, LoraLayer> {
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

export function loraParameterCount(layers: Map<string, LoraLayer>): number {
  let n = 0;
  for (const l of layers.values()) n += l.rank * (l.info.in + l.info.out);
  return n;
}
