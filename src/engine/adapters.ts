/** Builds a run's trainable state for a method name: the adapters and the graph's train mode. */
import type { LinearAdapter } from '../adapters/types';
import { createLoraLayers } from '../adapters/lora/model';
import { validateLoraConfig } from '../adapters/lora/config';
import { LoraLayer } from '../adapters/lora/layer';
import type { LoraModuleWeights } from '../adapters/lora/peft';
import type { Gpu } from '../gpu/gpu';
import type { ModelSpec } from '../model/config';
import { allLinears, allLinearTargets, defaultTargets } from '../model/layout';
import type { TrainMode } from '../model/transformer';

export const METHODS = ['lora', 'rslora', 'full'] as const;
export const PLANNED_METHODS = ['gora', 'gralora', 'gelora'] as const;
export type MethodName = (typeof METHODS)[number];

export interface MethodOptions {
  method: string;
  rank: number;
  alpha: number;
  /** Target names; 'all-linear' selects every projection. Empty = PEFT's default for the family. */
  targets: string[];
  seed: number;
  lrRatioB?: number;
}

export interface MethodState {
  method: MethodName;
  train: TrainMode;
  adapters: Map<string, LinearAdapter>;
  loraLayers: Map<string, LoraLayer>;
  rslora: boolean;
}

export function resolveTargets(spec: ModelSpec, targets: string[]): string[] {
  if (targets.length === 0) return defaultTargets(spec);
  if (targets.length === 1 && targets[0] === 'all-linear') return allLinearTargets(spec);
  return targets;
}

/** Checks a method's options without a model (so the CLI fails before loading anything). */
export function validateMethodOptions(o: MethodOptions): void {
  if ((PLANNED_METHODS as readonly string[]).includes(o.method)) {
    throw new Error(`--method ${o.method} is not available yet in this build; available: ${METHODS.join(', ')}.`);
  }
  if (!(METHODS as readonly string[]).includes(o.method)) {
    throw new Error(`--method must be one of ${METHODS.join(', ')} (got "${o.method}")`);
  }
  if (o.method !== 'full') {
    validateLoraConfig({ rank: o.rank, alpha: o.alpha, targets: o.targets.length ? o.targets : ['default'], rslora: false, lrRatioB: o.lrRatioB ?? 1 });
  }
}

export function createMethod(gpu: Gpu, spec: ModelSpec, o: MethodOptions): MethodState {
  validateMethodOptions(o);
  const method = o.method as MethodName;
  if (method === 'full') return { method, train: 'full', adapters: new Map(), loraLayers: new Map(), rslora: false };
  const rslora = method === 'rslora';
  const layers = createLoraLayers(gpu, spec, {
    rank: o.rank, alpha: o.alpha, targets: resolveTargets(spec, o.targets), rslora, lrRatioB: o.lrRatioB ?? 1,
  }, o.seed);
  return { method, train: 'adapters', adapters: new Map(layers), loraLayers: layers, rslora };
}

/** Adapters from imported PEFT weights (for eval and generate). */
export function loraFromWeights(gpu: Gpu, spec: ModelSpec, modules: LoraModuleWeights[]): Map<string, LinearAdapter> {
  const infos = new Map(allLinears(spec).map((i) => [i.path, i]));
  const out = new Map<string, LinearAdapter>();
  for (const m of modules) {
    const info = infos.get(m.path)!;
    out.set(m.path, new LoraLayer(gpu, info, m.rank, m.scale, { A: m.A, B: m.B }));
  }
  return out;
}
