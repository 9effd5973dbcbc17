/**
 * A method's analysis and its modules' entries, for the method folders that build themselves. Its own module (not
 * methods.ts) so they can use it without importing the builder registry they are listed in.
 */
import type { LinearInfo } from '../model/layout';
import type { MethodAnalysis, ModuleAllocation, OwnBuildContext } from './methods';

/** Where the module is in the model, its rank, scale and trainable parameters. */
export function moduleAllocation(info: LinearInfo, rank: number, scale: number, parameters: number): ModuleAllocation {
  return { path: info.path, layer: info.layer, kind: info.kind, in: info.in, out: info.out, rank, scale, parameters };
}

/**
 * The analysis of a run built by its method's folder: its recipe and own fields, the modules, and what every analysis
 * counts (trainable parameters, the rank-r LoRA budget on the same targets, the preparation time so far).
 */
export function ownAnalysis(
  c: OwnBuildContext,
  modules: ModuleAllocation[],
  fields: Pick<MethodAnalysis, 'method' | 'structure' | 'allocation' | 'init'> & Partial<MethodAnalysis>,
): MethodAnalysis {
  return {
    modules,
    warnings: [],
    trainableParameters: modules.reduce((n, m) => n + m.parameters, 0),
    loraEquivalentParameters: c.targets.reduce((n, t) => n + c.options.rank * (t.in + t.out), 0),
    preparationMs: performance.now() - c.t0,
    ...fields,
  };
}
