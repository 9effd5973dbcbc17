/**
 * DoRA's MethodState (engine/own-methods.ts): layers on the targets (m = ‖W‖_row), its analysis (‖W‖_row mean per
 * module), PEFT export, and the magnitude drift ‖m − ‖W‖_row‖ / ‖‖W‖_row‖ per module at each snapshot.
 */
import type { LinearAdapter } from '../../model/adapter';
import type { MethodState, ModuleAllocation, OwnMethodBuilder } from '../../engine/methods';
import { moduleAllocation, ownAnalysis } from '../../engine/module-allocation';
import { loraScale } from '../lora/config';
import { createDoraLayers, readDoraModules } from './model';
import { exportPeftDora } from './peft';

export const buildDora: OwnMethodBuilder = async (gpu, weights, c) => {
  const o = c.options;
  const scale = loraScale(o.rank, o.alpha, false);
  const { layers, rowNorms } = await createDoraLayers(gpu, weights, c.targets, {
    rank: o.rank,
    scale,
    lrRatioB: o.lrRatioB ?? 1,
    seed: o.seed,
  });
  const modules: ModuleAllocation[] = c.targets.map((info) => {
    const norms = rowNorms.get(info.path)!;
    return {
      ...moduleAllocation(info, o.rank, scale, o.rank * (info.in + info.out) + info.out),
      weightNormMean: norms.reduce((a, b) => a + b, 0) / norms.length,
    };
  });
  const ordered = c.targets.map((info) => layers.get(info.path)!);
  const state: MethodState = {
    method: 'dora',
    train: 'adapters',
    adapters: new Map<string, LinearAdapter>(layers),
    alpha: o.alpha,
    rslora: false,
    layers: {
      structure: 'own',
      export: async (g, spec, opts) => ({
        ...exportPeftDora(spec, await readDoraModules(g, layers), { alpha: o.alpha, baseModel: opts.baseModel }),
        format: 'lora',
        note: null,
      }),
    },
    analysis: ownAnalysis(c, modules, { method: 'dora', structure: 'dora', allocation: 'uniform', init: 'lora' }),
    // One readback of every magnitude vector.
    snapshot: async (step) => {
      const ms = await gpu.readMany(ordered.map((l) => l.m));
      const magnitudeDrift = ordered.map((l, i) => {
        const w = rowNorms.get(l.info.path)!;
        let diff = 0;
        let ref = 0;
        for (let j = 0; j < w.length; j++) {
          diff += (ms[i][j] - w[j]) ** 2;
          ref += w[j] ** 2;
        }
        return Math.sqrt(diff / ref);
      });
      return { step, magnitudeDrift };
    },
  };
  return state;
};
