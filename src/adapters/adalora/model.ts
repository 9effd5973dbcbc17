/** AdaLoRA layers on a model's target modules: created for training, read back for export, rebuilt from a folder. */
import type { Gpu } from '../../gpu/gpu';
import type { ModelSpec } from '../../model/config';
import { allLinears, type LinearInfo } from '../../model/layout';
import { Rng } from '../../util/random';
import { adaloraScale, type AdaloraConfig } from './config';
import { AdaloraLayer, type AdaloraWeights } from './layer';
import type { AdaloraModuleWeights } from './peft';

/** PEFT's reset_lora_parameters: E = 0, A and B ~ N(0, 0.02²), so ΔW starts at zero. */
export function adaloraInit(info: LinearInfo, rank: number, rng: Rng): AdaloraWeights {
  const A = rng.normals(rank * info.in, 0.02);
  const B = rng.normals(info.out * rank, 0.02);
  return { A, E: new Float32Array(rank), B };
}

/**
 * Training layers, init_r triplets each; the regularizer's weight is orth_reg_weight / num_param with num_param the
 * number of A and B tensors (AdaLoraModel.forward averages their norms).
 */
export function createAdaloraLayers(
  gpu: Gpu,
  targets: LinearInfo[],
  cfg: AdaloraConfig,
  seed: number,
): Map<string, AdaloraLayer> {
  const rng = new Rng(seed);
  const scale = adaloraScale(cfg.alpha, cfg.initR);
  const orthWeight = targets.length ? cfg.orthRegWeight / (2 * targets.length) : 0;
  const layers = new Map<string, AdaloraLayer>();
  for (const info of targets) {
    const w = adaloraInit(info, cfg.initR, rng);
    layers.set(info.path, new AdaloraLayer(gpu, info, cfg.initR, scale, w, orthWeight));
  }
  return layers;
}

/** Every triplet as trained, read back in one pass. */
export async function readAdaloraModules(gpu: Gpu, layers: Map<string, AdaloraLayer>): Promise<AdaloraModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.A, l.E, l.B]));
  return list.map((l, i) => ({
    path: l.info.path,
    in: l.info.in,
    out: l.info.out,
    rank: l.rank,
    A: data[3 * i],
    E: data[3 * i + 1],
    B: data[3 * i + 2],
  }));
}

/** Inference layers from a folder's kept triplets; modules pruned to rank 0 add nothing and get no layer. */
export function adaloraLayersFromWeights(
  gpu: Gpu,
  spec: ModelSpec,
  modules: AdaloraModuleWeights[],
  scale: number,
): Map<string, AdaloraLayer> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, AdaloraLayer>();
  for (const m of modules) {
    if (m.rank === 0) continue;
    const info = infos.get(m.path);
    if (!info) throw new Error(`AdaLoRA module ${m.path} does not exist in this ${spec.modelType} model`);
    out.set(m.path, new AdaloraLayer(gpu, info, m.rank, scale, { A: m.A, E: m.E, B: m.B }));
  }
  return out;
}
