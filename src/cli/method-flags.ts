/**
 * The CLI's method options, generated from the method registry: one flag per option key (methods that share a
 * key, like --rank-max, share the flag and its help), with each method's help and default.
 */
import type { MethodOption } from '../adapters/options';
import { METHOD_IDS, METHOD_REGISTRY } from '../adapters/registry';
import type { MethodOptions } from '../engine/methods';
import type { OptionSpec } from './args';

const CLI_KIND: Record<MethodOption['kind'], OptionSpec['kind']> = {
  int: 'int',
  number: 'number',
  choice: 'string',
  flag: 'flag',
};

export const METHOD_FLAG: OptionSpec = {
  kind: 'string',
  help: `adapter method: ${METHOD_IDS.join(', ')}`,
  default: 'lora',
};

/** Every method option, in registry order. Absent options take the method's default. */
export function methodFlagSpecs(): Record<string, OptionSpec> {
  const specs: Record<string, OptionSpec> = {};
  const helps = new Map<string, string[]>();
  const kinds = new Map<string, OptionSpec['kind']>();
  for (const m of METHOD_REGISTRY) {
    for (const o of m.options) {
      const list = helps.get(o.flag) ?? [];
      const text = `${m.label}: ${o.help}${o.choices ? ` (${o.choices.join(' | ')})` : ''}${defaultText(o)}`;
      // An option several methods share with the same words is described once, for all of them.
      const same = list.findIndex((h) => h.slice(h.indexOf(': ')) === text.slice(text.indexOf(': ')));
      if (same >= 0) list[same] = `${list[same].slice(0, list[same].indexOf(': '))}, ${text}`;
      else list.push(text);
      helps.set(o.flag, list);
      kinds.set(o.flag, CLI_KIND[o.kind]);
    }
  }
  for (const [flag, list] of helps) specs[flag] = { kind: kinds.get(flag)!, help: list.join('; ') };
  return specs;
}

function defaultText(o: MethodOption): string {
  if (o.kind === 'flag') return '';
  if (typeof o.default === 'function') return o.defaultText ? ` (default: ${o.defaultText})` : '';
  return ` (default ${o.default})`;
}

/** The method options of a parsed command line: each option's value from its flag (absent stays absent). */
export function methodOptionsFromFlags(o: Record<string, unknown>): Partial<MethodOptions> {
  const out: Record<string, unknown> = {};
  for (const m of METHOD_REGISTRY) {
    for (const option of m.options) {
      const value = o[option.flag];
      if (value !== undefined) out[option.key] = value;
    }
  }
  return out as Partial<MethodOptions>;
}
