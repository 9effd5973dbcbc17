/**
 * PiSSA / LoRA-GA export. By default PEFT's conversion (save_pretrained with path_initial_model_for_weight_conversion,
 * LoraModel.subtract_mutated_init): W_res + s·B·A = W + s·(B·A − B₀·A₀), a plain LoRA on the ORIGINAL W of rank 2r
 * with lora_A = [A; A₀] (rows) and lora_B = [B, −B₀] (columns); PEFT doubles r and lora_alpha so s stays alpha/r.
 * `raw`: PEFT's default save, A and B only with init_lora_weights "pissa"/"pissa_niter_N", which PEFT (and this app)
 * load by re-running the SVD of W.
 */
import type { OwnExport } from '../../engine/methods';
import type { Gpu } from '../../gpu/gpu';
import type { ModelSpec } from '../../model/config';
import { exportPeftLora, type LoraModuleWeights } from '../lora/peft';
import type { ResidualLoraLayer } from './layer';

export interface ResidualModuleWeights extends LoraModuleWeights {
  A0: Float32Array;
  B0: Float32Array;
  scale0: number;
}

/** The trained pairs and the frozen ones, one readback for every module. */
export async function readResidualModules(
  gpu: Gpu,
  layers: Map<string, ResidualLoraLayer>,
): Promise<ResidualModuleWeights[]> {
  const list = [...layers.values()];
  const data = await gpu.readMany(list.flatMap((l) => [l.A, l.B, l.initialPair.A, l.initialPair.B]));
  return list.map((l, i) => ({
    path: l.info.path,
    rank: l.rank,
    scale: l.scale,
    A: data[4 * i],
    B: data[4 * i + 1],
    A0: data[4 * i + 2],
    B0: data[4 * i + 3],
    scale0: l.initialPair.scale,
    in: l.info.in,
    out: l.info.out,
  }));
}

/** The rank-2r plain LoRA on the original weights: s·[B, −(s₀/s)·B₀]·[A; A₀] = s·B·A − s₀·B₀·A₀. */
export function asOriginalBaseLora(m: ResidualModuleWeights): LoraModuleWeights {
  const r = m.rank;
  const r2 = 2 * r;
  const A = new Float32Array(r2 * m.in);
  A.set(m.A, 0);
  A.set(m.A0, r * m.in);
  const B = new Float32Array(m.out * r2);
  const ratio = m.scale0 / m.scale;
  for (let o = 0; o < m.out; o++) {
    for (let j = 0; j < r; j++) {
      B[o * r2 + j] = m.B[o * r + j];
      B[o * r2 + r + j] = -ratio * m.B0[o * r + j];
    }
  }
  return { path: m.path, rank: r2, scale: m.scale, A, B, in: m.in, out: m.out };
}

/** PEFT's converted folder: r and lora_alpha doubled (alpha/r unchanged), init_lora_weights true. */
export function exportConvertedLora(
  spec: ModelSpec,
  modules: ResidualModuleWeights[],
  opts: { alpha: number; baseModel: string; note: string | null },
): OwnExport {
  const peft = exportPeftLora(spec, modules.map(asOriginalBaseLora), {
    alpha: 2 * opts.alpha,
    rslora: false,
    baseModel: opts.baseModel,
  });
  return { ...peft, format: 'lora', note: opts.note };
}

/** PEFT's default save of a PiSSA model: A and B, for the residual PEFT rebuilds from W at load. */
export function exportRawPissa(
  spec: ModelSpec,
  modules: ResidualModuleWeights[],
  opts: { alpha: number; baseModel: string; initName: string },
): OwnExport {
  const peft = exportPeftLora(spec, modules, { alpha: opts.alpha, rslora: false, baseModel: opts.baseModel });
  return {
    ...peft,
    config: { ...peft.config, init_lora_weights: opts.initName },
    format: 'lora',
    note:
      `PEFT's default PiSSA save (init_lora_weights "${opts.initName}"): only A and B, for the residual W − U_r·S_r·V_rᵀ ` +
      'that PEFT recomputes from the base weights at load; without --raw the export is a plain LoRA on the original weights.',
  };
}
