/**
 * What the studio knows about each training method: labels, which options apply to it, their defaults
 * (the engine's own constants, so the form shows what will really run) and the scale rule. Pure.
 */
import { GELORA_DEFAULTS, MAX_SAMPLES as GELORA_MAX_SAMPLES } from '../adapters/gelora/config';
import { GORA_DEFAULTS, GORA_IMPORTANCE } from '../adapters/gora/config';
import type { MethodExtras, MethodId, RunConfig } from '../worker/protocol';
import { allocatesRanks, graloraKOf, hybridRankOf, structureOf, type RankConfig } from '../worker/validate';

export { GELORA_DEFAULTS, GELORA_MAX_SAMPLES, GORA_DEFAULTS, GORA_IMPORTANCE };
export { allocatesRanks, defaultKOf, graloraKOf, hybridRankOf, structureOf } from '../worker/validate';

export const METHOD_LABEL: Record<MethodId, string> = {
  lora: 'LoRA', rslora: 'rsLoRA', gora: 'GoRA', gralora: 'GraLoRA', gelora: 'GeLoRA', full: 'Full fine-tune',
};

/** The method select: what each one does, in a few words. */
export const METHOD_OPTIONS: [MethodId, string][] = [
  ['lora', 'LoRA'],
  ['rslora', 'rsLoRA (α/√r)'],
  ['gora', 'GoRA (gradient ranks)'],
  ['gralora', 'GraLoRA (k×k blocks)'],
  ['gelora', 'GeLoRA (intrinsic dim.)'],
  ['full', 'Full fine-tune'],
];

/**
 * Only the options that apply to the method (and structure): the engine rejects, for example, a k on a dense
 * adapter, and a draft keeps the values of other methods so switching back restores them.
 */
function relevantExtras(c: RankConfig): MethodExtras | undefined {
  const x = c.extras ?? {};
  const out: MethodExtras = {};
  if (c.method === 'gora') {
    Object.assign(out, pick(x, ['structure', 'rankMin', 'rankMax', 'goraSteps', 'goraGamma', 'goraImportance']));
  } else if (c.method === 'gelora') {
    Object.assign(out, pick(x, ['structure', 'rankMax', 'geloraSamples', 'geloraBudget']));
  }
  if (structureOf(c) === 'gralora') Object.assign(out, pick(x, ['graloraK', 'hybridRank']));
  return Object.keys(out).length ? out : undefined;
}

function pick(x: MethodExtras, keys: (keyof MethodExtras)[]): MethodExtras {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (x[k] !== undefined) out[k] = x[k];
  return out as MethodExtras;
}

/** The run as it will be sent to the worker: extras of other methods dropped. */
export function runnableConfig(c: RunConfig): RunConfig {
  const { extras: _dropped, ...rest } = c;
  const extras = relevantExtras(c);
  return extras ? { ...rest, extras } : rest;
}

export interface ScaleRule {
  /** "α/r", "α/√r_l per module", ... */
  formula: string;
  /** The scale at the configured rank (GoRA: at r_ref; each module uses its own r_l). */
  value: number | null;
  perModule: boolean;
}

/** The adapter scale s each method trains with (METHODS.md §1–§4). */
export function scaleRule(c: Pick<RunConfig, 'method' | 'rank' | 'alpha' | 'extras'>): ScaleRule {
  const { rank: r, alpha: a } = c;
  switch (c.method) {
    case 'lora':
      return { formula: 'α/r', value: a / r, perModule: false };
    case 'rslora':
      return { formula: 'α/√r', value: a / Math.sqrt(r), perModule: false };
    case 'gora':
      return { formula: 'α/√r_l per module', value: a / Math.sqrt(r + hybridRankOf(c)), perModule: true };
    case 'gralora': {
      const h = hybridRankOf(c);
      return { formula: h ? 'α/(r+h)' : 'α/r', value: a / (r + h), perModule: false };
    }
    case 'gelora':
      return { formula: 'α/r_ref (every module)', value: a / r, perModule: false };
    case 'full':
      return { formula: 'no adapter', value: null, perModule: false };
  }
}

/** "GoRA", or "GoRA+GraLoRA" when an allocating method gives its ranks to GraLoRA blocks. */
export function methodName(c: RankConfig): string {
  return allocatesRanks(c.method) && structureOf(c) === 'gralora' ? `${METHOD_LABEL[c.method]}+GraLoRA` : METHOD_LABEL[c.method];
}

/** "r_ref=8", "r=8 k=2 h=4", "r=8" (empty for full fine-tuning). */
export function methodParams(c: RankConfig): string {
  if (c.method === 'full') return '';
  const h = hybridRankOf(c);
  const blocks = structureOf(c) === 'gralora' ? ` k=${graloraKOf(c)}${h ? ` h=${h}` : ''}` : '';
  return `${allocatesRanks(c.method) ? 'r_ref' : 'r'}=${c.rank}${blocks}`;
}

/** "GoRA r_ref=8", "GraLoRA r=8 k=2 h=4", "LoRA r=8" (no targets). */
export function methodShort(c: RankConfig): string {
  return [methodName(c), methodParams(c)].filter(Boolean).join(' ');
}

/** The method's own options, for the settings line of a started run ("N 8, γ 0.05, r 2–16"). */
export function methodOptionsText(c: Pick<RunConfig, 'method' | 'extras'>): string | null {
  const x = c.extras ?? {};
  if (c.method === 'gora') {
    return `N ${x.goraSteps ?? GORA_DEFAULTS.steps}, γ ${x.goraGamma ?? GORA_DEFAULTS.gamma}, r ${x.rankMin ?? GORA_DEFAULTS.rankMin}–${x.rankMax ?? GORA_DEFAULTS.rankMax}`;
  }
  if (c.method === 'gelora') {
    return `${x.geloraSamples ?? GELORA_DEFAULTS.samples} samples, budget ${x.geloraBudget ?? GELORA_DEFAULTS.budget}, r_max ${x.rankMax ?? GELORA_DEFAULTS.rankMax}`;
  }
  return null;
}
