/**
 * The run state PiSSA and LoRA-GA share once their factors are known: a ResidualLoraLayer per target (trained pair
 * and frozen initial pair both start at (A, B)), the analysis with the captured singular values, and the export
 * (export.ts: the rank-2r LoRA on the original weights, or PiSSA's raw save).
 */
import type { MethodState, OwnBuildContext } from '../../engine/methods';
import { moduleAllocation, ownAnalysis } from '../../engine/module-allocation';
import type { Gpu } from '../../gpu/gpu';
import type { LinearAdapter } from '../../model/adapter';
import { exportConvertedLora, exportRawPissa, readResidualModules } from './export';
import { ResidualLoraLayer } from './layer';

export interface ResidualInit {
  A: Float32Array;
  B: Float32Array;
  singularValues: number[];
}

export function residualMethodState(
  gpu: Gpu,
  c: OwnBuildContext,
  inits: Map<string, ResidualInit>,
  opts: {
    method: 'pissa' | 'loraga';
    scale: number;
    svd: string;
    /** PiSSA's init_lora_weights for a raw export; null: no raw form PEFT can reload (LoRA-GA). */
    rawInitName: string | null;
    warnings: string[];
  },
): MethodState {
  const o = c.options;
  const layers = new Map<string, ResidualLoraLayer>();
  for (const info of c.targets) {
    const init = inits.get(info.path)!;
    const scale0 = opts.scale;
    layers.set(
      info.path,
      new ResidualLoraLayer(
        gpu,
        info,
        o.rank,
        opts.scale,
        { A: init.A, B: init.B, A0: init.A, B0: init.B, scale0 },
        o.lrRatioB ?? 1,
      ),
    );
  }
  const modules = c.targets.map((info) => ({
    ...moduleAllocation(info, o.rank, opts.scale, o.rank * (info.in + info.out)),
    singularValues: inits.get(info.path)!.singularValues,
  }));
  return {
    method: opts.method,
    train: 'adapters',
    adapters: new Map<string, LinearAdapter>(layers),
    layers: {
      structure: 'own',
      async export(g, spec, e) {
        const read = await readResidualModules(g, layers);
        if (e.raw && opts.rawInitName)
          return exportRawPissa(spec, read, { alpha: o.alpha, baseModel: e.baseModel, initName: opts.rawInitName });
        const note =
          e.raw && !opts.rawInitName
            ? "LoRA-GA has no raw save PEFT can reload: its lora_ga init needs the gradients at load and otherwise falls back to a random init without subtracting B₀·A₀, so the export is PEFT's conversion to a rank-2r LoRA on the original weights."
            : null;
        return exportConvertedLora(spec, read, { alpha: o.alpha, baseModel: e.baseModel, note });
      },
    },
    alpha: o.alpha,
    rslora: false,
    analysis: ownAnalysis(c, modules, {
      method: opts.method,
      structure: 'dense',
      allocation: 'uniform',
      init: opts.method,
      warnings: opts.warnings,
      svd: opts.svd,
    }),
  };
}
