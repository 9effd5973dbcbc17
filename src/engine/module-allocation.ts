/**
 * A module's entry in a method's analysis. Its own module (not methods.ts) so the method folders that build
 * themselves can use it without importing the builder registry they are listed in.
 */
import type { LinearInfo } from '../model/layout';
import type { ModuleAllocation } from './methods';

/** Where the module is in the model, its rank, scale and trainable parameters. */
export function moduleAllocation(info: LinearInfo, rank: number, scale: number, parameters: number): ModuleAllocation {
  return { path: info.path, layer: info.layer, kind: info.kind, in: info.in, out: info.out, rank, scale, parameters };
}
