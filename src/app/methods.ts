/**
 * What the studio shows about each training method, read from the method registry (src/adapters/registry.ts):
 * labels, which options apply, their defaults (the engine's own, so the form shows what will really run) and
 * the scale rule. Pure.
 */
import type { ScaleRule } from '../adapters/options';
import { METHOD_REGISTRY, methodDescriptor, resolveMethodOptions } from '../adapters/registry';
import type { MethodExtras, MethodId, RunConfig } from '../worker/protocol';
import {
  allocatesRanks,
  graloraKOf,
  hybridRankOf,
  resolvedExtras,
  structureOf,
  type RankConfig,
} from '../worker/validate';

export type { ScaleRule };
export {
  allocatesRanks,
  defaultKOf,
  gradAccumOf,
  graloraKOf,
  hybridRankOf,
  resolvedExtras,
  structureOf,
} from '../worker/validate';

export const METHOD_LABEL = Object.fromEntries(METHOD_REGISTRY.map((m) => [m.id, m.label])) as Record<MethodId, string>;

/** The method select: what each one does, in a few words. */
export const METHOD_OPTIONS: [MethodId, string][] = METHOD_REGISTRY.map((m) => [m.id, m.choiceLabel]);

/**
 * Only the options that apply to the method (and structure): the engine refuses, for example, a k on a dense
 * adapter, and a draft keeps the values of other methods so switching back restores them.
 */
function relevantExtras(c: RankConfig): MethodExtras | undefined {
  const x: Record<string, unknown> = { ...c.extras };
  const { applicable } = resolveMethodOptions(c.method, c.rank, x as never);
  const out: Record<string, unknown> = {};
  for (const o of applicable) if (x[o.key] !== undefined) out[o.key] = x[o.key];
  return Object.keys(out).length ? (out as MethodExtras) : undefined;
}

/** The run as it will be sent to the worker: extras of other methods dropped. */
export function runnableConfig(c: RunConfig): RunConfig {
  const { extras: _dropped, ...rest } = c;
  const extras = relevantExtras(c);
  return extras ? { ...rest, extras } : rest;
}

/** The adapter scale s each method trains with (docs/METHODS.md), from the method's own rule. */
export function scaleRule(c: Pick<RunConfig, 'method' | 'rank' | 'alpha' | 'extras'>): ScaleRule {
  const values = resolvedExtras(c);
  return methodDescriptor(c.method).scaleRule(c.rank, c.alpha, { rank: c.rank, values });
}

/** "GoRA", or "GoRA+GraLoRA" when an allocating method gives its ranks to GraLoRA blocks. */
export function methodName(c: RankConfig): string {
  return allocatesRanks(c.method) && structureOf(c) === 'gralora'
    ? `${METHOD_LABEL[c.method]}+GraLoRA`
    : METHOD_LABEL[c.method];
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
export function methodOptionsText(c: Pick<RunConfig, 'method' | 'rank' | 'extras'>): string | null {
  const d = methodDescriptor(c.method);
  return d.summary?.({ rank: c.rank, values: resolvedExtras(c) }) ?? null;
}
