/**
 * AdaLoRA's builder (src/engine/own-methods.ts): init_r triplets on every target, PEFT's rank allocator appended to
 * each training step, snapshots of the ranks it keeps, and the PEFT ADALORA export of the kept triplets.
 *
 * The loss the run reports is the cross-entropy alone; the orthogonal regularizer only adds its gradient (in the
 * layers' backward), as its value is never read.
 */
import type { Gpu } from '../../gpu/gpu';
import type { LinearAdapter } from '../../model/adapter';
import type { ModelWeights } from '../../model/weights';
import type { MethodState, ModuleAllocation, OwnBuildContext } from '../../engine/methods';
import { moduleAllocation, ownAnalysis } from '../../engine/module-allocation';
import { RankAllocator } from './allocator';
import { adaloraConfigProblem, adaloraScale } from './config';
import { adaloraConfigOf, type AdaloraOptionValues } from './method';
import { createAdaloraLayers, readAdaloraModules } from './model';
import { exportPeftAdalora } from './peft';

export async function buildAdalora(gpu: Gpu, _weights: ModelWeights, c: OwnBuildContext): Promise<MethodState> {
  const o = c.options;
  const cfg = adaloraConfigOf(o as AdaloraOptionValues, o.rank, o.alpha, c.totalSteps ?? 0);
  if (!(cfg.totalStep > 0))
    throw new Error("AdaLoRA needs total_step: give --total-step, or build it with the run's steps.");
  const problem = adaloraConfigProblem(cfg);
  if (problem) throw new Error(`AdaLoRA: ${problem}`);
  // With gradient accumulation every micro-batch's backward adds the regularizer's gradient: 1/N of it each.
  const perPass = { ...cfg, orthRegWeight: cfg.orthRegWeight / (c.gradAccum ?? 1) };
  const layers = createAdaloraLayers(gpu, c.targets, perPass, o.seed);
  const list = [...layers.values()];
  const allocator = new RankAllocator(gpu, list, cfg);
  const scale = adaloraScale(cfg.alpha, cfg.initR);
  const modules: ModuleAllocation[] = c.targets.map((info) => ({
    ...moduleAllocation(info, cfg.initR, scale, cfg.initR * (info.in + info.out + 1)),
    initRank: cfg.initR,
  }));
  const setRanks = (ranks: number[]) =>
    ranks.forEach((r, i) => {
      modules[i].rank = r;
    });
  const state: MethodState = {
    method: o.method as MethodState['method'],
    train: 'adapters',
    adapters: new Map<string, LinearAdapter>(layers),
    alpha: o.alpha,
    rslora: false,
    layers: {
      structure: 'own',
      export: async (g, spec, opts) => {
        const trained = await readAdaloraModules(g, layers);
        const { mask, ranks } = await allocator.ranks(g);
        setRanks(ranks);
        const folder = exportPeftAdalora(spec, trained, allocator.masked ? mask : null, cfg, {
          baseModel: opts.baseModel,
          targets: c.targetNames,
        });
        return { ...folder, format: 'adalora', note: null };
      },
    },
    training: {
      record: (l, optimizer) => allocator.record(l, optimizer),
      beforeStep: (step) => {
        allocator.beforeStep(gpu, step);
      },
      state: allocator.stateTensors(),
      resumed: (step) => allocator.resumed(step),
    },
    snapshot: async (step) => {
      const { ranks } = await allocator.ranks(gpu);
      setRanks(ranks);
      return { step, ranks };
    },
    analysis: ownAnalysis(c, modules, {
      method: 'adalora',
      structure: 'adalora',
      allocation: 'adalora',
      init: 'adalora',
      adalora: {
        initR: cfg.initR,
        targetR: cfg.targetR,
        tinit: cfg.tinit,
        tfinal: cfg.tfinal,
        deltaT: cfg.deltaT,
        totalStep: cfg.totalStep,
      },
    }),
  };
  return state;
}
