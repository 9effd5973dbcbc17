/**
 * DoRA layers on a model's target modules: created for training (LoRA's A and B, m = ‖W‖ per output row), read
 * back for export, rebuilt from weights (imported PEFT folders).
 */
import type { Gpu } from '../../gpu/gpu';
import { doraRowNormsSq } from '../../kernels/dora';
import type { ModelSpec } from '../../model/config';
import { allLinears, type LinearInfo } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import { Rng } from '../../util/random';
import { loraInit } from '../lora/init';
import { DoraLayer } from './layer';
import type { DoraModuleWeights } from './peft';

/** ‖W‖ per output row of each module's base weight, in f64 from the f32 sums of squares (one GPU pass, one readback). */
export async function baseRowNorms(gpu: Gpu, weights: ModelWeights, infos: LinearInfo[]): Promise<Float64Array[]> {
  const sq = infos.map((info) => gpu.tensor([info.out], `${info.path}.dora_row_norms`));
  try {
    await gpu.runOnce('dora row norms', (list) =>
      infos.forEach((info, i) =>
        doraRowNormsSq(list, {
          W: weights.get(info.weight),
          inDim: info.in,
          outDim: info.out,
          conv1d: info.conv1d,
          out: sq[i],
        }),
      ),
    );
    return (await gpu.readMany(sq)).map((v) => Float64Array.from(v, Math.sqrt));
  } finally {
    await gpu.freeTensors(sq);
  }
}

/** Fresh layers: A as LoRA draws it (the same seed gives LoRA's A), B = 0, m = ‖W‖_row, so y starts at the base's. */
export async function createDoraLayers(
  gpu: Gpu,
  weights: ModelWeights,
  targets: LinearInfo[],
  o: { rank: number; scale: number; lrRatioB: number; seed: number },
): Promise<{ layers: Map<string, DoraLayer>; rowNorms: Map<string, Float64Array> }> {
  const norms = await baseRowNorms(gpu, weights, targets);
  const rng = new Rng(o.seed);
  const layers = new Map<string, DoraLayer>();
  const rowNorms = new Map<string, Float64Array>();
  targets.forEach((info, i) => {
    const init = loraInit(o.rank, info.in, info.out, rng);
    const m = Float32Array.from(norms[i]);
    layers.set(info.path, new DoraLayer(gpu, info, o.rank, o.scale, { ...init, m }, o.lrRatioB));
    rowNorms.set(info.path, norms[i]);
  });
  return { layers, rowNorms };
}

/** The trained tensors, read back for export (one readback for every module). */
export async function readDoraModules(gpu: Gpu, layers: Map<string, DoraLayer>): Promise<DoraModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.A, l.B, l.m]));
  return list.map((l, i) => ({
    path: l.info.path,
    rank: l.rank,
    scale: l.scale,
    A: data[3 * i],
    B: data[3 * i + 1],
    m: data[3 * i + 2],
    in: l.info.in,
    out: l.info.out,
  }));
}

/** Layers from imported weights (for eval and generate). */
export function doraLayersFromWeights(gpu: Gpu, spec: ModelSpec, modules: DoraModuleWeights[]): Map<string, DoraLayer> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, DoraLayer>();
  for (const m of modules) {
    const info = infos.get(m.path);
    if (!info) throw new Error(`DoRA module ${m.path} does not exist in this ${spec.modelType} model`);
    out.set(m.path, new DoraLayer(gpu, info, m.rank, m.scale, { A: m.A, B: m.B, m: m.m }));
  }
  return out;
}
