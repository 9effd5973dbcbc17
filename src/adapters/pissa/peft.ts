/**
 * Import of PEFT's default PiSSA save (init_lora_weights "pissa" or "pissa_niter_N"): the file holds only the
 * trained A and B, for the residual PEFT rebuilds at load from the base weights it is given, W_res = W − U_r·S_r·V_rᵀ
 * (its rank-r truncated SVD; s cancels). Here that SVD runs in float64 (PEFT's is float32) and the residual is the
 * layer's frozen pair (B₀ = U_r·√S_r, A₀ = √S_r·V_rᵀ, s₀ = 1) on the untouched W.
 */
import type { Gpu } from '../../gpu/gpu';
import { allLinears } from '../../model/layout';
import type { ModelWeights } from '../../model/weights';
import { type AdapterTensorReader, importPeftLora } from '../lora/peft';
import { readLinearWeight, splitSingularTriplets } from './init';
import { ResidualLoraLayer } from './layer';
import { svdTop } from '../../util/svd';

const PISSA_INIT = /^pissa(?:_niter_(\d+))?$/;

/** True for a LoRA config PEFT saved from a PiSSA model without conversion. */
export function isDefaultSavedPissa(config: Record<string, unknown>): boolean {
  return typeof config.init_lora_weights === 'string' && PISSA_INIT.test(config.init_lora_weights);
}

export async function importDefaultSavedPissa(
  gpu: Gpu,
  weights: ModelWeights,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  where: string,
): Promise<{ layers: Map<string, ResidualLoraLayer>; summary: string }> {
  const init = String(config.init_lora_weights);
  const niter = PISSA_INIT.exec(init)![1];
  // The tensors and every other field read as a plain LoRA's (the residual is what the init changes).
  const modules = await importPeftLora(weights.spec, { ...config, init_lora_weights: true }, store, where, {
    baseWeightsApplied: true,
  });
  const infos = new Map(allLinears(weights.spec).map((i) => [i.path, i]));
  const layers = new Map<string, ResidualLoraLayer>();
  for (const m of modules) {
    const info = infos.get(m.path)!;
    if (m.rank > Math.min(info.in, info.out))
      throw new Error(`${where}: ${m.path} has rank ${m.rank}, more than its ${info.out}x${info.in} weight's SVD has`);
    const w = await readLinearWeight(gpu, weights, info);
    const frozen = splitSingularTriplets(await svdTop(w, info.out, info.in, m.rank), 1);
    layers.set(
      m.path,
      new ResidualLoraLayer(gpu, info, m.rank, m.scale, { A: m.A, B: m.B, A0: frozen.A, B0: frozen.B, scale0: 1 }),
    );
  }
  const ranks = [...new Set(modules.map((m) => m.rank))].join('/');
  const warning = niter
    ? `; init_lora_weights "${init}": PEFT re-runs a randomized SVD at load (a different residual each time), the exact SVD used here is its best estimate`
    : '';
  return {
    layers,
    summary: `${modules.length} PiSSA modules (default save: residual W − U_r·S_r·V_rᵀ from the base weights), ranks ${ranks}${warning}`,
  };
}
